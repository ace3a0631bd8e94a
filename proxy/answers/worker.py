"""The worker: claims due answer jobs and starts, streams or polls them upstream.

APScheduler runs its plain jobs: a sweep at a fixed interval (it also finds jobs that a dead
worker held, and deletes the upstream threads of cleared chats) and a one-off claim for every
moment something is due: a new question, a finished job freeing a thread, a polled run's next look.
"""

from __future__ import annotations

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
from sqlalchemy.exc import SQLAlchemyError

from proxy.answers.errors import NotSetUp
from proxy.answers.events import Publisher
from proxy.answers.jobs import Job, JobStore
from proxy.answers.limits import Limits
from proxy.answers.messages import message_dict
from proxy.answers.render import cited_files, plain, render_answer, visible
from proxy.answers.retention import purge
from proxy.answers.timing import Timing
from proxy.config import Settings
from proxy.metrics import Metrics
from proxy.storage.models import Message, utcnow
from proxy.upstream.base import Begun, Delta, Ended, RunState, StreamEvent, Turn, Upstream
from proxy.upstream.errors import RateLimited, Unavailable, UpstreamError

log = logging.getLogger(__name__)
T = TypeVar("T")

DELTA_EVERY = 0.05  # seconds between two delta pushes to readers
SAVE_EVERY = 0.5  # seconds between two saves of a streaming message
CLEANUPS_PER_SWEEP = 20
RETENTION_EVERY = 3600.0  # seconds between two purges of old conversations


