"""Messages as readers see them, through the API and the WebSocket alike."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, select

from proxy.storage.db import Database, Query
from proxy.storage.models import ChatSession, Feedback, Message, Role


def shown(
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
        "html": html if role == Role.ASSISTANT else "",
        "status": status,
        "stopped": bool(stopped),
        "sources": sources or [],
        "created_at": created_at.isoformat(),
        "feedback": feedback,
    }


def message_dict(m: Message, feedback: str | None = None) -> dict[str, Any]:
    """A stored message as readers see it."""
    return shown(
        m.id, m.role, m.text, m.html, m.status, m.stopped, m.sources, m.created_at, feedback
    )


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


class MessageReader:
    """Reads messages for readers: a conversation's list, or one message by id."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._listing = Query(db, _conversation())

    def conversation(self, sid: str, after: int = 0) -> list[dict[str, Any]] | None:
        """The session's messages with ids above `after`, oldest first; None for no session."""
        rows = self.db.fetch(self._listing, {"sid": sid, "after": after})
        if not rows:
            return None
        # By position: readers poll this, and named access on rows costs twice as much.
        return [shown(*row) for row in rows if row[0] is not None]

    def one(self, message_id: int) -> dict[str, Any] | None:
        """One message by id, or None when it is gone."""
        with self.db.read() as s:
            row = s.execute(
                select(Message, Feedback.rating)
                .outerjoin(Feedback, Feedback.message_id == Message.id)
                .where(Message.id == message_id)
            ).first()
        return message_dict(row[0], row[1]) if row else None
