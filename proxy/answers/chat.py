"""The domain: sessions, questions, answers as stored messages, and what readers may do to them."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from proxy.answers.errors import Conflict, Invalid, NotFound, TooLong
from proxy.answers.events import Publisher
from proxy.answers.jobs import JobQueue
from proxy.answers.limits import HANDOFF_EVENTS, Limits
from proxy.answers.messages import MessageReader, message_dict
from proxy.config import Settings
from proxy.storage.db import Database
from proxy.storage.models import (
    ACTIVE_JOB_STATES,
    AnswerJob,
    ChatSession,
    Feedback,
    JobState,
    Message,
    MessageStatus,
    Role,
    UpstreamCleanup,
    UpstreamThread,
    utcnow,
)

MAX_COMMENT_CHARS = 2000


def _plausible(sid: Any) -> bool:
    """Whether a session id is worth looking up (ids are made by us and never longer)."""
    return isinstance(sid, str) and len(sid) <= 64


def _storable(text: str) -> bool:
    """False for NUL bytes and lone surrogates (valid JSON escapes, but not storable text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def clean_text(text: Any, limit: int) -> str:
    """A question as stored: a non-empty string within the length limit, without NUL bytes."""
    if not isinstance(text, str):
        raise Invalid("`text` must be a string.", code="invalid_text")
    if not _storable(text):
        raise Invalid("`text` must be valid Unicode without NUL characters.", code="invalid_text")
    text = text.strip()
    if not text:
        raise Invalid("Please type a question first.", code="empty_text")
    if len(text) > limit:
        raise TooLong(f"Questions are limited to {limit} characters.")
    return text


def clean_comment(comment: Any) -> str:
    """A feedback comment as stored: optional text within the length limit."""
    if comment is None:
        return ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS or not _storable(comment):
        raise Invalid(
            f"`comment` must be text of at most {MAX_COMMENT_CHARS} characters.",
            code="invalid_comment",
        )
    return comment


class Chat:
    """Accepts questions and shows answers; workers do the upstream work."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: Publisher,
        limits: Limits,
        queue: JobQueue,
        reader: MessageReader,
    ) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.limits = limits
        self.queue = queue
        self.reader = reader

    # --- sessions -------------------------------------------------------------------------

    def create_session(self, client_ip: str = "") -> str:
        """A new session with an unguessable id (256 random bits)."""
        sid = secrets.token_urlsafe(32)
        with self.db.session() as s:
            s.add(ChatSession(id=sid, client_ip=client_ip[:64]))
        return sid

    def exists(self, sid: str) -> bool:
        """Whether the session exists."""
        with self.db.read() as s:
            return _plausible(sid) and s.get(ChatSession, sid) is not None

    def messages(self, sid: str, after: int = 0) -> list[dict[str, Any]]:
        """The session's messages with ids above `after`, oldest first."""
        found = self.reader.conversation(sid, after) if _plausible(sid) else None
        if found is None:
            raise NotFound()
        return found

    # --- asking ---------------------------------------------------------------------------

    def ask(self, sid: str, text: Any, client_ip: str = "", request_id: str = "") -> dict:
        """Store a question, its pending answer and the job that will answer it."""
        text = clean_text(text, self.settings.max_question_chars)
        with self.db.read() as s:
            _session(s, sid)
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
                raise Conflict(
                    "Please wait for the current answers before asking more.", code="busy"
                )
            question = Message(session_id=sid, role=Role.USER, text=text, status=MessageStatus.DONE)
            answer = Message(session_id=sid, role=Role.ASSISTANT, status=MessageStatus.PENDING)
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
            self.events.publish(sid, {"type": "message", "message": message_dict(m)})
        self.queue.enqueue()
        return message_dict(question)

    def retry(self, sid: str, message_id: int, client_ip: str = "", request_id: str = "") -> dict:
        """Ask a failed answer's question again, reusing its message."""
        with self.db.read() as s:
            _failed_answer(s, sid, message_id)
        # Counted outside the write transaction, which it would otherwise wait on.
        self.limits.check_question(sid, client_ip or "unknown")
        now = utcnow()
        with self.db.session() as s:
            answer, job = _failed_answer(s, sid, message_id)
            answer.status, answer.text, answer.html, answer.sources = (
                MessageStatus.PENDING,
                "",
                "",
                [],
            )
            job.state, job.run_id, job.stream_cursor, job.attempts = JobState.QUEUED, None, None, 0
            job.claims = 0  # a new try: no earlier run of it to look for
            job.next_poll_at, job.lease_owner, job.finished_at = now, None, None
            job.deadline_at = now + timedelta(seconds=self.settings.answer_deadline)
            job.request_id = request_id[:64]
            s.flush()
            shown = message_dict(answer)
        self.events.publish(sid, {"type": "message", "message": shown})
        self.queue.enqueue()
        return shown

    def stop(self, sid: str, message_id: int) -> dict:
        """Ask the worker to stop an unfinished answer, keeping the text written so far."""
        with self.db.session() as s:
            answer = _answer(s, sid, message_id)
            s.execute(
                update(AnswerJob)
                .where(
                    AnswerJob.message_id == message_id,
                    AnswerJob.state.in_(ACTIVE_JOB_STATES),
                )
                .values(stop_requested=True, next_poll_at=utcnow())
            )
            shown = message_dict(answer)
        self.queue.enqueue()
        return shown

    def feedback(self, sid: str, message_id: int, rating: Any, comment: Any = "") -> dict:
        """Record a thumbs up or down on an answer of this session (the latest one counts)."""
        if rating not in ("up", "down"):
            raise Invalid('`rating` must be "up" or "down".', code="invalid_rating")
        comment = clean_comment(comment)
        with self.db.session() as s:
            answer = _answer(s, sid, message_id)
            row = s.scalar(select(Feedback).where(Feedback.message_id == message_id))
            if row is None:
                row = Feedback(message_id=message_id, rating=rating, comment=comment)
                s.add(row)
            else:
                row.rating, row.comment, row.created_at = rating, comment, utcnow()
            shown = message_dict(answer, rating)
        self.events.publish(sid, {"type": "message", "message": shown})
        return {"message_id": message_id, "rating": rating, "comment": comment}

    def handoff(self, sid: str, event: Any) -> None:
        """Count a "Contact support" link shown to this session's reader, or followed by them."""
        if event not in HANDOFF_EVENTS:
            raise Invalid('`event` must be "offered" or "followed".', code="invalid_event")
        with self.db.read() as s:
            _session(s, sid)
        self.limits.handoff(event, sid)

    def clear(self, sid: str) -> None:
        """Delete the conversation here; a worker deletes its upstream thread and stops its runs."""
        with self.db.session() as s:
            _session(s, sid)
            thread = s.scalar(select(UpstreamThread).where(UpstreamThread.session_id == sid))
            running = s.execute(
                select(AnswerJob.thread_id, AnswerJob.run_id).where(
                    AnswerJob.session_id == sid,
                    AnswerJob.state.in_(ACTIVE_JOB_STATES),
                    AnswerJob.run_id.is_not(None),
                )
            ).all()
            if thread is not None:
                runs = [[t, r] for t, r in running if t and r]
                s.add(UpstreamCleanup(api=thread.api, thread_id=thread.thread_id, runs=runs))
            s.execute(delete(AnswerJob).where(AnswerJob.session_id == sid))
            s.execute(delete(Message).where(Message.session_id == sid))
            s.execute(delete(UpstreamThread).where(UpstreamThread.session_id == sid))
        self.events.publish(sid, {"type": "cleared"})
        if thread is not None:
            self.queue.enqueue()


def _session(s: Session, sid: str) -> ChatSession:
    """The session, or NotFound."""
    found = s.get(ChatSession, sid) if _plausible(sid) else None
    if found is None:
        raise NotFound()
    return found


def _answer(s: Session, sid: str, message_id: int) -> Message:
    """An assistant message of this session, or NotFound (for the session or the message)."""
    _session(s, sid)
    answer = s.get(Message, message_id)
    if answer is None or answer.session_id != sid or answer.role != Role.ASSISTANT:
        raise NotFound("message")
    return answer


def _failed_answer(s: Session, sid: str, message_id: int) -> tuple[Message, AnswerJob]:
    """A failed answer of this session and its job, or the refusal a reader should see."""
    answer = _answer(s, sid, message_id)
    job = s.scalar(select(AnswerJob).where(AnswerJob.message_id == message_id))
    if job is None:
        raise NotFound("message")
    if answer.status != MessageStatus.ERROR:
        raise Conflict("Only a failed answer can be retried.", code="not_failed")
    return answer, job
