"""Switching the upstream API keeps history; the optional live check against api.openai.com."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.support import wait_until


def test_switching_modes_keeps_history_and_seeds_the_new_conversation(start_stack):
    stack = start_stack(DOCSCHAT_API="assistants")
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid, 1)
    stack.stop()
    stack.env["DOCSCHAT_API"] = "responses"
    stack.setup(upload=False)  # as README says: setup again after switching (files are shared)
    stack.start()
    before = stack.messages(sid)
    assert [m["role"] for m in before] == ["user", "assistant"]
    stack.ask(sid, "What does DATABASE_URL choose?")
    answers = stack.answers(sid, 2)
    assert answers[1]["status"] == "done" and "DATABASE_URL" in answers[1]["text"]
    assert stack.messages(sid)[:2] == before
    stats = stack.stats()
    assert stats.get("POST /v1/conversations") == 1
    assert stats.get("POST /v1/responses") == 1
    # The new conversation was seeded with the session's earlier turns.
    conversation = stack.jobs()[1]["thread_id"]
    items = httpx.get(
        f"{stack.emulator.base_url}/conversations/{conversation}/items",
        params={"order": "asc"},
        headers={"Authorization": "Bearer sk-test"},
    ).json()["data"]
    texts = [part["text"] for item in items for part in item.get("content", [])]
    assert texts[0] == "How do I install docschat?"
    assert before[1]["text"][:20] in texts[1]


@pytest.mark.skipif(
    not (os.environ.get("OPENAI_API_KEY") and os.environ.get("DOCSCHAT_LIVE_TEST") == "1"),
    reason="live check against api.openai.com: set OPENAI_API_KEY and DOCSCHAT_LIVE_TEST=1",
)
def test_live_openai_answers_in_responses_mode(tmp_path):
    from openai import OpenAI

    from proxy.config import Settings
    from proxy.services import build
    from proxy.setup import run_setup
    from proxy.storage.db import Database
    from proxy.storage.models import Document

    settings = Settings.from_env(
        database_url=f"sqlite:///{tmp_path / 'live.db'}", api="responses", openai_base_url=""
    )
    services = build(settings, with_worker=True)
    db: Database = services.db
    client = OpenAI(api_key=settings.openai_api_key)
    ids = run_setup(settings, db)
    pages = [
        ("https://docs.test/install", "Installing", "Install docschat with pip install docschat."),
        ("https://docs.test/port", "Port", "The demo listens on port 8000 by default."),
    ]
    for url, title, text in pages:
        f = client.files.create(file=(title + ".md", text.encode()), purpose="assistants")
        client.vector_stores.files.create_and_poll(
            vector_store_id=ids.vector_store_id, file_id=f.id, attributes={"url": url}
        )
        with db.session() as s:
            s.add(Document(url=url, title=title, text=text, file_id=f.id))
    sid = services.chat.create_session()
    services.chat.ask(sid, "Which port does the demo listen on?")
    try:
        answer = wait_until(
            lambda: next(
                (m for m in services.chat.messages(sid)[-1:] if m["status"] in ("done", "error")),
                None,
            ),
            timeout=90,
            every=1,
        )
    finally:
        services.close()
    assert answer["status"] == "done" and "8000" in answer["text"]
