"""Assistants v2 through the real openai SDK: threads, runs, messages, streaming, cancel."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from emulator_helpers import Docs, finished_run
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.beta.threads import Message, Run

from emulator.search import NOT_FOUND
from tests.support import wait_until


@pytest.fixture(autouse=True)
def _no_deprecation_noise() -> Iterator[None]:
    # The SDK marks the Assistants API deprecated; these tests use it on purpose.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def test_create_and_run_answers_from_the_docs_with_a_citation(
    client: OpenAI, docs: Docs, assistant_id: str
) -> None:
    run = client.beta.threads.create_and_run(
        assistant_id=assistant_id,
        thread={"messages": [{"role": "user", "content": "How do I install docschat?"}]},
    )
    assert run.status == "queued"
    done = finished_run(client, run.thread_id, run.id)
    assert done.status == "completed"
    assert done.usage is not None and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    Run.model_validate(done.model_dump())

    page = client.beta.threads.messages.list(run.thread_id, order="asc")
    assert [m.role for m in page.data] == ["user", "assistant"]
    reply = page.data[1]
    Message.model_validate(reply.model_dump())
    assert reply.run_id == run.id and reply.assistant_id == assistant_id
    text = reply.content[0].text
    assert "pip install docschat" in text.value
    note = text.annotations[0]
    assert note.type == "file_citation" and note.file_citation.file_id == docs.install_id
    assert text.value[note.start_index : note.end_index] == note.text == "【4:0†install.md】"


def test_run_with_additional_messages_then_list_after_and_by_run(
    client: OpenAI, docs: Docs, assistant_id: str
) -> None:
    thread = client.beta.threads.create(metadata={"session": "s1"})
    first = client.beta.threads.runs.create(
        thread.id,
        assistant_id=assistant_id,
        additional_messages=[{"role": "user", "content": "How do I install docschat?"}],
    )
    finished_run(client, thread.id, first.id)
    seen = client.beta.threads.messages.list(thread.id, order="asc").data
    second = client.beta.threads.runs.create(
        thread.id,
        assistant_id=assistant_id,
        additional_messages=[{"role": "user", "content": "Which database is the default?"}],
        metadata={"answer": "2"},
    )
    with pytest.raises(BadRequestError, match="active run"):
        client.beta.threads.messages.create(thread.id, role="user", content="too early")
    assert finished_run(client, thread.id, second.id).status == "completed"

    newer = client.beta.threads.messages.list(thread.id, order="asc", after=seen[-1].id).data
    assert [m.role for m in newer] == ["user", "assistant"]
    assert "SQLite" in newer[1].content[0].text.value
    assert newer[1].content[0].text.annotations[0].file_citation.file_id == docs.config_id

    by_run = client.beta.threads.messages.list(thread.id, run_id=second.id).data
    assert [m.id for m in by_run] == [newer[1].id]
    newest_first = client.beta.threads.messages.list(thread.id, limit=2)
    assert newest_first.data[0].id == newer[1].id and newest_first.has_more
    runs = client.beta.threads.runs.list(thread.id).data
    assert [r.id for r in runs] == [second.id, first.id]
    assert runs[0].metadata == {"answer": "2"}


def test_unknown_question_gets_the_fixed_answer(client: OpenAI, assistant_id: str) -> None:
    run = client.beta.threads.create_and_run(
        assistant_id=assistant_id,
        thread={"messages": [{"role": "user", "content": "What is the capital of France?"}]},
    )
    finished_run(client, run.thread_id, run.id)
    (reply,) = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert reply.content[0].text.value == NOT_FOUND
    assert reply.content[0].text.annotations == []


def test_streamed_deltas_join_to_the_final_message(
    run_emulator, docs: Docs, assistant_id: str, client: OpenAI
) -> None:
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "How do I upgrade docschat?"}]
    )
    events = []
    text = ""
    with client.beta.threads.runs.create(thread.id, assistant_id=assistant_id, stream=True) as s:
        for event in s:
            events.append(event.event)
            if event.event == "thread.message.delta":
                for part in event.data.delta.content or []:
                    text += part.text.value or ""
            if event.event == "thread.message.completed":
                final = event.data
    assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    # As OpenAI sends them: the file search is a step that ends before the answer's step begins.
    assert events[3:10] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.completed",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
    ]
    assert events[-3:] == [
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert events.count("thread.message.delta") > 5
    assert text == final.content[0].text.value
    assert "--upgrade" in text
    stored = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert stored.content[0].text.value == text


def test_create_and_run_stream_starts_with_the_thread(client: OpenAI, assistant_id: str) -> None:
    stream = client.beta.threads.create_and_run(
        assistant_id=assistant_id,
        thread={"messages": [{"role": "user", "content": "Which port does the demo use?"}]},
        stream=True,
    )
    names = [e.event for e in stream]
    assert names[0] == "thread.created" and names[-1] == "thread.run.completed"


def test_stream_paces_tokens(run_emulator, docs: Docs) -> None:
    from emulator_helpers import sdk, upload_docs

    emu = run_emulator(latency_ms=50, tokens_per_second=400)
    client = sdk(emu)
    store = upload_docs(client).vector_store_id
    assistant = client.beta.assistants.create(
        model="m",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store]}},
    )
    import time

    started = time.monotonic()
    stream = client.beta.threads.create_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "How do I install docschat?"}]},
        stream=True,
    )
    deltas = sum(1 for e in stream if e.event == "thread.message.delta")
    # latency + one token per 1/400 s: the stream cannot end sooner.
    assert time.monotonic() - started >= 0.05 + (deltas - 1) / 400


def test_cancel_keeps_the_text_written_so_far(run_emulator) -> None:
    from emulator_helpers import sdk, upload_docs

    emu = run_emulator(latency_ms=50, tokens_per_second=20)
    client = sdk(emu)
    store = upload_docs(client).vector_store_id
    assistant = client.beta.assistants.create(
        model="m",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store]}},
    )
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "How do I install docschat?"}]},
    )

    def some_text():
        page = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
        return page and page[0].content[0].text.value

    wait_until(some_text)
    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
    assert cancelled.status == "cancelling"
    done = finished_run(client, run.thread_id, run.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    (message,) = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert message.status == "incomplete"
    partial = message.content[0].text.value
    assert partial and "pip install docschat. Then run docschat demo" not in partial
    with pytest.raises(BadRequestError, match="cancelled"):
        client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)


def test_unknown_ids_are_404(client: OpenAI, assistant_id: str) -> None:
    with pytest.raises(NotFoundError):
        client.beta.threads.retrieve("thread_missing")
    with pytest.raises(NotFoundError):
        client.beta.threads.runs.create("thread_missing", assistant_id=assistant_id)
    thread = client.beta.threads.create()
    with pytest.raises(NotFoundError):
        client.beta.threads.runs.create(thread.id, assistant_id="asst_missing")
    with pytest.raises(NotFoundError):
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id)


def test_assistant_update_and_list(client: OpenAI, assistant_id: str) -> None:
    updated = client.beta.assistants.update(assistant_id, instructions="Be brief.", model="m2")
    assert updated.instructions == "Be brief." and updated.model == "m2"
    assert client.beta.assistants.retrieve(assistant_id).model == "m2"
    assert [a.id for a in client.beta.assistants.list().data] == [assistant_id]


def test_delete_thread(client: OpenAI) -> None:
    thread = client.beta.threads.create()
    assert client.beta.threads.delete(thread.id).deleted
    with pytest.raises(NotFoundError):
        client.beta.threads.messages.list(thread.id)
