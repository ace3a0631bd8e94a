"""Answer jobs in the database: claim with a lease, record progress, finish exactly once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from proxy.documents.sections import first_section
from proxy.storage.db import Database
from proxy.storage.models import (
    ACTIVE_JOB_STATES,
    AnswerJob,
    Document,
    JobState,
    Message,
    MessageStatus,
    UpstreamCleanup,
    UpstreamThread,
    utcnow,
)

# A cleared chat's upstream thread is deleted best effort: after this many failed tries, it stays.
CLEANUP_ATTEMPTS = 5


@dataclass
class Job:
    """A claimed job's fields, detached from any database session."""

    id: int
    session_id: str
    question_id: int
    message_id: int
    api: str
    thread_id: str | None
    run_id: str | None
    stream_cursor: int | None
    stop_requested: bool
    attempts: int
    claims: int
    started_at: datetime | None
    deadline_at: datetime
    request_id: str


@dataclass(frozen=True)
class Prompt:
    """What a job asks upstream: the question, on the session's thread when it has one on this
    API, else with the newest finished turns (role, text) before it to seed a new thread."""

    question: str
    thread_id: str | None
    history: list[tuple[str, str]]


@dataclass(frozen=True)
class Cleanup:
    """An upstream thread of a cleared chat to delete, with its runs still going."""

    id: int
    api: str
    thread_id: str
    runs: list[tuple[str, str]]


class JobQueue:
    """Tells workers that a job is waiting: this process's worker at once, others by a notice."""

    def __init__(self, notify_others: Callable[[], None], local: Callable[[], None] | None) -> None:
        self.notify_others = notify_others
        self.local = local

    def enqueue(self) -> None:
        """A job was stored (or changed) and should be looked at now."""
        if self.local is not None:
            self.local()
        self.notify_others()


