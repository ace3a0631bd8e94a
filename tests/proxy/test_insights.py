"""The console's queries on SQLite and PostgreSQL alike: uncovered (no sources, stored as JSON),
disliked, failed, text search with literal wildcards, gaps grouped, transcripts by console id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from proxy.answers import insights
from proxy.answers.reports import gaps_csv, gaps_markdown
from proxy.storage.db import Database
from proxy.storage.models import AnswerJob, ChatSession, Feedback, Message, utcnow
from tests.support import pg_schema

SOURCE = [{"title": "Installing", "url": "http://docs.test/install#pip"}]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'i.db'}")
        database.upgrade()
        yield database
        database.dispose()
        return
    with pg_schema() as url:
        database = Database(url)
        database.upgrade()
        yield database
        database.dispose()


def _conversation(
    db: Database,
    sid: str,
    question: str,
    *,
    sources: list | None = None,
    status: str = "done",
    rating: str | None = None,
    comment: str = "",
    days_ago: int = 0,
) -> None:
    """One question and its answer, as the service stores them."""
    when = utcnow() - timedelta(days=days_ago)
    with db.session() as s:
        s.add(ChatSession(id=sid, client_ip="192.0.2.1", created_at=when))
        s.flush()
        q = Message(session_id=sid, role="user", text=question, created_at=when)
        a = Message(
            session_id=sid,
            role="assistant",
            text="I could not find that." if not sources else "Use pip.",
            status=status,
            sources=sources or [],
            created_at=when,
        )
        s.add_all([q, a])
        s.flush()
        s.add(
            AnswerJob(
                session_id=sid,
                question_id=q.id,
                message_id=a.id,
                state="done" if status == "done" else "error",
                deadline_at=when + timedelta(minutes=2),
                created_at=when,
                finished_at=when + timedelta(seconds=1.5),
            )
        )
        if rating:
            s.add(Feedback(message_id=a.id, rating=rating, comment=comment))


def test_console_queries(db: Database) -> None:
    _conversation(db, "s1", "How do I rent a canoe?")
    _conversation(db, "s2", "renting a canoe")
    _conversation(db, "s3", "How do I install it?", sources=SOURCE, rating="down", comment="old")
    _conversation(db, "s4", "What is 100%_ done?", status="error")
    _conversation(db, "s5", "How do I rent a canoe?", days_ago=40)
    since = insights.day_start(utcnow()) - timedelta(days=29)

    groups = insights.gaps(db, since)
    assert len(groups[0].questions) == 2
    texts = sorted(q.text for g in groups for q in g.questions)
    assert texts == ["How do I install it?", "How do I rent a canoe?", "renting a canoe"]
    disliked = next(g for g in groups if g.label == "How do I install it?")
    assert disliked.questions[0].reason == "disliked" and disliked.questions[0].comment == "old"

    view = insights.overview(db, 30)
    assert view["questions"] == 4 and view["per_day"][-1]["questions"] == 4
    assert view["answers"] == {"answered": 1, "uncovered": 2, "failed": 1, "pending": 0}
    assert view["top_pages"] == [
        {"url": "http://docs.test/install", "title": "Installing", "count": 1}
    ]
    assert view["answer_seconds"] == {"p50": 1.5, "p95": 1.5}

    def firsts(**kw: object) -> set[str]:
        found = insights.conversations(db, insights.Filters(**kw))["conversations"]
        return {c["first_question"] for c in found}

    assert firsts(uncovered=True) == {"How do I rent a canoe?", "renting a canoe"}
    assert firsts(disliked=True) == {"How do I install it?"}
    assert firsts(failed=True) == {"What is 100%_ done?"}
    assert firsts(text="100%_") == {"What is 100%_ done?"}
    assert firsts(text="0%x") == set()
    assert firsts(text="CANOE") == {"How do I rent a canoe?", "renting a canoe"}
    assert len(firsts(end=(utcnow() - timedelta(days=30)).date())) == 1

    listed = insights.conversations(db, insights.Filters(disliked=True))["conversations"][0]
    t = insights.transcript(db, listed["id"])
    assert t["messages"][1]["feedback"] == {"rating": "down", "comment": "old"}
    assert "s3" not in str(t) and "192.0.2.1" not in str(t)
    with pytest.raises(insights.NotFound):
        insights.transcript(db, "s3")

    resolved = insights.resolve(db, groups[0].id, since)
    assert resolved.resolved and groups[0].id not in [g.id for g in insights.gaps(db, since)]
    assert "canoe" in gaps_csv(groups) and gaps_markdown(groups, since, utcnow()).startswith("##")
