"""`docschat report` prints the console's gaps; retention deletes old conversations on schedule."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from proxy.answers.retention import purge
from proxy.storage.db import Database
from proxy.storage.models import ChatSession, Feedback, Message, utcnow
from tests.admin.conftest import ADMIN, BREAD, DISLIKE_COMMENT, WEATHER, Seeded
from tests.security.conftest import launch, shutdown
from tests.support import Stack, run_docschat, wait_until


def test_report_prints_the_gaps_as_text_json_and_markdown(
    console_stack: tuple[Stack, Seeded],
) -> None:
    stack, _ = console_stack
    env = {"DATABASE_URL": stack.db_url}
    as_json = run_docschat("report", "--since", "7d", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    groups = json.loads(as_json.stdout)["groups"]
    weather = next(g for g in groups if WEATHER[0] in [q["text"] for q in g["questions"]])
    assert weather["count"] == 3
    # The same groups as the console's (those not resolved there).
    shown = stack.http.get("/api/admin/gaps", headers=ADMIN, params={"days": 7}).json()["groups"]
    assert [g["id"] for g in groups] == [g["id"] for g in shown]

    md = run_docschat("report", "--markdown", env=env)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("## Documentation gaps") and DISLIKE_COMMENT in md.stdout

    text = run_docschat("report", "--since", "2w", env=env)
    assert text.returncode == 0, text.stderr
    assert "open gap topics since" in text.stdout and "weather" in text.stdout

    bad = run_docschat("report", "--since", "yesterday", env=env)
    assert bad.returncode == 2 and "7d or 2w" in bad.stderr
    both = run_docschat("report", "--json", "--markdown", env=env)
    assert both.returncode == 2


def _age(db_url: str, first_question: str, days: int) -> None:
    """Move a conversation `days` days into the past, as if it had been asked then."""
    db = Database(db_url)
    try:
        with db.session() as s:
            sid = s.scalar(select(Message.session_id).where(Message.text == first_question))
            then = utcnow() - timedelta(days=days)
            for m in s.scalars(select(Message).where(Message.session_id == sid)):
                m.created_at = m.updated_at = then
            s.get(ChatSession, sid).created_at = then
    finally:
        db.dispose()


def test_retention_job_deletes_old_conversations(tmp_path: Path) -> None:
    env = {"DOCSCHAT_ADMIN_TOKEN": "t" * 32, "DOCSCHAT_RETENTION_DAYS": "30"}
    stack = launch(tmp_path, f"sqlite:///{tmp_path / 'retention.db'}", env)
    try:
        for question in (BREAD[0], WEATHER[0]):
            sid = stack.new_session()
            stack.ask(sid, question)
            answer = stack.answers(sid)[0]
            stack.http.post(
                f"/api/sessions/{sid}/messages/{answer['id']}/feedback", json={"rating": "down"}
            )
        _age(stack.db_url, BREAD[0], 31)
        stack.stop()
        stack.start()  # the worker purges soon after it starts, then every hour

        def firsts() -> set[str]:
            r = stack.http.get(
                "/api/admin/conversations", headers={"Authorization": "Bearer " + "t" * 32}
            )
            return {c["first_question"] for c in r.json()["conversations"]}

        wait_until(lambda: firsts() == {WEATHER[0]}, timeout=20)
        db = Database(stack.db_url)
        try:
            with db.read() as s:
                assert s.scalar(select(Message).where(Message.text == BREAD[0])) is None
                assert len(s.scalars(select(Feedback)).all()) == 1
        finally:
            db.dispose()
    finally:
        shutdown(stack)


def test_purge_keeps_recent_conversations(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        db.upgrade()
        now = utcnow()
        with db.session() as s:
            for sid, age in (("old", 40), ("recent", 5), ("empty-old", 40)):
                s.add(ChatSession(id=sid, created_at=now - timedelta(days=age)))
            s.flush()
            s.add(
                Message(
                    session_id="old", role="user", text="q", created_at=now - timedelta(days=40)
                )
            )
            # An old conversation with a new question is still in use.
            s.add(ChatSession(id="revived", created_at=now - timedelta(days=90)))
            s.flush()
            s.add(Message(session_id="revived", role="user", text="q", created_at=now))
        assert purge(db, 30, now) == 2
        with db.read() as s:
            assert set(s.scalars(select(ChatSession.id)).all()) == {"recent", "revived"}
        assert purge(db, 30, now) == 0
    finally:
        db.dispose()
