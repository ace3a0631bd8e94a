"""The worker: an APScheduler job claims due answers, then starts, streams or polls them."""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

from apscheduler.schedulers.background import BackgroundScheduler

from proxy.answers.chat import message_dict
from proxy.answers.events import Bus
from proxy.answers.jobs import Job, JobStore
from proxy.answers.limits import Limits
from proxy.answers.render import plain, render_answer, visible
from proxy.answers.timing import Timing
from proxy.config import Settings
from proxy.metrics import Metrics
from proxy.storage.models import Message, utcnow
from proxy.upstream.base import (
    Begun,
    Delta,
    Ended,
    RunState,
    StreamEvent,
    Upstream,
    UpstreamError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DELTA_EVERY = 0.05  # seconds between two delta pushes to readers
SAVE_EVERY = 0.5  # seconds between two saves of a streaming message


class Worker:
    """Runs answer jobs: any number of workers may share one database."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        bus: Bus,
        upstream: Callable[[], Upstream],
        limits: Limits | None = None,
        metrics: Metrics | None = None,
        warm: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.upstream = upstream
        self.limits = limits
        self.metrics = metrics or Metrics()
        self.timing = Timing(settings)
        self.pool = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="answer")
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._inflight = 0
        self._lock = threading.Lock()
        self._due: list[datetime] = []  # heap: when jobs this worker gave back are due again
        self._stopping = False
        self._ticking = threading.Lock()
        self._again = threading.Event()
        self._paused_until = 0.0  # monotonic time before which the upstream asked us to wait
        self.warm = warm

    @staticmethod
    def new_owner() -> str:
        """A lease owner name unique to this worker."""
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # --- scheduling -----------------------------------------------------------------------

    def start(self) -> None:
        """Warm up, then tick (at once, then every tick interval or sooner when work is due)."""
        try:
            freed = self.store.free_dead_leases(socket.gethostname(), _alive)
            if freed:
                log.info("took over %d answers from a worker that died on this host", freed)
            # Answers given back before a restart: the first is looked at on time, the rest
            # by the interval tick.
            due = self.store.next_due()
            if due is not None:
                self._remember(due)
        except Exception:
            log.exception("could not look for answers left by an earlier run")
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.settings.tick_interval,
            id="tick",
            max_instances=2,  # a wake during a tick must not be dropped; see tick()
            coalesce=True,
            next_run_time=datetime.now().astimezone(),
            misfire_grace_time=None,
        )
        if self.warm is not None:
            # The openai SDK loads most of itself on first use: a second or more of CPU per
            # process, several under load, that would land on the first answers. Loading it
            # here, in the starting thread, also keeps that import (which compiles code) from
            # running beside other threads that compile code (CPython 3.11's compiler state
            # is not thread-safe: "AST constructor recursion depth mismatch").
            try:
                self.warm()
            except Exception:
                log.warning("could not load the upstream client ahead of answers", exc_info=True)
        self.scheduler.start()

    def stop(self) -> None:
        """Stop ticking and wait for running work to end."""
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def wake(self, at: datetime | None = None) -> None:
        """Tick at `at` (default now) instead of waiting for the interval."""
        if self._stopping or not self.scheduler.running:
            return
        if at is None:
            self._again.set()  # a tick that is running right now will go round once more
            if self._ticking.locked():
                return
            with self._lock:
                if self._inflight >= self.settings.worker_threads:
                    return  # nothing can be claimed; the next finished job wakes us
        job = self.scheduler.get_job("tick")
        when = at or utcnow()
        if job is not None and (job.next_run_time is None or when < job.next_run_time):
            with contextlib.suppress(Exception):  # the job can vanish during shutdown
                job.modify(next_run_time=when)

    def tick(self) -> None:
        """Claim what is due (as much as there are free threads) and hand it to the pool."""
        self._again.set()
        if not self._ticking.acquire(blocking=False):
            return  # the running tick sees _again and claims once more
        try:
            while self._again.is_set() and not self._stopping:
                self._again.clear()
                self._dispatch()
        finally:
            self._ticking.release()
        self.metrics.set_inflight(self._inflight)
        self._plan_next()

    def _dispatch(self) -> None:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            self.wake(utcnow() + timedelta(seconds=pause))
            return
        with self._lock:
            free = self.settings.worker_threads - self._inflight
        if free <= 0:
            return
        try:
            jobs = self.store.claim(free)
        except Exception:
            log.exception("claiming jobs failed; retrying at the next tick")
            return
        for job in jobs:
            with self._lock:
                self._inflight += 1
            self.pool.submit(self._run, job)

    def _plan_next(self) -> None:
        """Tick again when the earliest job this worker gave back is due. Other workers wake
        for theirs, and the interval tick finds jobs whose worker died: asking the database for
        the next due time on every tick of every worker cost as much as claiming."""
        now = utcnow()
        with self._lock:
            while self._due and self._due[0] <= now:
                heapq.heappop(self._due)  # due already: claimed now, or when a thread frees
            due = self._due[0] if self._due else None
        if due is not None:
            self.wake(due)

    def _release(self, job: Job, at: datetime, **values: object) -> None:
        """Give a job back until `at`, and remember to look then."""
        self.store.release(job.id, at, **values)
        self._remember(at)

    def _remember(self, at: datetime) -> None:
        with self._lock:
            heapq.heappush(self._due, at)

    # --- one job --------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        """Advance one job by one step; errors keep its place or end it, never leave it stuck."""
        try:
            self._step(job)
        except UpstreamError as exc:
            self._upstream_failed(job, exc)
        except Exception:
            log.exception("answer job %s failed unexpectedly", job.id)
            self._retry_later(job, 2.0)
        finally:
            with self._lock:
                self._inflight -= 1
            self.wake()

    def _step(self, job: Job) -> None:
        if job.stop_requested:
            self._stop(job)
            return
        if utcnow() >= job.deadline_at:
            self._overdue(job)
            return
        upstream = self.upstream()
        if job.run_id is None:
            self._start(job, upstream)
        elif self.settings.streaming and upstream.can_resume and job.stream_cursor is not None:
            self._consume(
                job, upstream, upstream.resume(job.thread_id or "", job.run_id, job.stream_cursor)
            )
        else:
            self._poll(job, upstream)

    def _start(self, job: Job, upstream: Upstream) -> None:
        """Start the run, on the session's thread (or a new one seeded with its history)."""
        question, thread_id, history = self.store.prompt(
            job, upstream.api, self.settings.history_chars
        )
        metadata = {"docschat_job": str(job.id)}
        log.info(
            "answer job %s: starting on %s (%s)",
            job.id,
            upstream.api,
            "new thread" if thread_id is None else "same thread",
            extra={"request_id": job.request_id},
        )
        if self.settings.streaming:
            events = self._call(
                "start", lambda: upstream.stream(thread_id, question, history, metadata)
            )
            self._consume(job, upstream, events)
            return
        begun = self._call("start", lambda: upstream.begin(thread_id, question, history, metadata))
        poll_at = utcnow() + timedelta(seconds=self.timing.first_look())
        self.store.started(job, begun, upstream.api, poll_at=poll_at)
        self._remember(poll_at)

    def _consume(self, job: Job, upstream: Upstream, events: Iterator[StreamEvent]) -> None:
        """Follow a stream: push coalesced deltas, save progress, finish at its end."""
        text = self.store.text_of(job.message_id) if job.run_id else ""
        shown = len(visible(text))
        cursor = job.stream_cursor
        started = job.started_at or utcnow()
        last_push = last_save = 0.0
        try:
            for event in events:
                if isinstance(event, Begun):
                    if not self.store.started(job, event, upstream.api):
                        return
                    job.thread_id, job.run_id, started = event.thread_id, event.run_id, utcnow()
                elif isinstance(event, Delta):
                    text += event.text
                    cursor = event.cursor if event.cursor is not None else cursor
                    now = time.monotonic()
                    if now - last_push >= DELTA_EVERY or shown == 0:
                        shown = self._push(job, text, shown)
                        last_push = now
                    if now - last_save >= SAVE_EVERY:
                        last_save = now
                        stop = self.store.show_progress(job, visible(text), cursor)
                        if stop is None:
                            return  # another worker has it now
                        if stop:
                            self._stop(job, text)
                            return
                elif isinstance(event, Ended):
                    self._push(job, text, shown)
                    elapsed = (utcnow() - started).total_seconds()
                    if event.state.status == "completed":
                        self.timing.ended(elapsed)
                    self._finish(job, event.state)
                    return
        except UpstreamError:
            # Keep what was streamed; the next step resumes (Responses) or polls (Assistants).
            if job.run_id is None:
                raise
            self.metrics.stream_fallback()
            if text:
                self.store.show_progress(job, visible(text), cursor)
            self.store.release(job.id, utcnow(), stream_cursor=cursor)
            return

    def _push(self, job: Job, text: str, shown: int) -> int:
        """Send readers the visible text they have not seen yet; returns what they have now."""
        now_visible = visible(text)
        if len(now_visible) > shown:
            self.bus.publish(
                job.session_id,
                {
                    "type": "delta",
                    "message_id": job.message_id,
                    "offset": shown,
                    "text": now_visible[shown:],
                },
            )
        return max(shown, len(now_visible))

    def _poll(self, job: Job, upstream: Upstream) -> None:
        state = self._call("poll", lambda: upstream.poll(job.thread_id or "", job.run_id or ""))
        elapsed = (utcnow() - (job.started_at or utcnow())).total_seconds()
        if state.finished:
            # Only completed runs say how long answers take; a failure can come at any time.
            if state.status == "completed":
                self.timing.looked(job.id, elapsed, finished=True)
            else:
                self.timing.forget(job.id)
            self._finish(job, state)
            return
        wait = self.timing.looked(job.id, elapsed, finished=False)
        self._release(job, utcnow() + timedelta(seconds=wait))

    def _finish(self, job: Job, state: RunState) -> None:
        """Write the answer (or a readable error) into the pending message, exactly once."""
        step_began = time.monotonic()
        if state.status == "completed" and state.answer is not None:
            rendered = render_answer(state.answer, self.store.documents)
            message = self.store.finish(
                job, status="done", text="", rendered=rendered, upstream_id=state.answer.upstream_id
            )
        else:
            if state.status == "requires_action":
                # A run waiting for tool output blocks its thread; nobody will answer it.
                with contextlib.suppress(UpstreamError):
                    self.upstream().cancel(job.thread_id or "", job.run_id or "")
            message = self.store.finish(job, status="error", text=state.error)
        if message is None:
            return
        outcome = "done" if message.status == "done" else state.status
        log.info("answer job %s: %s", job.id, outcome, extra={"request_id": job.request_id})
        now = utcnow()
        # Added latency as the worker sees it: waiting before the upstream began, plus storing
        # and publishing after it ended (the poll lag shows in the benchmark, not here).
        started = job.started_at or now
        added = (started - message.created_at).total_seconds() + (time.monotonic() - step_began)
        self.metrics.answered(outcome, (now - message.created_at).total_seconds(), added)
        if self.limits is not None:
            self.limits.spent(state.tokens)
        self._publish(job, message)

    def _call(self, kind: str, request: Callable[[], T]) -> T:
        """Make one upstream request, counting it by kind and outcome."""
        try:
            result = request()
        except UpstreamError as exc:
            self.metrics.upstream_call(kind, str(exc.status or "network"))
            raise
        self.metrics.upstream_call(kind, "ok")
        return result

    def _publish(self, job: Job, message: Message) -> None:
        self.bus.publish(job.session_id, {"type": "message", "message": message_dict(message)})

    def _stop(self, job: Job, text: str | None = None) -> None:
        """The reader pressed Stop: cancel upstream, keep what was written."""
        if job.run_id:
            try:
                self._call(
                    "cancel", lambda: self.upstream().cancel(job.thread_id or "", job.run_id)
                )
            except UpstreamError:
                log.warning("cancelling run %s failed; it ends upstream by itself", job.run_id)
        kept = visible(text if text is not None else self.store.text_of(job.message_id))
        message = self.store.finish(
            job, status="done", text=kept, stopped=True, rendered=plain(kept) if kept else None
        )
        if message is not None:
            self.metrics.answered("stopped", 0.0)
            self._publish(job, message)

    def _overdue(self, job: Job) -> None:
        """Past the deadline: cancel upstream and tell the reader."""
        if job.run_id:
            with contextlib.suppress(UpstreamError):
                self.upstream().cancel(job.thread_id or "", job.run_id)
        self._finish(job, RunState("expired"))

    def _upstream_failed(self, job: Job, exc: UpstreamError) -> None:
        self.metrics.upstream_error(exc.status)
        if exc.status == 429 and exc.retry_after:
            # The limit is the account's, not the answer's: hold every start and poll back.
            self._paused_until = max(self._paused_until, time.monotonic() + exc.retry_after)
        if not exc.retryable:
            log.warning(
                "answer job %s: %s", job.id, exc.detail, extra={"request_id": job.request_id}
            )
            self._finish(job, RunState("failed"))
            return
        backoff = min(30.0, 0.5 * 2 ** min(job.attempts, 6))
        self._retry_later(job, max(backoff, exc.retry_after or 0.0))

    def _retry_later(self, job: Job, seconds: float) -> None:
        at = min(utcnow() + timedelta(seconds=seconds), job.deadline_at)
        self._release(job, at, attempts=job.attempts + 1)


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
