"""The Responses API adapter: one conversation per session, one background response per question."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from openai import OpenAI

from proxy.upstream import raw
from proxy.upstream.base import (
    Answer,
    Begun,
    Citation,
    Delta,
    Ended,
    RunState,
    StreamEvent,
    Turn,
)
from proxy.upstream.errors import StreamBroken, translated

RUNNING = {"queued", "in_progress"}
ENDINGS = {"response.completed", "response.failed", "response.incomplete", "response.cancelled"}


class ResponsesUpstream:
    """Answers with background responses using file_search over the docs' vector store."""

    api = "responses"
    can_resume = True

    def __init__(
        self,
        client: OpenAI,
        streams: OpenAI,
        model: str,
        instructions: str,
        vector_store_id: str,
        *,
        max_tokens: int = 1000,
    ) -> None:
        self.client = client
        self.streams = streams  # the same client, with the stream stall as its read timeout
        self.model = model
        self.instructions = instructions
        self.vector_store_id = vector_store_id
        self.max_tokens = max_tokens

    def open_thread(self, history: list[Turn]) -> str:
        """Create the session's conversation, seeded with its earlier turns."""
        items = [{"type": "message", "role": t.role, "content": t.text} for t in history if t.text]
        with translated("create conversation"):
            return self.client.conversations.create(items=items).id

    def _create_args(self, thread_id: str, question: str, metadata: dict[str, str]) -> dict:
        tools: list[Any] = []
        if self.vector_store_id:
            tools.append({"type": "file_search", "vector_store_ids": [self.vector_store_id]})
        return {
            "model": self.model,
            "conversation": thread_id,
            "input": question,
            "instructions": self.instructions,
            "tools": tools,
            "include": ["file_search_call.results"],
            "background": True,
            "store": True,
            "metadata": metadata,
            # The conversation grows with every turn; let the upstream drop the oldest turns
            # instead of failing, and bound the answer's length.
            "truncation": "auto",
            "max_output_tokens": self.max_tokens,
        }

    def find_run(self, thread_id: str, metadata: dict[str, str]) -> str | None:
        """The Responses API cannot list a conversation's responses: None."""
        return None

    def begin(self, thread_id: str, question: str, metadata: dict[str, str]) -> Begun:
        """Start a background response in the conversation."""
        with translated("create response"):
            response = self.client.responses.create(
                **self._create_args(thread_id, question, metadata)
            )
        return Begun(thread_id, response.id)

    def stream(
        self, thread_id: str, question: str, metadata: dict[str, str]
    ) -> Iterator[StreamEvent]:
        """Start a streamed background response and translate its events."""
        with translated("stream response"):
            events = raw.opened(
                self.streams.responses.with_streaming_response.create(
                    **self._create_args(thread_id, question, metadata), stream=True
                )
            )
        return self._events(events, thread_id)

    def resume(self, thread_id: str, run_id: str, cursor: int) -> Iterator[StreamEvent]:
        """Continue a response's stream after event number `cursor`."""
        with translated("resume stream"):
            events = raw.opened(
                self.streams.responses.with_streaming_response.retrieve(
                    run_id, stream=True, starting_after=cursor
                )
            )
        return self._events(events, thread_id)

    def _events(self, events: Iterator[raw.Event], conversation: str) -> Iterator[StreamEvent]:
        """Begun on creation, Delta per text fragment (with its sequence number), then Ended."""
        with translated("stream response"):
            for _name, event in events:
                kind = event.get("type")
                cursor = event.get("sequence_number")
                if kind == "response.created":
                    yield Begun(conversation, event["response"]["id"])
                    yield Delta("", cursor)
                elif kind == "response.output_text.delta":
                    yield Delta(event["delta"], cursor)
                elif kind in ENDINGS:
                    yield Ended(_state(event["response"]))
                    return
                elif cursor is not None:
                    yield Delta("", cursor)
        raise StreamBroken("the response's stream ended early")

    def poll(self, thread_id: str, run_id: str) -> RunState:
        """Retrieve the response; its output holds the answer once completed."""
        with translated("retrieve response"):
            return _state(raw.body(self.client.responses.with_raw_response.retrieve(run_id)))

    def cancel(self, thread_id: str, run_id: str) -> RunState:
        """Cancel the background response."""
        with translated("cancel response"):
            return _state(raw.body(self.client.responses.with_raw_response.cancel(run_id)))

    def probe(self) -> None:
        """Retrieve the vector store (quickly) to show the upstream answers."""
        with translated("probe"):
            fast = self.client.with_options(timeout=2.0, max_retries=0)
            if self.vector_store_id:
                fast.vector_stores.retrieve(self.vector_store_id)
            else:
                fast.models.list()

    def forget(self, thread_id: str) -> None:
        """Delete the conversation upstream."""
        with translated("delete conversation"):
            self.client.conversations.delete(thread_id)


def _state(response: dict[str, Any]) -> RunState:
    """Map a response object to a RunState, with the answer when it completed."""
    status = response.get("status") or "in_progress"
    if status in RUNNING:
        return RunState("running")
    tokens = int((response.get("usage") or {}).get("total_tokens") or 0)
    if status != "completed":
        return RunState(status, tokens=tokens)
    return RunState("completed", _answer(response), tokens)


def _answer(response: dict[str, Any]) -> Answer:
    """The output message's text and its file citations."""
    text = ""
    citations: list[Citation] = []
    pages: dict[str, tuple[str, str]] = {}
    retrieved: dict[str, list[str]] = {}
    for item in response.get("output") or []:
        if item.get("type") == "file_search_call":
            for hit in item.get("results") or []:
                attrs = hit.get("attributes") or {}
                if hit.get("file_id") and isinstance(attrs.get("url"), str):
                    pages[hit["file_id"]] = (str(attrs.get("title") or attrs["url"]), attrs["url"])
                if hit.get("file_id") and isinstance(hit.get("text"), str):
                    retrieved.setdefault(hit["file_id"], []).append(hit["text"])
            continue
        if item.get("type") != "message":
            continue
        for part in item.get("content") or []:
            if part.get("type") != "output_text":
                continue
            if text:
                text += "\n\n"
            offset = len(text)
            text += part["text"]
            for note in part.get("annotations") or []:
                if note.get("type") == "file_citation":
                    at = offset + note["index"]
                    citations.append(Citation(at, at, note["file_id"], note.get("filename") or ""))
    return Answer(response["id"], text, citations, pages, retrieved)
