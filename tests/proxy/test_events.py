"""Events between processes: two sets of docschat's parts (two "processes") on one database
share their readers' events through PostgreSQL or Redis, as a WebSocket reader would see them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Inbox, Live, wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["postgres", "redis"])
def channel(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A database and settings whose processes talk through PostgreSQL NOTIFY, or through Redis
    (then on a SQLite file, which has no channel of its own)."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url"), {}
    return f"sqlite:///{tmp_path / 'events.db'}", {"REDIS_URL": REDIS_URL}


def _listening(sender: Live, inbox: Inbox, sid: str) -> None:
    """Wait until the receiving process listens on the shared channel (it starts listening on a
    thread of its own; until then a notice reaches nobody), saying hello until one gets through."""

    def heard() -> bool:
        sender.services.events.publish(sid, {"type": "hello"})
        return any(e["type"] == "hello" for e in inbox.received())

    wait_until(heard, timeout=10, every=0.1)


def test_a_question_asked_through_one_process_reaches_readers_of_the_other(start_live, channel):
    db_url, env = channel
    asked = start_live(db_url, with_worker=False, **env)
    other = start_live(db_url, with_worker=False, like=asked, **env)
    sid = asked.chat.create_session()
    inbox = Inbox(other.services.hub.subscribe(sid))
    _listening(asked, inbox, sid)

    asked.chat.ask(sid, "How do I install docschat?")
    shown = wait_until(lambda: inbox.messages() if len(inbox.messages()) >= 2 else None)
    assert shown == asked.chat.messages(sid)
    assert [(m["role"], m["status"]) for m in shown] == [("user", "done"), ("assistant", "pending")]


def test_a_message_too_large_for_a_notice_arrives_whole(start_live, channel):
    db_url, env = channel
    long = {"DOCSCHAT_MAX_QUESTION_CHARS": "20000"}
    asked = start_live(db_url, with_worker=False, **env, **long)
    other = start_live(db_url, with_worker=False, like=asked, **env, **long)
    sid = asked.chat.create_session()
    inbox = Inbox(other.services.hub.subscribe(sid))
    _listening(asked, inbox, sid)

    question = "How do I install docschat on a machine with " + "many cores, " * 800 + "?"
    asked.chat.ask(sid, question)
    [shown] = wait_until(lambda: [m for m in inbox.messages() if m["role"] == "user"])
    assert shown["text"] == question.strip()


def test_a_worker_only_process_answers_but_carries_no_reader_events(start_live, pg_url):
    web = start_live(pg_url, with_worker=False)
    worker = start_live(pg_url, with_worker=True, readers=False, like=web)
    sid = web.chat.create_session()
    readers = Inbox(web.services.hub.subscribe(sid))
    in_worker = Inbox(worker.services.hub.subscribe(sid))
    _listening(worker, readers, sid)

    web.chat.ask(sid, "How do I install docschat?")
    # The worker heard of the question, answered it, and the web process's readers saw that.
    [answer] = wait_until(
        lambda: [
            m for m in readers.messages() if m["role"] == "assistant" and m["status"] == "done"
        ]
    )
    assert "pip install docschat" in answer["text"]
    # The web process's own events (the question) never went to the worker process.
    assert [m for m in in_worker.messages() if m["role"] == "user"] == []
