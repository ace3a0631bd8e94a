"""The chat domain in one process, on a real database and the emulator: what a reader sees after
asking, rating, retrying and clearing, and what it refuses."""

from __future__ import annotations

import pytest

from proxy.answers.errors import Conflict, Invalid, NotFound, TooLong
from tests.support import wait_until

INSTALLING = {"title": "Installing", "url": "http://docs.test/install"}


def test_a_question_shows_at_once_with_its_pending_answer(start_live, db_url):
    live = start_live(db_url, with_worker=False)
    sid = live.chat.create_session()
    question = live.chat.ask(sid, "  How do I install docschat with pip?  ")
    assert question["role"] == "user" and question["status"] == "done"
    assert question["text"] == "How do I install docschat with pip?"
    first, answer = live.chat.messages(sid)
    assert first == question
    assert answer["role"] == "assistant" and answer["status"] == "pending" and answer["text"] == ""
    assert live.chat.messages(sid, after=question["id"]) == [answer]


def test_the_answer_follows_with_its_source_and_takes_the_latest_rating(start_live, db_url):
    live = start_live(db_url)
    sid = live.chat.create_session()
    live.chat.ask(sid, "How do I install docschat with pip?")
    [answer] = live.answers(sid)
    assert answer["status"] == "done" and "pip install docschat" in answer["text"]
    assert INSTALLING in answer["sources"]
    assert 'href="http://docs.test/install"' in answer["html"]

    live.chat.feedback(sid, answer["id"], "up")
    saved = live.chat.feedback(sid, answer["id"], "down", "It skipped the upgrade step.")
    assert saved == {
        "message_id": answer["id"],
        "rating": "down",
        "comment": "It skipped the upgrade step.",
    }
    assert live.chat.messages(sid)[-1]["feedback"] == "down"


def test_a_failed_answer_is_retried_in_its_own_place(start_live, db_url):
    live = start_live(db_url, DOCSCHAT_STREAMING="0")
    live.faults({"kind": "run_failed"})
    sid = live.chat.create_session()
    live.chat.ask(sid, "How do I install docschat?")
    [failed] = live.answers(sid)
    assert failed["status"] == "error" and "could not answer" in failed["text"]

    again = live.chat.retry(sid, failed["id"])
    assert again["id"] == failed["id"] and again["status"] == "pending"
    [answer] = wait_until(lambda: [a for a in live.answers(sid) if a["status"] == "done"])
    assert answer["id"] == failed["id"] and "pip install docschat" in answer["text"]
    assert [m["role"] for m in live.chat.messages(sid)] == ["user", "assistant"]


def test_clearing_a_chat_empties_it_and_it_goes_on(start_live, db_url):
    live = start_live(db_url)
    sid = live.chat.create_session()
    live.chat.ask(sid, "How do I install docschat?")
    live.answers(sid)
    live.chat.clear(sid)
    assert live.chat.messages(sid) == []
    live.chat.ask(sid, "Which database does DATABASE_URL choose?")
    [answer] = live.answers(sid)
    assert answer["status"] == "done" and "DATABASE_URL" in answer["text"]


def test_refusals_name_what_is_wrong_and_store_nothing(start_live, db_url):
    live = start_live(
        db_url, with_worker=False, DOCSCHAT_MAX_QUEUED="2", DOCSCHAT_MAX_QUESTION_CHARS="40"
    )
    chat = live.chat
    sid, other = chat.create_session(), chat.create_session()

    with pytest.raises(NotFound):
        chat.messages("no-such-session")
    with pytest.raises(NotFound):
        chat.ask("no-such-session", "How do I install docschat?")
    with pytest.raises(NotFound):
        chat.clear("no-such-session")
    with pytest.raises(TooLong, match="40 characters"):
        chat.ask(sid, "x" * 41)
    with pytest.raises(Invalid) as empty:
        chat.ask(sid, "   ")
    assert empty.value.code == "empty_text"
    with pytest.raises(Invalid):
        chat.ask(sid, "nul \x00 byte")

    question = chat.ask(sid, "How do I install docschat?")
    chat.ask(sid, "How do I upgrade it?")
    with pytest.raises(Conflict) as busy:
        chat.ask(sid, "And how do I remove it?")
    assert busy.value.code == "busy"
    texts = [m["text"] for m in chat.messages(sid) if m["role"] == "user"]
    assert texts == ["How do I install docschat?", "How do I upgrade it?"]

    pending = chat.messages(sid)[1]
    with pytest.raises(Conflict) as not_failed:
        chat.retry(sid, pending["id"])
    assert not_failed.value.code == "not_failed"
    with pytest.raises(NotFound):
        chat.feedback(sid, question["id"], "up")  # a question is not an answer
    with pytest.raises(Invalid):
        chat.feedback(sid, pending["id"], "meh")
    with pytest.raises(NotFound):
        chat.stop(other, pending["id"])  # another session's answer
    with pytest.raises(NotFound):
        chat.feedback(other, pending["id"], "down")
    assert chat.messages(other) == []
    assert all(m["feedback"] is None for m in chat.messages(sid))