class JobStore:
    """Every read and write of answer jobs; all writes check the caller still holds the lease."""

    def __init__(self, db: Database, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)

    def _mine(self, job_id: int) -> Any:
        return and_(
            AnswerJob.id == job_id,
            AnswerJob.lease_owner == self.owner,
            AnswerJob.state.in_(ACTIVE_JOB_STATES),
        )

    def claim(self, limit: int) -> list[Job]:
        """Lease up to `limit` due jobs, each the oldest unfinished one of its session."""
        now = utcnow()
        params = {"now": now, "limit": limit, "owner": self.owner, "until": now + self.lease}
        with self.db.session() as s:
            rows = s.connection().execute(_claim(), params).all()
        return sorted((Job(**row._mapping) for row in rows), key=lambda job: job.id)

    def free_dead_leases(self, host: str, alive: Callable[[int], bool]) -> int:
        """Expire leases held by processes of this host that no longer run (a crash or kill -9)."""
        with self.db.read() as s:
            owners = s.scalars(
                select(AnswerJob.lease_owner)
                .where(AnswerJob.lease_owner.like(f"{host}:%"))
                .distinct()
            ).all()
        dead = [o for o in owners if o and o != self.owner and not alive(_pid(o))]
        if not dead:
            return 0
        with self.db.session() as s:
            return s.execute(
                update(AnswerJob)
                .where(AnswerJob.lease_owner.in_(dead))
                .values(lease_owner=None, lease_expires_at=None)
            ).rowcount

    def next_due(self) -> datetime | None:
        """When the earliest unfinished job can next be claimed (a leased one when its lease ends).

        Jobs queued behind an earlier question of their session are left out: the end of that
        question wakes the worker.
        """
        with self.db.read() as s:
            return s.scalar(_next_due())

    def release(self, job_id: int, next_poll_at: datetime, **values: Any) -> bool:
        """Give the job back, to be looked at again at `next_poll_at`."""
        values.update(next_poll_at=next_poll_at, lease_owner=None, lease_expires_at=None)
        with self.db.session() as s:
            return (
                s.execute(update(AnswerJob).where(self._mine(job_id)).values(**values)).rowcount
                == 1
            )

    def prompt(self, job: Job, api: str, budget: int) -> Prompt:
        """The job's question, its session's thread on `api` (if any) and, without one, the
        newest finished turns before the question within `budget` characters."""
        with self.db.read() as s:
            question = s.scalar(select(Message.text).where(Message.id == job.question_id)) or ""
            row = s.execute(
                select(UpstreamThread.api, UpstreamThread.thread_id).where(
                    UpstreamThread.session_id == job.session_id
                )
            ).first()
            if row is not None and row[0] == api:
                return Prompt(question, row[1], [])
            rows = s.execute(
                select(Message.role, Message.text)
                .where(
                    Message.session_id == job.session_id,
                    Message.id < job.question_id,
                    Message.status == MessageStatus.DONE,
                    Message.text != "",
                )
                .order_by(Message.id.desc())
                .limit(50)
            ).all()
        turns: list[tuple[str, str]] = []
        for role, text in rows:
            if len(text) > budget:
                break
            budget -= len(text)
            turns.append((role, text))
        return Prompt(question, None, turns[::-1])

    def text_of(self, message_id: int) -> str:
        """A message's text as stored (the part of an answer streamed so far)."""
        with self.db.read() as s:
            return s.scalar(select(Message.text).where(Message.id == message_id)) or ""

    def opened(self, job: Job, api: str, thread_id: str) -> bool:
        """Record the session's new upstream thread before anything runs on it, so a retried
        start finds it again instead of making another; False when the job is no longer ours."""
        now = utcnow()
        with self.db.session() as s:
            mine = s.scalar(select(AnswerJob.id).where(self._mine(job.id)).with_for_update())
            if mine is None:
                return False
            row = s.scalar(
                select(UpstreamThread).where(UpstreamThread.session_id == job.session_id)
            )
            if row is None:
                s.add(UpstreamThread(session_id=job.session_id, api=api, thread_id=thread_id))
            else:
                row.api, row.thread_id, row.created_at = api, thread_id, now
        return True

    def started(
        self,
        job: Job,
        api: str,
        thread_id: str,
        run_id: str,
        poll_at: datetime | None = None,
    ) -> bool:
        """Record the upstream run; with `poll_at`, also give the job back until then (a polled
        run), in the same transaction. False when the job is no longer ours."""
        now = utcnow()
        values: dict[str, Any] = {
            "api": api,
            "thread_id": thread_id,
            "run_id": run_id,
            "state": JobState.RUNNING,
            "started_at": now,
            "lease_expires_at": now + self.lease,
        }
        if poll_at is not None:
            values.update(next_poll_at=poll_at, lease_owner=None, lease_expires_at=None)
        with self.db.session() as s:
            done = s.execute(update(AnswerJob).where(self._mine(job.id)).values(**values)).rowcount
        return bool(done)

    def show_progress(self, job: Job, text: str, cursor: int | None) -> bool | None:
        """Store the text streamed so far and renew the lease, in one transaction.

        Returns whether the reader asked to stop, or None when the job is no longer ours.
        """
        now = utcnow()
        values: dict[str, Any] = {"lease_expires_at": now + self.lease}
        if cursor is not None:
            values["stream_cursor"] = cursor
        renew = (
            update(AnswerJob)
            .where(self._mine(job.id))
            .values(**values)
            .returning(AnswerJob.stop_requested)
        )
        with self.db.session() as s:
            stop = s.execute(renew).scalar()
            if stop is None:
                return None
            s.execute(
                update(Message)
                .where(Message.id == job.message_id)
                .values(text=text, status=MessageStatus.STREAMING)
            )
            return bool(stop)

    def finish_done(
        self,
        job: Job,
        text: str,
        html: str,
        sources: list[dict[str, str]],
        *,
        upstream_id: str | None = None,
    ) -> Message | None:
        """Write the finished answer, once: None when another worker already did."""
        return self._finish(
            job, JobState.DONE, MessageStatus.DONE, text, html, sources, upstream_id
        )

    def finish_stopped(self, job: Job, text: str, html: str) -> Message | None:
        """End an answer the reader stopped, keeping the text written so far."""
        return self._finish(job, JobState.DONE, MessageStatus.DONE, text, html, [], stopped=True)

    def finish_error(self, job: Job, text: str) -> Message | None:
        """End an answer with an error a reader can read."""
        return self._finish(job, JobState.ERROR, MessageStatus.ERROR, text, "", [])

    def _finish(
        self,
        job: Job,
        state: JobState,
        status: MessageStatus,
        text: str,
        html: str,
        sources: list[dict[str, str]],
        upstream_id: str | None = None,
        *,
        stopped: bool = False,
    ) -> Message | None:
        """End the job and write its message in one transaction, if the job is still ours."""
        now = utcnow()
        with self.db.session() as s:
            ended = s.execute(
                update(AnswerJob)
                .where(self._mine(job.id))
                .values(state=state, finished_at=now, lease_owner=None, lease_expires_at=None)
            ).rowcount
            if not ended:
                return None
            message = s.get(Message, job.message_id)
            if message is None:
                return None
            message.status, message.stopped = status, stopped
            message.text, message.html, message.sources = text, html, sources
            if upstream_id:
                taken = s.scalar(
                    select(Message.id).where(Message.upstream_message_id == upstream_id)
                )
                if taken is None:
                    message.upstream_message_id = upstream_id
            try:
                s.flush()
            except IntegrityError:  # pragma: no cover - guarded by the lookup above
                s.rollback()
                return None
            return message

    def pages(
        self, file_ids: Sequence[str], retrieved: Mapping[str, Sequence[str]] | None = None
    ) -> Mapping[str, tuple[str, str, str]]:
        """(title, url, section) of the stored pages that upstream files hold, by file id: the
        url ends in `#anchor` (and section names it) when a retrieved chunk of the file can be
        placed under one of the page's headings."""
        if not file_ids:
            return {}
        retrieved = retrieved or {}
        with self.db.read() as s:
            rows = s.execute(
                select(Document.file_id, Document.title, Document.url, Document.text).where(
                    Document.file_id.in_(file_ids)
                )
            ).all()
        found: dict[str, tuple[str, str, str]] = {}
        for file_id, title, url, text in rows:
            heading = first_section(text or "", retrieved.get(file_id) or ())
            if heading is None:
                found[file_id] = (title or url, url, "")
            else:
                page = url.split("#", 1)[0]
                found[file_id] = (title or url, f"{page}#{heading.anchor}", heading.title)
        return found

    # --- cleanups of cleared chats --------------------------------------------------------

    def cleanups(self, limit: int) -> list[Cleanup]:
        """Upstream threads of cleared chats still to delete, oldest first."""
        with self.db.read() as s:
            rows = s.scalars(
                select(UpstreamCleanup).order_by(UpstreamCleanup.id).limit(limit)
            ).all()
        return [Cleanup(r.id, r.api, r.thread_id, [(t, u) for t, u in r.runs]) for r in rows]

    def cleaned(self, cleanup_id: int, *, done: bool) -> None:
        """Forget a cleanup that is done, or count a failed try (giving up after a few)."""
        with self.db.session() as s:
            row = s.get(UpstreamCleanup, cleanup_id)
            if row is None:
                return
            row.attempts += 1
            if done or row.attempts >= CLEANUP_ATTEMPTS:
                s.delete(row)


