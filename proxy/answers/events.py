"""Message and delta events for WebSocket listeners, here and in other processes.

A `Publisher` delivers an event to this process's `Hub` and sends it to the shared channel; a
`Listener` reads the shared channel and delivers what other processes sent. Both also carry the
"a job is waiting" signal between web processes and workers.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
from redis import Redis
from redis.exceptions import RedisError

from proxy.storage.db import libpq_dsn
from proxy.storage.redis_pool import connect

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "docschat_events"
JOBS_CHANNEL = "docschat_jobs"
# PostgreSQL refuses NOTIFY payloads over 8000 bytes; larger messages travel as ids and are re-read.
MAX_PAYLOAD = 7000

LoadMessage = Callable[[int], dict[str, Any] | None]


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


class Publisher:
    """Publishes events to this process's hub (one process alone: nothing to send further)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.origin = uuid.uuid4().hex  # our own events come back from the channel; skip them

    def publish(self, session_id: str, event: dict[str, Any]) -> None:
        """Deliver here at once, and elsewhere through the shared channel."""
        self.hub.deliver(session_id, event)
        for part in _fitting(event):
            self._send(EVENTS_CHANNEL, json.dumps({"o": self.origin, "s": session_id, "e": part}))

    def notify_job(self) -> None:
        """Tell workers in other processes that a job is waiting."""
        self._send(JOBS_CHANNEL, "")

    def _send(self, channel: str, payload: str) -> None:
        """Reach other processes (nothing to do for a single process)."""

    def close(self) -> None:
        """Release the channel's connection, if any."""


class PostgresPublisher(Publisher):
    """Publishes through PostgreSQL NOTIFY."""

    def __init__(self, hub: Hub, dsn: str) -> None:
        super().__init__(hub)
        self.dsn = dsn
        self._lock = threading.Lock()  # the notifying connection
        self._queue_lock = threading.Lock()
        self._queued: list[tuple[str, str]] = []
        self._conn: psycopg.Connection[Any] | None = None

    def _send(self, channel: str, payload: str) -> None:
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

    def close(self) -> None:
        """Close the notifying connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RedisPublisher(Publisher):
    """Publishes through Redis pub/sub."""

    def __init__(self, hub: Hub, redis: Redis) -> None:
        super().__init__(hub)
        self.redis = redis

    def _send(self, channel: str, payload: str) -> None:
        try:
            self.redis.publish(channel, payload)
        except RedisError:
            log.warning("could not publish to Redis")


class Listener:
    """Delivers what other processes publish; wakes this process's worker for their jobs."""

    def __init__(
        self,
        hub: Hub,
        origin: str,
        load_message: LoadMessage,
        on_job: Callable[[], None] | None,
        *,
        readers: bool,
    ) -> None:
        self.hub = hub
        self.origin = origin
        self.load_message = load_message
        self.on_job = on_job
        # A worker-only process leaves the events channel alone: every streamed word of every
        # answer passes there, and it has nobody to tell.
        self.channels = [EVENTS_CHANNEL] if readers else []
        if on_job is not None:
            self.channels.append(JOBS_CHANNEL)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin listening in a thread of its own (nothing to listen to: no thread)."""
        if self.channels:
            self._thread = threading.Thread(target=self._run, name="listen", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()

    def _run(self) -> None:
        """Listen until stopped, reconnecting with backoff when the channel goes away."""
        delay = 0.2
        while not self._stop.is_set():
            try:
                self._listen()
                delay = 0.2
            except Exception:
                log.debug("event channel lost; reconnecting", exc_info=True)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)

    def _listen(self) -> None:
        """Read the channels until stopped or the connection fails."""

    def _received(self, channel: str, payload: str) -> None:
        """A notice from the shared channel: a waiting job, or an event not of our own."""
        if channel == JOBS_CHANNEL:
            if self.on_job is not None:
                self.on_job()
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if data.get("o") == self.origin or not self.hub.has(data["s"]):
            return
        event = data["e"]
        if "ref" in event:
            message = self.load_message(event["ref"])
            if message is None:
                return
            event = {"type": "message", "message": message}
        self.hub.deliver(data["s"], event)


class PostgresListener(Listener):
    """Listens with PostgreSQL LISTEN."""

    def __init__(self, dsn: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dsn = dsn

    def _listen(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for channel in self.channels:
                conn.execute(f"LISTEN {channel}")
            while not self._stop.is_set():
                for note in conn.notifies(timeout=1.0):
                    self._received(note.channel, note.payload)


class RedisListener(Listener):
    """Listens with Redis SUBSCRIBE."""

    def __init__(self, redis: Redis, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis = redis

    def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*self.channels)
            while not self._stop.is_set():
                item = pubsub.get_message(timeout=1.0)
                if item:
                    self._received(item["channel"].decode(), item["data"].decode())
        finally:
            pubsub.close()


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


class Channel:
    """Where events between processes travel: Redis, PostgreSQL, or nowhere (one process)."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.redis = connect(redis_url) if redis_url else None
        self.dsn = libpq_dsn(database_url) if self.redis is None else None

    def publisher(self, hub: Hub) -> Publisher:
        """A publisher on this channel."""
        if self.redis is not None:
            return RedisPublisher(hub, self.redis)
        if self.dsn is not None:
            return PostgresPublisher(hub, self.dsn)
        return Publisher(hub)

    def listener(
        self,
        hub: Hub,
        origin: str,
        load_message: LoadMessage,
        on_job: Callable[[], None] | None,
        *,
        readers: bool,
    ) -> Listener:
        """A listener on this channel (one that never starts a thread for a single process)."""
        args = (hub, origin, load_message, on_job)
        if self.redis is not None:
            return RedisListener(self.redis, *args, readers=readers)
        if self.dsn is not None:
            return PostgresListener(self.dsn, *args, readers=readers)
        return _Alone(*args, readers=readers)


class _Alone(Listener):
    """One process: nobody else publishes, so there is nothing to listen to."""

    def start(self) -> None:
        """Nothing to start."""
