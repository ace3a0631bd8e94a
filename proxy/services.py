"""The long-lived parts of one process, wired together once: database, events, chat, worker."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from proxy.answers.chat import Chat
from proxy.answers.events import Bus, Hub, make_bus
from proxy.answers.jobs import JobStore
from proxy.answers.limits import Limits, make_counters
from proxy.answers.worker import Worker
from proxy.config import Settings
from proxy.metrics import Metrics
from proxy.storage.db import Database
from proxy.upstream.base import Upstream
from proxy.upstream.factory import default_api, make_client, make_upstream, warm_sdk
from proxy.upstream.provision import recorded, setup

log = logging.getLogger(__name__)


@dataclass
class Upstreams:
    """Builds the upstream adapter on first use from what setup recorded (or runs setup)."""

    settings: Settings
    db: Database
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _upstream: Upstream | None = None
    _probed_at: float = -1e9
    _reachable: bool = False

    def __call__(self) -> Upstream:
        """The adapter for the configured (or detected) API."""
        with self._lock:
            if self._upstream is None:
                # Jobs retry on their own schedule, so the SDK must not retry inside a job's step.
                client = make_client(self.settings, retries=0)
                ids = recorded(self.db)
                if ids is None or (self.settings.api and ids.api != self.settings.api):
                    log.info("no upstream setup recorded for this mode; running setup")
                    ids = setup(self.settings, self.db, make_client(self.settings))
                api = self.settings.api or ids.api or default_api(self.settings)
                self._upstream = make_upstream(
                    self.settings, client, api, ids.vector_store_id, ids.assistant_id
                )
            return self._upstream

    def reachable(self) -> bool:
        """Whether the upstream answers a cheap request (remembered for 10 seconds)."""
        now = time.monotonic()
        if now - self._probed_at < 10:
            return self._reachable
        try:
            self().probe()
            self._reachable = True
        except Exception:
            self._reachable = False
        self._probed_at = now
        return self._reachable


@dataclass
class Services:
    """Everything a web or worker process holds."""

    settings: Settings
    db: Database
    hub: Hub
    bus: Bus
    metrics: Metrics
    limits: Limits
    upstreams: Upstreams
    chat: Chat
    worker: Worker | None = None

    def close(self) -> None:
        """Stop background work and release connections."""
        if self.worker is not None:
            self.worker.stop()
        self.bus.stop()
        self.db.dispose()


def build(settings: Settings, *, with_worker: bool, readers: bool = True) -> Services:
    """Wire one process's parts; `with_worker` also runs the answer poller here, `readers` says
    whether it serves WebSockets (a worker-only process does not)."""
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    db.upgrade()
    hub = Hub()
    metrics = Metrics()
    bus = make_bus(hub, settings.database_url, settings.redis_url)
    bus.readers = readers
    limits = Limits(settings, make_counters(settings, db))
    upstreams = Upstreams(settings, db)
    worker: Worker | None = None
    if with_worker:
        store = JobStore(db, Worker.new_owner(), settings.lease_seconds)
        # A worker of its own warms up before claiming (scaled-out workers start under load);
        # a web process with the poller inside starts fast and pays on its first answer.
        warm = None if readers else (lambda: warm_sdk(settings))
        worker = Worker(settings, store, bus, upstreams, limits, metrics, warm=warm)

    def wake() -> None:
        if worker is not None:
            worker.wake()
        bus.notify_job()

    def forget(api: str, thread_id: str, runs: list[tuple[str, str]]) -> None:
        threading.Thread(
            target=_forget, args=(upstreams, api, thread_id, runs), daemon=True
        ).start()

    chat = Chat(settings, db, bus, limits, wake=wake, forget=forget)
    bus.loader = chat.message
    if worker is not None:
        bus.on_job = worker.wake
    bus.start()
    if worker is not None:
        worker.start()
    return Services(settings, db, hub, bus, metrics, limits, upstreams, chat, worker)


def _forget(upstreams: Upstreams, api: str, thread_id: str, runs: list[tuple[str, str]]) -> None:
    """Best effort: cancel a cleared conversation's running answers and delete its thread."""
    try:
        upstream = upstreams()
        if upstream.api != api:
            return
        for thread, run in runs:
            upstream.cancel(thread, run)
        upstream.forget(thread_id)
    except Exception:
        log.info("could not delete upstream thread %s; it stays unused", thread_id)