def _first_of_session() -> Any:
    """True for a job with no earlier unfinished job in its session (answers go in order)."""
    older = aliased(AnswerJob)
    return ~exists().where(
        older.session_id == AnswerJob.session_id,
        older.id < AnswerJob.id,
        older.state.in_(ACTIVE_JOB_STATES),
    )


@cache
def _due() -> Select[tuple[int]]:
    """Due, unleased jobs first in their session, locked for claiming (built once: it is hot)."""
    now = bindparam("now")
    return (
        select(AnswerJob.id)
        .where(
            AnswerJob.state.in_(ACTIVE_JOB_STATES),
            AnswerJob.next_poll_at <= now,
            or_(AnswerJob.lease_expires_at.is_(None), AnswerJob.lease_expires_at < now),
            _first_of_session(),
        )
        .order_by(AnswerJob.next_poll_at)
        .with_for_update(skip_locked=True, of=AnswerJob)
    )


@cache
def _claim() -> Update:
    """Lease due jobs and return their fields. Built once: every worker runs it on every tick,
    and building it anew cost more CPU than running it."""
    due = _due().limit(bindparam("limit")).scalar_subquery()
    return (
        update(AnswerJob)
        .where(AnswerJob.id.in_(due))
        .values(
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("until"),
            claims=AnswerJob.claims + 1,
        )
        .returning(*_JOB_COLUMNS)
    )


def _ready_at() -> Any:
    """When a job can next be claimed: its poll time, or the end of a later-ending lease."""
    lease = AnswerJob.lease_expires_at
    return case(
        (and_(lease.is_not(None), lease > AnswerJob.next_poll_at), lease),
        else_=AnswerJob.next_poll_at,
    )


@cache
def _next_due() -> Select[tuple[datetime]]:
    """The earliest time a job first in its session can be claimed."""
    return select(func.min(_ready_at())).where(
        AnswerJob.state.in_(ACTIVE_JOB_STATES), _first_of_session()
    )


def overdue(db: Database, grace: float) -> int:
    """Unfinished answers that could have been claimed more than `grace` seconds ago (a job
    whose lease a worker keeps renewing, such as a streaming one, is not overdue)."""
    late = utcnow() - timedelta(seconds=grace)
    with db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AnswerJob)
                .where(AnswerJob.state.in_(ACTIVE_JOB_STATES), _ready_at() < late)
            )
            or 0
        )


def _pid(owner: str) -> int:
    """The process id inside a lease owner name (host:pid:random), or 0."""
    parts = owner.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


# A claimed job's columns, named as Job's fields.
_JOB_COLUMNS = [getattr(AnswerJob, f.name).label(f.name) for f in fields(Job)]
