"""What the operator console reads: usage over time, coverage gaps, conversations, transcripts.

"Uncovered" is an assistant answer that finished with no source; "disliked" one a reader rated
thumbs-down; "failed" one that ended in error. Conversations are named by their console id,
never by the reader's session id, and client addresses are never read here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urldefrag

from sqlalchemy import Text, and_, cast, delete, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from proxy.answers.errors import NotFound
from proxy.answers.grouping import group
from proxy.storage.db import Database
from proxy.storage.models import (
    AnswerJob,
    ChatSession,
    Feedback,
    JobState,
    Message,
    MessageStatus,
    ResolvedGap,
    Role,
    new_console_id,
    utcnow,
)

GAP_LIMIT = 2000  # newest gap questions grouped at once; grouping compares each pair
TOP_PAGES = 10
NO_SOURCES = ("[]", "null")


def _uncovered() -> Any:
    """SQL: an answer that finished without a source (JSON compared as text on both databases)."""
    return and_(
        Message.status == MessageStatus.DONE,
        or_(Message.sources.is_(None), cast(Message.sources, Text).in_(NO_SOURCES)),
    )


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of a moment's day."""
    return datetime.combine(moment.astimezone(UTC).date(), datetime.min.time(), UTC)


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of some values (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return round(ordered[int(rank) - 1], 3)


def overview(db: Database, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Questions per day, answers by outcome, ratings, most cited pages and answer times."""
    now = now or utcnow()
    since = day_start(now) - timedelta(days=days - 1)
    with db.read() as s:
        asked = s.scalars(
            select(Message.created_at).where(Message.role == Role.USER, Message.created_at >= since)
        ).all()
        answers = s.execute(
            select(Message.status, Message.sources).where(
                Message.role == Role.ASSISTANT, Message.created_at >= since
            )
        ).all()
        ratings = dict(
            s.execute(
                select(Feedback.rating, func.count())
                .where(Feedback.created_at >= since)
                .group_by(Feedback.rating)
            ).all()
        )
        timings = s.execute(
            select(AnswerJob.created_at, AnswerJob.finished_at).where(
                AnswerJob.state == JobState.DONE,
                AnswerJob.created_at >= since,
                AnswerJob.finished_at.is_not(None),
            )
        ).all()
    per_day = Counter(moment.astimezone(UTC).date() for moment in asked)
    first = since.date()
    outcome = {"answered": 0, "uncovered": 0, "failed": 0, "pending": 0}
    cited: Counter[str] = Counter()
    titles: dict[str, str] = {}
    for status, sources in answers:
        if status == MessageStatus.ERROR:
            outcome["failed"] += 1
        elif status != MessageStatus.DONE:
            outcome["pending"] += 1
        elif sources:
            outcome["answered"] += 1
            # One count per page an answer cites, whichever of its sections.
            pages = {urldefrag(src.get("url", "")).url: src.get("title", "") for src in sources}
            for url, title in pages.items():
                cited[url] += 1
                titles.setdefault(url, title)
        else:
            outcome["uncovered"] += 1
    seconds = [(done - began).total_seconds() for began, done in timings]
    return {
        "since": since.isoformat(),
        "questions": len(asked),
        "per_day": [
            {"date": d.isoformat(), "questions": per_day[d]}
            for d in (first + timedelta(days=i) for i in range(days))
        ],
        "answers": outcome,
        "feedback": {"up": int(ratings.get("up", 0)), "down": int(ratings.get("down", 0))},
        "top_pages": [
            {"url": url, "title": titles[url], "count": count}
            for url, count in sorted(cited.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_PAGES]
        ],
        "answer_seconds": {"p50": percentile(seconds, 0.5), "p95": percentile(seconds, 0.95)},
    }


@dataclass
class GapQuestion:
    """One question whose answer had no source or was rated down."""

    text: str
    reason: str  # "uncovered" or "disliked"
    asked_at: datetime
    conversation: str
    answer: str
    comment: str = ""

    def shown(self) -> dict[str, Any]:
        """As the console and `docschat report --json` show it."""
        return {
            "text": self.text,
            "reason": self.reason,
            "comment": self.comment,
            "asked_at": self.asked_at.isoformat(),
            "conversation": self.conversation,
            "answer": self.answer,
        }


@dataclass
class GapGroup:
    """Gap questions about one topic."""

    id: str
    label: str
    questions: list[GapQuestion] = field(default_factory=list)
    resolved_at: datetime | None = None

    @property
    def first_asked(self) -> datetime:
        """When the topic was first asked about."""
        return min(q.asked_at for q in self.questions)

    @property
    def last_asked(self) -> datetime:
        """When the topic was last asked about."""
        return max(q.asked_at for q in self.questions)

    @property
    def resolved(self) -> bool:
        """Marked resolved, and not asked about since."""
        return self.resolved_at is not None and self.last_asked <= self.resolved_at

    def shown(self) -> dict[str, Any]:
        """As the console and `docschat report --json` show it."""
        reasons = Counter(q.reason for q in self.questions)
        return {
            "id": self.id,
            "label": self.label,
            "count": len(self.questions),
            "first_asked": self.first_asked.isoformat(),
            "last_asked": self.last_asked.isoformat(),
            "reasons": {"uncovered": reasons["uncovered"], "disliked": reasons["disliked"]},
            "resolved": self.resolved,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "questions": [q.shown() for q in self.questions],
        }


def gap_questions(db: Database, since: datetime) -> list[GapQuestion]:
    """Questions asked since a moment whose answer had no source or got a thumbs-down, oldest
    first."""
    answer = aliased(Message)
    question = aliased(Message)
    # The question of an answer is the newest reader message before it in its conversation.
    asked = (
        select(func.max(Message.id))
        .where(
            Message.session_id == answer.session_id,
            Message.role == Role.USER,
            Message.id < answer.id,
        )
        .correlate(answer)
        .scalar_subquery()
    )
    uncovered = and_(
        answer.status == MessageStatus.DONE,
        or_(answer.sources.is_(None), cast(answer.sources, Text).in_(NO_SOURCES)),
    )
    with db.read() as s:
        rows = s.execute(
            select(question, answer, Feedback.rating, Feedback.comment, ChatSession.console_id)
            .select_from(answer)
            .join(question, question.id == asked)
            .join(ChatSession, ChatSession.id == answer.session_id)
            .outerjoin(Feedback, Feedback.message_id == answer.id)
            .where(
                answer.role == Role.ASSISTANT,
                question.created_at >= since,
                or_(uncovered, Feedback.rating == "down"),
            )
            .order_by(question.created_at.desc(), question.id.desc())
            .limit(GAP_LIMIT)
        ).all()
    found = [
        GapQuestion(
            text=q.text,
            reason="disliked" if rating == "down" else "uncovered",
            asked_at=q.created_at,
            conversation=cid or "",
            answer=a.text,
            comment=(comment or "") if rating == "down" else "",
        )
        for q, a, rating, comment, cid in rows
    ]
    found.reverse()
    return found


def gaps(db: Database, since: datetime, *, include_resolved: bool = False) -> list[GapGroup]:
    """Gap questions grouped by topic, the most asked first; resolved groups only if asked."""
    questions = gap_questions(db, since)
    groups = []
    for g in group([q.text for q in questions]):
        members = [questions[i] for i in g.items]
        groups.append(GapGroup(g.id, members[g.label].text, members))
    with db.read() as s:
        resolved = dict(
            s.execute(
                select(ResolvedGap.group_id, ResolvedGap.resolved_at).where(
                    ResolvedGap.group_id.in_([g.id for g in groups])
                )
            ).all()
        )
    for g in groups:
        g.resolved_at = resolved.get(g.id)
    shown = [g for g in groups if include_resolved or not g.resolved]
    shown.sort(key=lambda g: (-len(g.questions), -g.last_asked.timestamp(), g.id))
    return shown


def resolve(db: Database, group_id: str, since: datetime, now: datetime | None = None) -> GapGroup:
    """Mark a gap group resolved now; NotFound when no such group is shown."""
    found = next((g for g in gaps(db, since, include_resolved=True) if g.id == group_id), None)
    if found is None:
        raise NotFound("group")
    now = now or utcnow()
    with db.session() as s:
        row = s.get(ResolvedGap, group_id)
        if row is None:
            s.add(ResolvedGap(group_id=group_id, label=found.label[:2000], resolved_at=now))
        else:
            row.resolved_at = now
    found.resolved_at = now
    return found


def reopen(db: Database, group_id: str) -> None:
    """Forget that a group was marked resolved."""
    with db.session() as s:
        s.execute(delete(ResolvedGap).where(ResolvedGap.group_id == group_id))


@dataclass(frozen=True)
class Filters:
    """What the conversation list is narrowed to."""

    uncovered: bool = False
    disliked: bool = False
    failed: bool = False
    text: str = ""
    start: date | None = None
    end: date | None = None  # inclusive


def _like(text: str) -> str:
    """A LIKE pattern matching text anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conversations(
    db: Database, filters: Filters, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Conversations, newest first, narrowed by the filters, with their counts and flags."""
    wanted = []
    in_session = Message.session_id == ChatSession.id
    if filters.uncovered:
        wanted.append(exists().where(in_session, Message.role == Role.ASSISTANT, _uncovered()))
    if filters.disliked:
        wanted.append(
            exists().where(in_session, Feedback.message_id == Message.id, Feedback.rating == "down")
        )
    if filters.failed:
        wanted.append(exists().where(in_session, Message.status == MessageStatus.ERROR))
    if filters.text.strip():
        pattern = _like(filters.text.strip().lower())
        wanted.append(
            exists().where(in_session, func.lower(Message.text).like(pattern, escape="\\"))
        )
    # One message inside the whole range, not one after its start and another before its end.
    within = []
    if filters.start is not None:
        within.append(
            Message.created_at >= datetime.combine(filters.start, datetime.min.time(), UTC)
        )
    if filters.end is not None:
        end = datetime.combine(filters.end + timedelta(days=1), datetime.min.time(), UTC)
        within.append(Message.created_at < end)
    if within:
        wanted.append(exists().where(in_session, *within))
    has_messages = exists().where(in_session)
    # A read: every session has its console id (the model's default, filled in by migration
    # 0006 for older ones), and on SQLite a write session would hold the write lock meanwhile.
    with db.read() as s:
        base = select(ChatSession).where(has_messages, *wanted)
        total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
        sessions = s.scalars(
            base.order_by(ChatSession.created_at.desc(), ChatSession.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        items = [_summary(s, session) for session in sessions]
    return {"total": int(total), "conversations": items}


def _console_id(session: ChatSession) -> str:
    """A session's console id, given one now if it has none yet."""
    if not session.console_id:
        session.console_id = new_console_id()
    return session.console_id


def _summary(s: Session, session: ChatSession) -> dict[str, Any]:
    """One line of the conversation list."""
    rows = s.execute(
        select(Message, Feedback.rating)
        .outerjoin(Feedback, Feedback.message_id == Message.id)
        .where(Message.session_id == session.id)
        .order_by(Message.id)
    ).all()
    questions = [m for m, _ in rows if m.role == Role.USER]
    answers = [(m, r) for m, r in rows if m.role == Role.ASSISTANT]
    return {
        "id": _console_id(session),
        "started_at": rows[0][0].created_at.isoformat(),
        "last_at": rows[-1][0].created_at.isoformat(),
        "questions": len(questions),
        "first_question": questions[0].text if questions else "",
        "uncovered": sum(1 for m, _ in answers if m.status == MessageStatus.DONE and not m.sources),
        "disliked": sum(1 for _, r in answers if r == "down"),
        "failed": sum(1 for m, _ in answers if m.status == MessageStatus.ERROR),
    }


def transcript(db: Database, console_id: str) -> dict[str, Any]:
    """One conversation by its console id, with sources, ratings and comments."""
    with db.read() as s:
        session = s.scalar(select(ChatSession).where(ChatSession.console_id == console_id))
        if session is None:
            raise NotFound("conversation")
        rows = s.execute(
            select(Message, Feedback)
            .outerjoin(Feedback, Feedback.message_id == Message.id)
            .where(Message.session_id == session.id)
            .order_by(Message.id)
        ).all()
    messages = []
    for m, fb in rows:
        messages.append(
            {
                "id": m.id,
                "role": m.role,
                "text": m.text,
                "status": m.status,
                "sources": m.sources or [],
                "created_at": m.created_at.isoformat(),
                "feedback": {"rating": fb.rating, "comment": fb.comment} if fb else None,
            }
        )
    return {"id": console_id, "started_at": session.created_at.isoformat(), "messages": messages}
