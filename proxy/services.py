"""The long-lived parts of one process, wired together once through their constructors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from proxy import metrics_dir
from proxy.answers.chat import Chat
from proxy.answers.errors import NotSetUp
from proxy.answers.events import Channel, Hub, Listener, Publisher
from proxy.answers.jobs import JobQueue, JobStore
from proxy.answers.limits import Limits, make_counters
from proxy.answers.messages import MessageReader
from proxy.answers.worker import Worker
from proxy.config import Settings
from proxy.documents.search import Search
from proxy.metrics import Metrics
from proxy.setup import recorded
from proxy.storage.db import CHANNEL_CONNECTIONS, Database
from proxy.upstream.base import Upstream
from proxy.upstream.errors import UpstreamError
from proxy.upstream.factory import make_client, make_upstream, warm_sdk
from proxy.upstream.search import DocsSearch

PROBE_EVERY = 10.0  # seconds a readiness probe's view of the upstream is kept


class Upstreams:
    """The upstream adapter for what `docschat setup` recorded; never runs setup itself."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._lock = threading.Lock()
        self._upstream: Upstream | None = None
        self._search: DocsSearch | None = None
        self._probed_at = -PROBE_EVERY
        self._reachable = False

    def __call__(self) -> Upstream:
        """The adapter, or NotSetUp until setup has run for the configured API.

        Until then every call reads the record again, so setup run later is picked up without
        a restart."""
        with self._lock:
            if self._upstream is None:
                ids = recorded(self.db)
                if ids is None:
                    raise NotSetUp("No upstream is set up yet: run `docschat setup`.")
                if self.settings.api and ids.api != self.settings.api:
                    raise NotSetUp(
                        f"Setup was run for the {ids.api} API but DOCSCHAT_API is "
                        f"{self.settings.api}: run `docschat setup` again."
                    )
                # Jobs retry on their own schedule, so the SDK must not retry inside a step.
                client = make_client(self.settings, retries=0)
                self._upstream = make_upstream(
                    self.settings, client, ids.api, ids.vector_store_id, ids.assistant_id
                )
            return self._upstream

    def searcher(self) -> DocsSearch:
        """The vector store's search, or NotSetUp until setup has run."""
        self()  # NotSetUp until setup has run, as for answers
        with self._lock:
            if self._search is None:
                ids = recorded(self.db)
                assert ids is not None  # self() found the record
                client = make_client(self.settings, retries=0)
                self._search = DocsSearch(client, ids.vector_store_id)
            return self._search

    def setup_problem(self) -> str | None:
        """Why answers cannot start yet (setup missing or for another API), or None."""
        try:
            self()
        except NotSetUp as exc:
            return exc.message
        return None

    def reachable(self) -> bool:
        """Whether the upstream answers a cheap request (remembered for a few seconds)."""
        now = time.monotonic()
        if now - self._probed_at >= PROBE_EVERY:
            try:
                self().probe()
                self._reachable = True
            except (UpstreamError, NotSetUp):
                self._reachable = False
            self._probed_at = now
        return self._reachable


@dataclass
class Services:
    """Everything a web or worker process holds."""

    settings: Settings
    db: Database
    hub: Hub
    events: Publisher
    listener: Listener
    metrics: Metrics
    limits: Limits
    upstreams: Upstreams
    chat: Chat
    search: Search
    worker: Worker | None = None

    def close(self) -> None:
        """Stop background work and release connections."""
        if self.worker is not None:
            self.worker.stop()
        self.listener.stop()
        self.events.close()
        self.db.dispose()


def build(settings: Settings, *, with_worker: bool, readers: bool = True) -> Services:
    """Wire one process's parts; `with_worker` also runs the answer worker here, `readers` says
    whether it serves WebSockets (a worker-only process does not)."""
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        application_name="docschat-web" if readers else "docschat-worker",
    )
    db.upgrade()
    hub = Hub()
    metrics = Metrics(metrics_dir.current())
    reader = MessageReader(db)
    channel = Channel(settings.database_url, settings.redis_url)
    db.check_budget(settings.db_processes, CHANNEL_CONNECTIONS if channel.dsn else 0)
    events = channel.publisher(hub)
    limits = Limits(settings, make_counters(settings, db))
    upstreams = Upstreams(settings, db)
    worker: Worker | None = None
    if with_worker:
        store = JobStore(db, Worker.new_owner(), settings.lease_seconds)
        # A worker of its own warms up before claiming (scaled-out workers start under load);
        # a web process with the worker inside starts fast and pays on its first answer.
        warm = None if readers else (lambda: warm_sdk(settings))
        resync = None
        if settings.sync_interval > 0:
            # Imported only here: the crawl stack (lxml, BeautifulSoup, the extractors) is slow
            # to import, and only a worker that re-syncs sources needs it.
            from proxy.documents.sources import Resync

            resync = Resync(settings, db, store.owner)
        worker = Worker(
            settings,
            store,
            events,
            upstreams,
            limits,
            metrics,
            warm=warm,
            resync=resync.run_due if resync is not None else None,
        )
    queue = JobQueue(events.notify_job, worker.wake if worker is not None else None)
    chat = Chat(settings, db, events, limits, queue, reader)
    listener = channel.listener(
        hub,
        events.origin,
        reader.one,
        worker.wake if worker is not None else None,
        readers=readers,
    )
    listener.start()
    if worker is not None:
        worker.start()
    search = Search(db, upstreams.searcher, limits)
    return Services(
        settings, db, hub, events, listener, metrics, limits, upstreams, chat, search, worker
    )
