"""The domain: sessions, questions, answers as stored messages, and what readers may do to them."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from proxy.answers.events import Bus
from proxy.answers.limits import Limits
from proxy.config import Settings
from proxy.storage.db import Database, Query
from proxy.storage.models import (
    ACTIVE_JOB_STATES,
    AnswerJob,
    ChatSession,
    Feedback,
    Message,
    UpstreamThread,
    utcnow,
)
from proxy.web.errors import ApiError, not_found


def message_dict(m: Message, feedback: str | None = None) -> dict[str, Any]:
    """A message as the API and the WebSocket show it."""
    return _shown(
        m.id, m.role, m.text, m.html, m.status, m.stopped, m.sources, m.created_at, feedback
    )


def _shown(
    id_: int,
    role: str,
    text: str,
    html: str,
    status: str,
    stopped: bool,
    sources: list[dict[str, str]] | None,
    created_at: datetime,
    feedback: str | None,
) -> dict[str, Any]:
    """A message's fields, in `_conversation()`'s column order, as readers see them."""
    return {
        "id": id_,
        "role": role,
        "text": text,
        "html": html if role == "assistant" else "",
        "status": status,
        "stopped": bool(stopped),
        "sources": sources or [],
        "created_at": created_at.isoformat(),
        "feedback": feedback,
    }


@cache
def _conversation() -> Select[Any]:
    """A session's messages after an id with their ratings, in one statement that also tells an
    unknown session (no row) from an empty one (one row of nulls). Built once: readers poll it."""
    m, f = Message.__table__.c, Feedback.__table__.c
    return (
        select(m.id, m.role, m.text, m.html, m.status, m.stopped, m.sources, m.created_at, f.rating)
        .select_from(ChatSession.__table__)
        .outerjoin(
            Message.__table__,
            and_(m.session_id == ChatSession.__table__.c.id, m.id > bindparam("after")),
        )
        .outerjoin(Feedback.__table__, f.message_id == m.id)
        .where(ChatSession.__table__.c.id == bindparam("sid"))
        .order_by(m.id)
    )


def _plausible(sid: Any) -> bool:
    """Whether a session id is worth looking up (ids are made by us and never longer)."""
    return isinstance(sid, str) and len(sid) <= 64


def _encodable(text: str) -> bool:
    """False for strings with lone surrogates (valid JSON escapes, but not storable text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: Any, limit: int) -> str:
    """A question as stored: a non-empty string within the length limit, without NUL bytes."""
    if not isinstance(text, str):
        raise ApiError(400, "invalid_text", "`text` must be a string.")
    if "\x00" in text or not _encodable(text):
        raise ApiError(400, "invalid_text", "`text` must be valid Unicode without NUL characters.")
    text = text.strip()
    if not text:
        raise ApiError(400, "empty_text", "Please type a question first.")
    if len(text) > limit:
        raise ApiError(413, "too_long", f"Questions are limited to {limit} characters.")
    return text


