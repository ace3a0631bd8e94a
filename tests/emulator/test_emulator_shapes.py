"""Every object and stream event the emulator sends validates strictly against the SDK's types."""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

from emulator_helpers import Docs, finished_response, finished_run
from openai import OpenAI
from openai.types import FileObject, VectorStore
from openai.types.beta import Assistant, AssistantStreamEvent, Thread
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep
from openai.types.conversations import Conversation, ConversationItem
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch
from pydantic import TypeAdapter


@cache
def _adapter(kind: Any) -> TypeAdapter:
    # Building an adapter for the big event unions is slow; build each once.
    return TypeAdapter(kind)


def _strict(kind: Any, obj: Any) -> None:
    """Validate what the server sent (not the SDK's lenient parse) against `kind`."""
    _adapter(kind).validate_python(obj.model_dump(mode="json", exclude_unset=True))


def test_shared_objects(client: OpenAI, docs: Docs) -> None:
    _strict(FileObject, client.files.retrieve(docs.install_id))
    _strict(VectorStore, client.vector_stores.retrieve(docs.vector_store_id))
    for f in client.vector_stores.files.list(docs.vector_store_id):
        _strict(VectorStoreFile, f)
    batch = client.vector_stores.file_batches.create(
        docs.vector_store_id, file_ids=[docs.config_id]
    )
    _strict(VectorStoreFileBatch, batch)


def test_assistants_objects_and_events(client: OpenAI, assistant_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _strict(Assistant, client.beta.assistants.retrieve(assistant_id))
        events = list(
            client.beta.threads.create_and_run(
                assistant_id=assistant_id,
                thread={"messages": [{"role": "user", "content": "How do I install docschat?"}]},
                stream=True,
            )
        )
        for event in events:
            _strict(AssistantStreamEvent, event)
        run = events[-1].data
        _strict(Thread, client.beta.threads.retrieve(run.thread_id))
        _strict(Run, finished_run(client, run.thread_id, run.id))
        for message in client.beta.threads.messages.list(run.thread_id):
            _strict(Message, message)
        steps = client.beta.threads.runs.steps.list(
            run.id,
            thread_id=run.thread_id,
            include=["step_details.tool_calls[*].file_search.results[*].content"],
        )
        for step in steps:
            _strict(RunStep, step)
        for step in client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id):
            _strict(RunStep, step)


def test_run_steps_return_the_retrieved_chunks_when_asked(client: OpenAI, assistant_id: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        events = list(
            client.beta.threads.create_and_run(
                assistant_id=assistant_id,
                thread={"messages": [{"role": "user", "content": "How do I install docschat?"}]},
                stream=True,
            )
        )
        run = events[-1].data
        steps = client.beta.threads.runs.steps
        content = "step_details.tool_calls[*].file_search.results[*].content"
        listed = steps.list(run.id, thread_id=run.thread_id, include=[content], order="asc")
        search, writing = listed.data
        assert (search.type, writing.type) == ("tool_calls", "message_creation")
        [call] = search.step_details.tool_calls
        results = call.file_search.results
        assert results and all(0 <= r.score <= 1 and r.file_name for r in results)
        assert "pip install docschat" in " ".join(r.content[0].text for r in results)
        assert call.file_search.ranking_options.ranker == "default_2024_08_21"
        # Without include[] the results name their files but carry no text, as OpenAI's do.
        plain = steps.retrieve(search.id, thread_id=run.thread_id, run_id=run.id)
        assert all(r.content is None for r in plain.step_details.tool_calls[0].file_search.results)


def test_responses_objects_and_events(client: OpenAI, docs: Docs) -> None:
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Hello"}]
    )
    _strict(Conversation, conversation)
    events = list(
        client.responses.create(
            model="m",
            input="How do I install docschat?",
            conversation=conversation.id,
            tools=[{"type": "file_search", "vector_store_ids": [docs.vector_store_id]}],
            include=["file_search_call.results"],
            background=True,
            stream=True,
        )
    )
    for event in events:
        _strict(ResponseStreamEvent, event)
    _strict(Response, finished_response(client, events[0].response.id))
    for item in client.conversations.items.list(conversation.id):
        _strict(ConversationItem, item)
