"""The worker in one process (`build(settings, with_worker=True)`), against the emulator: answers
in both API modes, polled and streamed; a stopped answer keeps its text; a cleared chat's upstream
thread is deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Inbox, wait_until

INSTALLING = {"title": "Installing", "url": "http://docs.test/install"}
DELETES = {
    "assistants": "DELETE /v1/threads/{thread_id}",
    "responses": "DELETE /v1/conversations/{conversation_id}",
}


@pytest.mark.parametrize("streaming", ["0", "1"], ids=["polled", "streamed"])
def test_the_worker_answers_in_each_api_mode(start_live, tmp_path: Path, api_mode, streaming):
    live = start_live(
        f"sqlite:///{tmp_path / 'worker.db'}",
        emulator={"tokens_per_second": 400},
        DOCSCHAT_API=api_mode,
        DOCSCHAT_STREAMING=streaming,
    )
    sid = live.chat.create_session()
    inbox = Inbox(live.services.hub.subscribe(sid))  # what this session's WebSocket is sent
    live.chat.ask(sid, "How do I install docschat with pip?")
    [answer] = live.answers(sid)
    assert answer["status"] == "done" and "pip install docschat" in answer["text"]
    assert INSTALLING in answer["sources"]

    wait_until(lambda: inbox.messages()[-1]["status"] == "done")  # the answer, as pushed
    deltas = [e for e in inbox.received() if e["type"] == "delta"]
    if streaming == "1":  # the reader watched the text grow; the final message adds citations
        assert len(deltas) > 1
        grown = "".join(e["text"] for e in sorted(deltas, key=lambda e: e["offset"]))
        assert "pip install docschat" in grown and answer["text"].startswith(grown.rstrip())
    else:
        assert deltas == []
    assert inbox.messages()[-1] == answer


def test_a_stopped_answer_keeps_the_text_written_so_far(start_live, tmp_path: Path, api_mode):
    live = start_live(
        f"sqlite:///{tmp_path / 'stop.db'}",
        emulator={"latency_ms": 100, "tokens_per_second": 5},
        DOCSCHAT_API=api_mode,
    )
    sid = live.chat.create_session()
    live.chat.ask(sid, "How do I install docschat with pip?")
    partial = wait_until(
        lambda: next(
            (m for m in live.chat.messages(sid) if m["status"] == "streaming" and m["text"]), None
        )
    )
    live.chat.stop(sid, partial["id"])
    [answer] = live.answers(sid)
    assert answer["status"] == "done" and answer["stopped"] is True
    assert answer["text"].startswith(partial["text"][:5]) and len(answer["text"]) < 200
    assert any(path.endswith("/cancel") for path in live.stats())


def test_clearing_a_chat_deletes_its_upstream_thread(start_live, db_url, api_mode):
    live = start_live(db_url, DOCSCHAT_API=api_mode)
    sid = live.chat.create_session()
    live.chat.ask(sid, "How do I install docschat?")
    live.answers(sid)
    assert DELETES[api_mode] not in live.stats()
    live.chat.clear(sid)
    wait_until(lambda: live.stats().get(DELETES[api_mode]) == 1)