class Chat:
    """Accepts questions and shows answers; the poller does the upstream work."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: Bus,
        limits: Limits | None = None,
        wake: Callable[[], None] | None = None,
        forget: Callable[[str, str, list[tuple[str, str]]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.limits = limits
        self.wake = wake or (lambda: None)
        self.forget = forget
        self._listing = Query(db, _conversation())  # readers poll it: compiled once

    # --- sessions -------------------------------------------------------------------------

    def create_session(self, client_ip: str = "") -> str:
        """A new session with an unguessable id (256 random bits)."""
        sid = secrets.token_urlsafe(32)
        with self.db.session() as s:
            s.add(ChatSession(id=sid, client_ip=client_ip[:64]))
        return sid

    def _session(self, s: Session, sid: str) -> ChatSession:
        found = s.get(ChatSession, sid) if _plausible(sid) else None
        if found is None:
            raise not_found()
        return found

    def exists(self, sid: str) -> bool:
        """Whether the session exists."""
        with self.db.read() as s:
            try:
                self._session(s, sid)
            except ApiError:
                return False
        return True

    def messages(self, sid: str, after: int = 0) -> list[dict[str, Any]]:
        """The session's messages with ids above `after`, oldest first."""
        if not _plausible(sid):
            raise not_found()
        rows = self.db.fetch(self._listing, {"sid": sid, "after": after})
        if not rows:
            raise not_found()
        # By position: readers poll this, and named access on rows costs twice as much.
        return [_shown(*row) for row in rows if row[0] is not None]

    def message(self, message_id: int) -> dict[str, Any] | None:
        """One message by id (for events), or None when it is gone."""
        with self.db.read() as s:
            row = s.execute(
                select(Message, Feedback.rating)
                .outerjoin(Feedback, Feedback.message_id == Message.id)
                .where(Message.id == message_id)
            ).first()
        return message_dict(row[0], row[1]) if row else None

    # --- asking ---------------------------------------------------------------------------

    def ask(self, sid: str, text: Any, client_ip: str = "", request_id: str = "") -> dict:
        """Store a question, its pending answer and the job that will answer it."""
        text = clean_text(text, self.settings.max_question_chars)
        with self.db.read() as s:
            self._session(s, sid)
        if self.limits is not None:
            self.limits.check_question(sid, client_ip or "unknown")
        now = utcnow()
        with self.db.session() as s:
            # Lock the session row: questions of one session are stored one after another, so a
            # question and its answer get adjacent ids and the queue limit cannot be raced past.
            s.get(ChatSession, sid, with_for_update=True)
            waiting = s.scalar(
                select(func.count())
                .select_from(AnswerJob)
                .where(AnswerJob.session_id == sid, AnswerJob.state.in_(ACTIVE_JOB_STATES))
            )
            if waiting >= self.settings.max_queued_per_session:
                raise ApiError(
                    409, "busy", "Please wait for the current answers before asking more."
                )
            question = Message(session_id=sid, role="user", text=text, status="done")
            answer = Message(session_id=sid, role="assistant", status="pending")
            s.add_all([question, answer])
            s.flush()
            s.add(
                AnswerJob(
                    session_id=sid,
                    question_id=question.id,
                    message_id=answer.id,
                    next_poll_at=now,
                    deadline_at=now + timedelta(seconds=self.settings.answer_deadline),
                    request_id=request_id[:64],
                )
            )
        for m in (question, answer):
            self.bus.publish(sid, {"type": "message", "message": message_dict(m)})
        self.wake()
        return message_dict(question)

    def retry(self, sid: str, message_id: int, client_ip: str = "", request_id: str = "") -> dict:
        """Ask a failed answer's question again, reusing its message."""
        with self.db.read() as s:
            self._failed_answer(s, sid, message_id)
        if self.limits is not None:  # counted outside the write transaction it would wait on
            self.limits.check_question(sid, client_ip or "unknown")
        now = utcnow()
        with self.db.session() as s:
            answer, job = self._failed_answer(s, sid, message_id)
            answer.status, answer.text, answer.html, answer.sources = "pending", "", "", []
            job.state, job.run_id, job.stream_cursor, job.attempts = "queued", None, None, 0
            job.next_poll_at, job.lease_owner, job.finished_at = now, None, None
            job.deadline_at = now + timedelta(seconds=self.settings.answer_deadline)
            job.request_id = request_id[:64]
            s.flush()
            shown = message_dict(answer)
        self.bus.publish(sid, {"type": "message", "message": shown})
        self.wake()
        return shown

    def _failed_answer(self, s: Session, sid: str, message_id: int) -> tuple[Message, AnswerJob]:
        """A failed answer of this session and its job, or the error a reader should see."""
        self._session(s, sid)
        answer = s.get(Message, message_id)
        job = s.scalar(select(AnswerJob).where(AnswerJob.message_id == message_id))
        if answer is None or answer.session_id != sid or job is None:
            raise not_found("message")
        if answer.status != "error":
            raise ApiError(409, "not_failed", "Only a failed answer can be retried.")
        return answer, job

    def stop(self, sid: str, message_id: int) -> dict:
        """Ask the worker to stop an unfinished answer, keeping the text written so far."""
        with self.db.session() as s:
            self._session(s, sid)
            answer = s.get(Message, message_id)
            if answer is None or answer.session_id != sid or answer.role != "assistant":
                raise not_found("message")
            s.execute(
                update(AnswerJob)
                .where(
                    AnswerJob.message_id == message_id,
                    AnswerJob.state.in_(ACTIVE_JOB_STATES),
                )
                .values(stop_requested=True, next_poll_at=utcnow())
            )
            shown = message_dict(answer)
        self.wake()
        return shown

    def feedback(self, sid: str, message_id: int, rating: Any, comment: Any = "") -> dict:
        """Record a thumbs up or down on an answer of this session (the latest one counts)."""
        if rating not in ("up", "down"):
            raise ApiError(400, "invalid_rating", '`rating` must be "up" or "down".')
        if comment is None:
            comment = ""
        if (
            not isinstance(comment, str)
            or len(comment) > 2000
            or "\x00" in comment
            or not _encodable(comment)
        ):
            raise ApiError(
                400, "invalid_comment", "`comment` must be text of at most 2000 characters."
            )
        with self.db.session() as s:
            self._session(s, sid)
            answer = s.get(Message, message_id)
            if answer is None or answer.session_id != sid or answer.role != "assistant":
                raise not_found("message")
            row = s.scalar(select(Feedback).where(Feedback.message_id == message_id))
            if row is None:
                row = Feedback(message_id=message_id, rating=rating, comment=comment)
                s.add(row)
            else:
                row.rating, row.comment, row.created_at = rating, comment, utcnow()
            shown = message_dict(answer, rating)
        self.bus.publish(sid, {"type": "message", "message": shown})
        return {"message_id": message_id, "rating": rating, "comment": comment}

    def clear(self, sid: str) -> None:
        """Delete the conversation here and forget its upstream thread and running answers."""
        with self.db.session() as s:
            self._session(s, sid)
            thread = s.scalar(select(UpstreamThread).where(UpstreamThread.session_id == sid))
            running = s.execute(
                select(AnswerJob.thread_id, AnswerJob.run_id).where(
                    AnswerJob.session_id == sid,
                    AnswerJob.state.in_(ACTIVE_JOB_STATES),
                    AnswerJob.run_id.is_not(None),
                )
            ).all()
            s.execute(delete(AnswerJob).where(AnswerJob.session_id == sid))
            s.execute(delete(Message).where(Message.session_id == sid))
            s.execute(delete(UpstreamThread).where(UpstreamThread.session_id == sid))
        self.bus.publish(sid, {"type": "cleared"})
        if thread is not None and self.forget is not None:
            self.forget(thread.api, thread.thread_id, [(t, r) for t, r in running if t and r])
