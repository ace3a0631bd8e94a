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
