"""Typed SQLAlchemy 2.0 models: documents, sources, sessions, threads, messages, answer jobs,
settings."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER primary keys; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time in UTC, as stored in every timestamp column."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        if value is not None and dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every docschat table."""


class Role(StrEnum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    """Where a message stands; readers see it as the message's `status`."""

    PENDING = "pending"
    STREAMING = "streaming"
    DONE = "done"
    ERROR = "error"


class JobState(StrEnum):
    """Where an answer job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"


ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)


class Document(Base):
    """One crawled documentation page and its upstream file."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str] = mapped_column(String(512), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    file_id: Mapped[str | None] = mapped_column(String(128), index=True)
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SkippedUrl(Base):
    """A URL a crawl found not to be a page (its headers named another content type)."""

    __tablename__ = "skipped_urls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    reason: Mapped[str] = mapped_column(String(256), default="")
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def new_console_id() -> str:
    """A conversation's name in the operator console (never the reader's secret session id)."""
    return secrets.token_hex(8)


class Source(Base):
    """A site or local folder scraped once, with the options to scrape it again on a schedule."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The start URL of a crawl, or the folder's absolute path.
    location: Mapped[str] = mapped_column(String(2048), unique=True)
    base_url: Mapped[str | None] = mapped_column(String(2048))  # a folder's published URL
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pages: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    # The process syncing it now, until when: one process of many does a given sync.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChatSession(Base):
    """A reader's conversation; its id is an unguessable bearer secret."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_console_id", "console_id", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The operator sees conversations by this id; the session id would let them act as the reader.
    console_id: Mapped[str | None] = mapped_column(String(32), default=new_console_id)


class UpstreamThread(Base):
    """The one upstream thread (or conversation) of a session, per upstream API."""

    __tablename__ = "upstream_threads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), unique=True
    )
    api: Mapped[str] = mapped_column(String(16))
    thread_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Message(Base):
    """One visible message of a conversation: the reader's question or the assistant's answer."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_session_id_id", "session_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.DONE)
    stopped: Mapped[bool] = mapped_column(default=False)
    sources: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    upstream_message_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Feedback(Base):
    """A reader's thumbs up or down on one answer (the latest rating wins)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AnswerJob(Base):
    """The work of answering one question, leased by one worker at a time."""

    __tablename__ = "answer_jobs"
    __table_args__ = (
        Index("ix_answer_jobs_due", "state", "next_poll_at"),
        Index("ix_answer_jobs_session", "session_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    api: Mapped[str] = mapped_column(String(16), default="")
    thread_id: Mapped[str | None] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED)
    stream_cursor: Mapped[int | None] = mapped_column(Integer)
    stop_requested: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Times a worker took the job: a second take with no run recorded may follow a worker that
    # died after starting the run, so the new one looks for that run first.
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UpstreamCleanup(Base):
    """An upstream thread (and its running answers) to delete after a reader cleared a chat."""

    __tablename__ = "upstream_cleanups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    api: Mapped[str] = mapped_column(String(16))
    thread_id: Mapped[str] = mapped_column(String(128))
    # [thread id, run id] of each answer that was still running when the chat was cleared.
    runs: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResolvedGap(Base):
    """A coverage-gap group an operator marked resolved; questions asked later reopen it."""

    __tablename__ = "resolved_gaps"

    group_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(Text)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Setting(Base):
    """A value recorded by `docschat setup` (upstream ids, detected API)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Counter(Base):
    """A rate-limit or budget counter for one key in one time window."""

    __tablename__ = "counters"
    __table_args__ = (UniqueConstraint("key", "window"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    window: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
