"""Message and delta events for WebSocket listeners, here and in other processes."""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from proxy.storage.redis_pool import connect

log = logging.getLogger(__name__)

CHANNEL = "docschat_events"
# PostgreSQL refuses NOTIFY payloads over 8000 bytes; larger messages travel as ids and are re-read.
MAX_PAYLOAD = 7000


class Subscription:
    """One listener's queue of events for one session."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)


class Hub:
    """The WebSocket listeners of this process, by session id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, session_id: str) -> Subscription:
        """Start receiving a session's events."""
        sub = Subscription(session_id)
        with self._lock:
            self._subs[session_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop receiving events."""
        with self._lock:
            subs = self._subs.get(sub.session_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.session_id]

    def count(self) -> int:
        """Open subscriptions in this process."""
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def has(self, session_id: str) -> bool:
        """Whether anybody here listens to the session."""
        with self._lock:
            return session_id in self._subs

    def deliver(self, session_id: str, event: dict[str, Any]) -> None:
        """Hand an event to every listener; a full queue drops it (the list endpoint heals that)."""
        with self._lock:
            subs = list(self._subs.get(session_id, ()))
        for sub in subs:
            try:
                sub.queue.put_nowait(event)
            except queue.Full:
                log.warning("listener queue full; event dropped")


class Bus:
    """Publishes events to this process's hub; subclasses also reach other processes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.origin = uuid.uuid4().hex
        # Whether this process holds WebSockets. A worker-only process leaves the events channel
        # alone: every streamed word of every answer passes there, and it has nobody to tell.
        self.readers = True
        # Called when another process says a job is waiting (set by services.build in workers).
        self.on_job: Callable[[], None] | None = None
        # Reads a message by id, for events too large to travel whole (set by services.build).
        self.loader: Callable[[int], dict[str, Any] | None] | None = None

    def publish(self, session_id: str, event: dict[str, Any]) -> None:
        """Deliver here at once, and elsewhere through the shared channel."""
        self.hub.deliver(session_id, event)
        for part in _fitting(event):
            self._send(json.dumps({"o": self.origin, "s": session_id, "e": part}))

    def _send(self, payload: str) -> None:
        """Reach other processes (nothing to do for a single process)."""

    def notify_job(self) -> None:
        """Tell workers in other processes that a job is waiting (none for a single process)."""

    def _received(self, payload: str) -> None:
        """An event from the shared channel: deliver it unless it is our own."""
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if data.get("o") == self.origin or not self.hub.has(data["s"]):
            return
        event = data["e"]
        if "ref" in event:
            message = self.loader(event["ref"]) if self.loader is not None else None
            if message is None:
                return
            event = {"type": "message", "message": message}
        self.hub.deliver(data["s"], event)

    def _channels(self) -> list[str]:
        """The shared channels this process needs: events for readers, jobs for a worker."""
        wanted = [CHANNEL] if self.readers else []
        if self.on_job is not None:
            wanted.append("docschat_jobs")
        return wanted

    def start(self) -> None:
        """Begin listening to other processes."""

    def stop(self) -> None:
        """Stop listening."""


def _fitting(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The event as parts small enough for any channel: deltas split, messages by reference."""
    if len(json.dumps(event)) <= MAX_PAYLOAD - 200:
        return [event]
    if event.get("type") == "delta":
        step = (MAX_PAYLOAD - 400) // 6  # JSON may escape a character into six bytes
        text, offset = event["text"], event["offset"]
        return [
            {**event, "offset": offset + i, "text": text[i : i + step]}
            for i in range(0, len(text), step)
        ]
    if event.get("type") == "message":
        return [{"ref": event["message"]["id"]}]
    return []


class PostgresBus(Bus):
    """Cross-process events over PostgreSQL LISTEN/NOTIFY."""

    def __init__(self, hub: Hub, dsn: str) -> None:
        super().__init__(hub)
        self.dsn = dsn
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the notifying connection
        self._queue_lock = threading.Lock()
        self._queued: list[tuple[str, str]] = []
        self._conn: Any = None
        self._thread: threading.Thread | None = None

    def _send(self, payload: str) -> None:
        self._notify(CHANNEL, payload)

    def notify_job(self) -> None:
        """Tell workers in other processes that a job is waiting."""
        self._notify("docschat_jobs", "")

    def _notify(self, channel: str, payload: str) -> None:
        """NOTIFY, batched: while one thread talks to the database, others queue their payloads,
        and the next one to get the connection sends every queued payload in one statement. Many
        answers streaming at once then cost a few round trips, not one per word."""
        with self._queue_lock:
            self._queued.append((channel, payload))
        with self._lock:
            with self._queue_lock:
                batch, self._queued = self._queued, []
            if batch:
                self._send_batch(batch)

    def _send_batch(self, batch: list[tuple[str, str]]) -> None:
        import psycopg

        channels, payloads = [c for c, _ in batch], [p for _, p in batch]
        for attempt in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.dsn, autocommit=True)
                self._conn.execute(
                    "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS t(c, p)",
                    (channels, payloads),
                )
                return
            except psycopg.Error:
                self._conn = None
                if attempt:
                    log.warning("could not NOTIFY other processes")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="pg-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        """LISTEN forever, reconnecting with backoff when the database goes away."""
        import psycopg

        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    for channel in self._channels():
                        conn.execute(f"LISTEN {channel}")
                    delay = 0.2
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.channel == CHANNEL:
                                self._received(note.payload)
                            elif self.on_job is not None:
                                self.on_job()
            except psycopg.Error:
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)


class RedisBus(Bus):
    """Cross-process events over Redis pub/sub (REDIS_URL)."""

    def __init__(self, hub: Hub, url: str) -> None:
        super().__init__(hub)
        self.redis = connect(url)
        self._stop = threading.Event()

    def _send(self, payload: str) -> None:
        try:
            self.redis.publish(CHANNEL, payload)
        except Exception:
            log.warning("could not publish to Redis")

    def notify_job(self) -> None:
        """Tell workers in other processes that a job is waiting."""
        try:
            self.redis.publish("docschat_jobs", "")
        except Exception:
            log.warning("could not publish to Redis")

    def start(self) -> None:
        threading.Thread(target=self._listen, name="redis-listen", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(*self._channels())
                delay = 0.2
                while not self._stop.is_set():
                    item = pubsub.get_message(timeout=1.0)
                    if not item:
                        continue
                    channel = item["channel"].decode()
                    if channel == CHANNEL:
                        self._received(item["data"].decode())
                    elif self.on_job is not None:
                        self.on_job()
            except Exception:
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)


def make_bus(hub: Hub, database_url: str, redis_url: str) -> Bus:
    """Redis when configured, PostgreSQL LISTEN/NOTIFY on PostgreSQL, else this process only."""
    if redis_url:
        return RedisBus(hub, redis_url)
    if database_url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(drivername="postgresql")
        return PostgresBus(hub, url.render_as_string(hide_password=False))
    return Bus(hub)
