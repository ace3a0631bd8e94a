"""Retention: conversations whose last message is older than DOCSCHAT_RETENTION_DAYS go away."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from proxy.storage.db import Database
from proxy.storage.models import (
    AnswerJob,
    ChatSession,
    Feedback,
    Message,
    UpstreamCleanup,
    UpstreamThread,
    utcnow,
)

BATCH = 500  # conversations deleted per transaction, so a first purge does not hold the lock long


def purge(db: Database, days: int, now: datetime | None = None) -> int:
    """Delete conversations with nothing newer than `days` days; their upstream threads are
    queued for deletion as a cleared chat's are. Returns how many conversations went."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    newest = (
        select(func.max(Message.created_at))
        .where(Message.session_id == ChatSession.id)
        .correlate(ChatSession)
        .scalar_subquery()
    )
    removed = 0
    while True:
        with db.session() as s:
            old = s.scalars(
                select(ChatSession.id)
                .where(func.coalesce(newest, ChatSession.created_at) < cutoff)
                .limit(BATCH)
            ).all()
            if not old:
                return removed
            threads = s.scalars(select(UpstreamThread).where(UpstreamThread.session_id.in_(old)))
            for thread in threads:
                s.add(UpstreamCleanup(api=thread.api, thread_id=thread.thread_id, runs=[]))
            messages = select(Message.id).where(Message.session_id.in_(old))
            s.execute(delete(Feedback).where(Feedback.message_id.in_(messages)))
            s.execute(delete(AnswerJob).where(AnswerJob.session_id.in_(old)))
            s.execute(delete(Message).where(Message.session_id.in_(old)))
            s.execute(delete(UpstreamThread).where(UpstreamThread.session_id.in_(old)))
            s.execute(delete(ChatSession).where(ChatSession.id.in_(old)))
        removed += len(old)