class Worker:
    """Runs answer jobs: any number of workers may share one database."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        events: Publisher,
        upstream: Callable[[], Upstream],
        limits: Limits,
        metrics: Metrics,
        *,
        warm: Callable[[], None] | None = None,
        resync: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.upstream = upstream
        self.limits = limits
        self.metrics = metrics
        self.warm = warm
        self.resync = resync  # re-syncs the recorded sources that are due (when scheduled)
        self.timing = Timing(settings)
        self.pool = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="answer")
        self.scheduler = BackgroundScheduler(
            timezone="UTC", job_defaults={"misfire_grace_time": None, "coalesce": True}
        )
        self._lock = threading.Lock()
        self._inflight = 0
        self._saturated = False  # the last claim was cut short by busy threads
        self._paused_until = 0.0  # monotonic time before which the upstream asked us to wait

    @staticmethod
    def new_owner() -> str:
        """A lease owner name unique to this worker."""
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # --- scheduling -----------------------------------------------------------------------

    def start(self) -> None:
        """Take over what a dead worker of this host left, warm up, then start claiming."""
        try:
            freed = self.store.free_dead_leases(socket.gethostname(), _alive)
            if freed:
                log.info("took over %d answers from a worker that died on this host", freed)
            due = self.store.next_due()
        except SQLAlchemyError:
            log.warning("could not look for answers left by an earlier run; the sweep will")
            due = None
        self.scheduler.add_job(
            self.sweep,
            "interval",
            seconds=self.settings.tick_interval,
            id="sweep",
            next_run_time=datetime.now().astimezone(),
        )
        if self.settings.retention_days:
            # Every worker purges; two at once delete the same rows, which is harmless.
            self.scheduler.add_job(
                self.retain,
                "interval",
                seconds=RETENTION_EVERY,
                id="retention",
                next_run_time=datetime.now().astimezone() + timedelta(seconds=1),
            )
        if self.resync is not None and self.settings.sync_interval > 0:
            # Looked at often (claims make a source synced once per interval, by one process)
            # so a due source waits at most a minute; one look at a time, as syncs can be long.
            self.scheduler.add_job(
                self._resync,
                "interval",
                seconds=min(self.settings.sync_interval, 60.0),
                id="resync",
                next_run_time=datetime.now().astimezone(),
                max_instances=1,
            )
        if due is not None:
            self.look_at(due)
        if self.warm is not None:
            # The openai SDK loads most of itself on first use, a second or more of CPU that
            # would land on the first answers. Loading it here, before other threads run, also
            # keeps its import away from threads compiling code at the same time (CPython
            # 3.11's compiler state is not thread-safe).
            try:
                self.warm()
            except ImportError:
                log.warning("could not load the upstream client ahead of answers", exc_info=True)
        self.scheduler.start()

    def _resync(self) -> None:
        """Re-sync the due sources; a failure is logged and the next look tries again."""
        assert self.resync is not None
        try:
            self.resync()
        except Exception:
            log.exception("scheduled re-sync failed")

    def stop(self) -> None:
        """Stop scheduling and wait for running work to end."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)  # running claims end before the pool closes
        self.pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        """Claim what is due now instead of at the next sweep."""
        self.look_at(utcnow())

    def look_at(self, when: datetime) -> None:
        """Claim what is due at `when`; looks asked for within the same 10 ms are one claim
        (a burst of questions, or polled runs given back for the same moment)."""
        key = f"claim@{when.timestamp():.2f}"
        self.scheduler.add_job(self.claim, "date", run_date=when, id=key, replace_existing=True)

    def sweep(self) -> None:
        """The interval's work: claim what is due, and delete upstream threads of cleared chats."""
        self.claim()
        self.clean_up()

    def retain(self) -> None:
        """Delete conversations older than DOCSCHAT_RETENTION_DAYS (the scheduled job)."""
        try:
            removed = purge(self.store.db, self.settings.retention_days)
        except SQLAlchemyError:
            log.warning("could not delete old conversations; the next run tries again")
            return
        if removed:
            log.info(
                "retention: deleted %d conversations older than %d days",
                removed,
                self.settings.retention_days,
            )

    def claim(self) -> None:
        """Claim due jobs, as many as there are free threads, and hand them to the pool."""
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            self.look_at(utcnow() + timedelta(seconds=pause))
            return
        with self._lock:
            free = self.settings.worker_threads - self._inflight
            self._inflight += max(free, 0)  # reserved while the claim runs
            self._saturated = free <= 0
        if free <= 0:
            return  # the next job to end wakes us
        jobs: list[Job] = []
        try:
            jobs = self.store.claim(free)
        except SQLAlchemyError:
            log.warning("claiming answers failed; the sweep tries again", exc_info=True)
        finally:
            with self._lock:
                self._inflight -= free - len(jobs)
                self._saturated = len(jobs) >= free  # more may be waiting for a thread
                self.metrics.set_inflight(self._inflight)
        for job in jobs:
            self.pool.submit(self._run, job)

    def clean_up(self) -> None:
        """Delete the upstream threads of cleared chats (best effort, a few tries each)."""
        try:
            cleanups = self.store.cleanups(CLEANUPS_PER_SWEEP)
            if not cleanups:
                return
            upstream = self.upstream()
        except (SQLAlchemyError, NotSetUp):
            return
        for cleanup in cleanups:
            done = cleanup.api != upstream.api  # another API's threads are not ours to reach
            if not done:
                try:
                    for thread_id, run_id in cleanup.runs:
                        self._call("cancel", lambda t=thread_id, r=run_id: upstream.cancel(t, r))
                    self._call("forget", lambda c=cleanup: upstream.forget(c.thread_id))
                    done = True
                except UpstreamError as exc:
                    done = not exc.retryable
                    log.info("could not delete upstream thread %s: %s", cleanup.thread_id, exc)
            self.store.cleaned(cleanup.id, done=done)

    # --- one job --------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        """Advance one job by one step; errors keep its place or end it, never leave it stuck."""
        try:
            self._step(job)
        except UpstreamError as exc:
            self._upstream_failed(job, exc)
        except NotSetUp as exc:
            log.warning("answer job %s waits: %s", job.id, exc.message)
            self._retry_later(job, max(self.settings.tick_interval, 5.0))
        except Exception:
            # Our bug: keep the job's place; its deadline ends it if the bug stays.
            log.exception("answer job %s failed unexpectedly", job.id)
            self._retry_later(job, 2.0)
        finally:
            with self._lock:
                self._inflight -= 1
                saturated = self._saturated
            if saturated:  # a thread is free for a job that found none
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
            thread_id, run_id, cursor = job.thread_id or "", job.run_id, job.stream_cursor
            events = self._call("resume", lambda: upstream.resume(thread_id, run_id, cursor))
            self._consume(job, upstream, events)
        else:
            self._poll(job, upstream)

    def _start(self, job: Job, upstream: Upstream) -> None:
        """Start the run on the session's thread, making (and recording) the thread first."""
        prompt = self.store.prompt(job, upstream.api, self.settings.history_chars)
        # The deadline names the try: a retried answer must not find the run of its failed try.
        metadata = {"docschat_job": f"{job.id}:{int(job.deadline_at.timestamp())}"}
        thread_id = prompt.thread_id
        if thread_id is None:
            history = [Turn(role, text) for role, text in prompt.history]
            thread_id = self._call("open", lambda: upstream.open_thread(history))
            if not self.store.opened(job, upstream.api, thread_id):
                return
        elif job.attempts or job.claims > 1:
            # An earlier try may have started the run and lost the answer on its way back (a
            # timeout), or died before recording it: look before starting a second one.
            tid = thread_id
            found = self._call("find", lambda: upstream.find_run(tid, metadata))
            if found is not None:
                log.info("answer job %s: following run %s of an earlier try", job.id, found)
                if self.store.started(job, upstream.api, tid, found, poll_at=utcnow()):
                    self.wake()
                return
        log.info(
            "answer job %s: starting on %s (%s)",
            job.id,
            upstream.api,
            "new thread" if prompt.thread_id is None else "same thread",
            extra={"request_id": job.request_id},
        )
        args = (thread_id, prompt.question, metadata)
        if self.settings.streaming:
            self._consume(job, upstream, self._call("start", lambda: upstream.stream(*args)))
            return
        begun = self._call("start", lambda: upstream.begin(*args))
        poll_at = utcnow() + timedelta(seconds=self.timing.first_look())
        self._started(job, upstream, begun, poll_at)
        self.look_at(poll_at)

    def _started(
        self, job: Job, upstream: Upstream, begun: Begun, poll_at: datetime | None = None
    ) -> bool:
        """Record a run that began upstream; False when the job is no longer ours."""
        return self.store.started(job, upstream.api, begun.thread_id, begun.run_id, poll_at)

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
                    if not self._started(job, upstream, event):
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
                    if event.state.status == "completed":
                        self.timing.ended((utcnow() - started).total_seconds())
                    self._finish(job, event.state)
                    return
        except Unavailable:
            # A broken or stalled stream: keep what was streamed; the next step resumes
            # (Responses) or polls (Assistants).
            if job.run_id is None:
                raise
            self.metrics.stream_fallback()
            if text:
                self.store.show_progress(job, visible(text), cursor)
            self._release(job, utcnow(), stream_cursor=cursor)

    def _push(self, job: Job, text: str, shown: int) -> int:
        """Send readers the visible text they have not seen yet; returns what they have now."""
        now_visible = visible(text)
        if len(now_visible) > shown:
            self.events.publish(
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
        thread_id, run_id = job.thread_id or "", job.run_id or ""
        state = self._call("poll", lambda: upstream.poll(thread_id, run_id))
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
            answer = state.answer
            known = self.store.pages(cited_files(answer), answer.retrieved)
            rendered = render_answer(answer, known)
            message = self.store.finish_done(
                job,
                rendered.text,
                rendered.html,
                rendered.sources,
                upstream_id=answer.upstream_id,
            )
            outcome = "done"
        else:
            if state.status == "requires_action":
                # A run waiting for tool output blocks its thread; nobody will answer it.
                self._cancel(job)
            message = self.store.finish_error(job, state.error or RunState("failed").error)
            outcome = state.status
        if message is None:
            return
        log.info("answer job %s: %s", job.id, outcome, extra={"request_id": job.request_id})
        now = utcnow()
        # Added latency as the worker sees it: waiting before the upstream began, plus storing
        # and publishing after it ended (the poll lag shows in the benchmark, not here).
        started = job.started_at or now
        added = (started - message.created_at).total_seconds() + (time.monotonic() - step_began)
        self.metrics.answered(outcome, (now - message.created_at).total_seconds(), added)
        self.limits.spent(state.tokens)
        self._publish(job, message)

    def _call(self, kind: str, request: Callable[[], T]) -> T:
        """Make one upstream request, counting it by kind and outcome, and timing it."""
        began = time.monotonic()
        try:
            result = request()
        except UpstreamError as exc:
            self.metrics.upstream_call(kind, exc.kind, time.monotonic() - began)
            raise
        self.metrics.upstream_call(kind, "ok", time.monotonic() - began)
        return result

    def _cancel(self, job: Job) -> None:
        """Ask the upstream to stop the job's run (it ends by itself if this fails)."""
        if not job.run_id:
            return
        thread_id, run_id = job.thread_id or "", job.run_id
        try:
            self._call("cancel", lambda: self.upstream().cancel(thread_id, run_id))
        except UpstreamError:
            log.warning("cancelling run %s failed; it ends upstream by itself", run_id)

    def _publish(self, job: Job, message: Message) -> None:
        """Show a finished answer; the session's next question, if any, can be claimed now."""
        self.events.publish(job.session_id, {"type": "message", "message": message_dict(message)})
        self.wake()

    def _stop(self, job: Job, text: str | None = None) -> None:
        """The reader pressed Stop: cancel upstream, keep what was written."""
        self._cancel(job)
        kept = visible(text if text is not None else self.store.text_of(job.message_id))
        message = self.store.finish_stopped(job, kept, plain(kept).html if kept else "")
        if message is not None:
            self.metrics.answered("stopped", 0.0)
            self._publish(job, message)

    def _overdue(self, job: Job) -> None:
        """Past the deadline: cancel upstream and tell the reader."""
        self._cancel(job)
        self._finish(job, RunState("expired"))

    def _upstream_failed(self, job: Job, exc: UpstreamError) -> None:
        """Retry what may succeed later; end the answer when asking again cannot help."""
        if isinstance(exc, RateLimited):
            # The limit is the account's, not the answer's: hold every start and poll back.
            if exc.retry_after:
                self._paused_until = max(self._paused_until, time.monotonic() + exc.retry_after)
            self._retry_later(job, max(exc.retry_after or 0.0, self._backoff(job)))
        elif isinstance(exc, Unavailable):
            self._retry_later(job, self._backoff(job))
        else:
            log.warning("answer job %s: %s", job.id, exc, extra={"request_id": job.request_id})
            self._finish(job, RunState("failed"))

    def _backoff(self, job: Job) -> float:
        """Seconds before a job whose upstream request failed tries again."""
        return min(30.0, 0.5 * 2 ** min(job.attempts, 6))

    def _retry_later(self, job: Job, seconds: float) -> None:
        at = min(utcnow() + timedelta(seconds=seconds), job.deadline_at)
        self._release(job, at, attempts=job.attempts + 1)

    def _release(self, job: Job, at: datetime, **values: object) -> None:
        """Give a job back until `at`, and look at it then."""
        self.store.release(job.id, at, **values)
        self.look_at(at)


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
