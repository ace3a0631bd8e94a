"""Responses and Conversations through the real openai SDK: background, streaming, resume."""

from __future__ import annotations

import pytest
from emulator_helpers import Docs, finished_response, sdk, upload_docs
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.responses import Response

from emulator.search import NOT_FOUND
from tests.support import wait_until


def _ask(client: OpenAI, docs: Docs, question: str, conversation: str | None = None, **extra):
    return client.responses.create(
        model="gpt-4.1-mini",
        input=question,
        instructions="Answer from the docs.",
        tools=[{"type": "file_search", "vector_store_ids": [docs.vector_store_id]}],
        include=["file_search_call.results"],
        **({"conversation": conversation} if conversation else {}),
        **extra,
    )


def test_background_response_in_a_conversation(client: OpenAI, docs: Docs) -> None:
    conversation = client.conversations.create(metadata={"session": "s1"})
    created = _ask(client, docs, "Which database is the default?", conversation.id, background=True)
    assert created.status == "queued" and created.background
    done = finished_response(client, created.id)
    Response.model_validate(done.model_dump())
    assert done.status == "completed" and done.conversation.id == conversation.id
    search, message = done.output
    assert search.type == "file_search_call" and search.status == "completed"
    best = search.results[0]
    assert best.file_id == docs.config_id and best.filename == "config.md"
    assert best.attributes == {"url": "http://docs.test/config"}
    assert best.text and 0 < best.score <= 1
    assert message.type == "message" and message.status == "completed"
    text = message.content[0]
    assert "SQLite is the default" in text.text
    note = text.annotations[0]
    assert note.type == "file_citation" and note.file_id == docs.config_id
    assert note.filename == "config.md"
    assert text.text[: note.index].rstrip().endswith(".")
    assert done.output_text == text.text
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens > 0

    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [(i.type, getattr(i, "role", None)) for i in items] == [
        ("message", "user"),
        ("file_search_call", None),
        ("message", "assistant"),
    ]
    assert items[0].content[0].text == "Which database is the default?"


def test_follow_up_sees_the_earlier_turn(client: OpenAI, docs: Docs) -> None:
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "How do I install docschat?"}]
    )
    lonely = _ask(client, docs, "Can you repeat that?")
    assert lonely.output_text == NOT_FOUND
    follow = _ask(client, docs, "Can you repeat that?", conversation.id)
    assert "pip install docschat" in follow.output_text
    assert follow.output[-1].content[0].annotations[0].file_id == docs.install_id


def test_foreground_response_waits_and_not_found_has_no_citations(
    client: OpenAI, docs: Docs
) -> None:
    done = _ask(client, docs, "What is the capital of France?")
    assert done.status == "completed"
    assert done.output_text == NOT_FOUND
    assert done.output[-1].content[0].annotations == []
    assert done.output[0].results == []


def test_cancel_background_response(run_emulator) -> None:
    emu = run_emulator(latency_ms=50, tokens_per_second=20)
    client = sdk(emu)
    docs = upload_docs(client)
    created = _ask(client, docs, "How do I install docschat?", background=True)
    wait_until(lambda: client.responses.retrieve(created.id).output_text)
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    later = client.responses.retrieve(created.id)
    assert later.status == "cancelled"
    assert 0 < len(later.output_text) < len("Install the package with pip install docschat.")
    assert client.responses.cancel(created.id).status == "cancelled"
    foreground = _ask(client, docs, "Which database is the default?")
    with pytest.raises(BadRequestError, match="background"):
        client.responses.cancel(foreground.id)


def test_stream_then_resume_after_a_sequence_number(run_emulator) -> None:
    emu = run_emulator(latency_ms=50, tokens_per_second=300)
    client = sdk(emu)
    docs = upload_docs(client)
    stream = _ask(client, docs, "How do I install docschat?", background=True, stream=True)
    first = []
    for event in stream:
        first.append(event)
        if event.type == "response.output_text.delta" and len(first) > 12:
            break
    stream.close()
    assert [e.sequence_number for e in first] == list(range(len(first)))
    assert [e.type for e in first[:3]] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    response_id = first[0].response.id
    cursor = first[-1].sequence_number
    rest = list(client.responses.retrieve(response_id, stream=True, starting_after=cursor))
    assert [e.sequence_number for e in rest] == list(range(cursor + 1, cursor + 1 + len(rest)))
    assert rest[-1].type == "response.completed"
    kinds = {e.type for e in first + rest}
    assert {
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    } <= kinds
    text = "".join(e.delta for e in first + rest if e.type == "response.output_text.delta")
    assert text == rest[-1].response.output_text
    # A finished response replays every event from the start.
    replay = list(client.responses.retrieve(response_id, stream=True))
    assert [e.sequence_number for e in replay] == list(range(cursor + 1 + len(rest)))


def test_foreground_stream(client: OpenAI, docs: Docs) -> None:
    events = list(_ask(client, docs, "Which database is the default?", stream=True))
    assert events[0].type == "response.created" and events[0].response.status == "in_progress"
    assert "response.queued" not in {e.type for e in events}
    assert events[-1].type == "response.completed"


def test_conversation_lifecycle_and_404s(client: OpenAI, docs: Docs) -> None:
    conversation = client.conversations.create()
    assert client.conversations.retrieve(conversation.id).id == conversation.id
    assert client.conversations.delete(conversation.id).deleted
    with pytest.raises(NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(NotFoundError):
        _ask(client, docs, "How do I install?", conversation.id)
    with pytest.raises(NotFoundError):
        client.responses.retrieve("resp_missing")


def test_background_needs_store(client: OpenAI, docs: Docs) -> None:
    with pytest.raises(BadRequestError, match="store"):
        _ask(client, docs, "How do I install?", background=True, store=False)
