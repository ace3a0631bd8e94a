"""The Assistants API v2 adapter: one thread per session, one run per question."""

from __future__ import annotations

import warnings
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
from proxy.upstream.errors import StreamBroken, UpstreamError, translated

RUNNING = {"queued", "in_progress", "cancelling"}
# Run steps carry their file search results' text only when asked for it.
RESULT_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


class AssistantsUpstream:
    """Answers with an assistant that has file_search over the docs' vector store."""

    api = "assistants"
    can_resume = False

    def __init__(
        self,
        client: OpenAI,
        streams: OpenAI,
        assistant_id: str,
        *,
        context_turns: int = 12,
        max_tokens: int = 1000,
    ) -> None:
        self.client = client
        self.streams = streams  # the same client, with the stream stall as its read timeout
        self.assistant_id = assistant_id
        self.context_turns = context_turns
        self.max_tokens = max_tokens
        # The SDK marks these methods deprecated; we call them on purpose for servers that still
        # speak the Assistants API. The filter is process-wide because catch_warnings is not
        # thread-safe; it only matches warnings raised from this module's calls.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=__name__)

    def _run_args(self, metadata: dict[str, str]) -> dict[str, Any]:
        # Bounded context and answer length keep every run's cost bounded, however long the chat.
        return {
            "assistant_id": self.assistant_id,
            "metadata": metadata,
            "truncation_strategy": {"type": "last_messages", "last_messages": self.context_turns},
            "max_completion_tokens": self.max_tokens,
        }

    def open_thread(self, history: list[Turn]) -> str:
        """Create the session's thread with its earlier turns."""
        turns = [{"role": t.role, "content": t.text} for t in history if t.text]
        with translated("create thread"):
            return self.client.beta.threads.create(messages=turns).id  # type: ignore[arg-type]

    def find_run(self, thread_id: str, metadata: dict[str, str]) -> str | None:
        """The newest of the thread's last runs that carries this metadata, if any."""
        runs = self.client.beta.threads.runs
        with translated("list runs"):
            page = raw.body(runs.with_raw_response.list(thread_id, limit=10, order="desc"))
        for run in page.get("data") or []:
            mine = run.get("metadata") or {}
            if all(mine.get(key) == value for key, value in metadata.items()):
                return str(run["id"])
        return None

    def _run_request(self, thread_id: str, question: str, metadata: dict[str, str]) -> dict:
        return {
            "thread_id": thread_id,
            "additional_messages": [{"role": "user", "content": question}],
            **self._run_args(metadata),
        }

    def begin(self, thread_id: str, question: str, metadata: dict[str, str]) -> Begun:
        """Start a run on the thread."""
        with translated("start run"):
            run = self.client.beta.threads.runs.create(
                **self._run_request(thread_id, question, metadata), include=[RESULT_CONTENT]
            )
        return Begun(thread_id, run.id)

    def stream(
        self, thread_id: str, question: str, metadata: dict[str, str]
    ) -> Iterator[StreamEvent]:
        """Start a run with stream=True and translate its events."""
        runs = self.streams.beta.threads.runs
        with translated("stream run"):
            events = raw.opened(
                runs.with_streaming_response.create(
                    stream=True,
                    # The file search step's completion event then carries the chunks' text.
                    include=[RESULT_CONTENT],
                    **self._run_request(thread_id, question, metadata),
                )
            )
        return self._events(events)

    def _events(self, events: Iterator[raw.Event]) -> Iterator[StreamEvent]:
        """Begun on run creation, Delta per text fragment, Ended with the final messages."""
        messages: list[dict[str, Any]] = []
        found: dict[str, list[str]] = {}
        with translated("stream run"):
            for name, data in events:
                if name == "thread.run.created":
                    yield Begun(data["thread_id"], data["id"])
                elif name == "thread.message.delta":
                    for part in data["delta"].get("content") or []:
                        value = (part.get("text") or {}).get("value")
                        if part.get("type") == "text" and value:
                            yield Delta(value)
                elif name == "thread.message.completed":
                    messages.append(data)
                elif name.startswith("thread.run.step."):
                    # A step's status is not the run's: the file search step "completes"
                    # before the answer is written.
                    if name == "thread.run.step.completed":
                        _collect(data, found)
                    continue
                elif name.startswith("thread.run.") and data.get("status") not in RUNNING:
                    status = data["status"]
                    answer = None
                    if status == "completed":
                        answer = _answer(messages, data["id"], found)
                    yield Ended(RunState(status, answer, _tokens(data)))
                    return
        raise StreamBroken("the run's stream ended early")

    def resume(self, thread_id: str, run_id: str, cursor: int) -> Iterator[StreamEvent]:
        """Assistants runs cannot resume a stream; the caller polls instead."""
        raise StreamBroken("assistants streams cannot be resumed")

    def poll(self, thread_id: str, run_id: str) -> RunState:
        """Retrieve the run; once completed, list its messages for the answer."""
        runs, messages = self.client.beta.threads.runs, self.client.beta.threads.messages
        with translated("retrieve run"):
            run = raw.body(runs.with_raw_response.retrieve(run_id, thread_id=thread_id))
        status = run.get("status")
        if status in RUNNING:
            return RunState("running")
        if status != "completed":
            return RunState(status, tokens=_tokens(run))
        with translated("list messages"):
            page = raw.body(
                messages.with_raw_response.list(thread_id, run_id=run_id, order="asc", limit=20)
            )
        try:
            found = self._retrieved(thread_id, run_id)
        except UpstreamError:
            # Section links are a nicety: a server that cannot list the steps (or not with
            # their content) still gets the answer it has written, linked to whole pages.
            found = {}
        return RunState("completed", _answer(page["data"], run_id, found), _tokens(run))

    def _retrieved(self, thread_id: str, run_id: str) -> dict[str, list[str]]:
        """The text of the chunks the run's file search found, by file id, best first."""
        steps = self.client.beta.threads.runs.steps
        with translated("list run steps"):
            page = raw.body(
                steps.with_raw_response.list(
                    run_id, thread_id=thread_id, include=[RESULT_CONTENT], order="asc", limit=20
                )
            )
        found: dict[str, list[str]] = {}
        for step in page.get("data") or []:
            _collect(step, found)
        return found

    def cancel(self, thread_id: str, run_id: str) -> RunState:
        """Cancel the run upstream."""
        with translated("cancel run"):
            run = self.client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
        return RunState("running" if run.status in RUNNING else run.status)

    def probe(self) -> None:
        """Retrieve the assistant (quickly) to show the upstream answers."""
        with translated("probe"):
            self.client.with_options(timeout=2.0, max_retries=0).beta.assistants.retrieve(
                self.assistant_id
            )

    def forget(self, thread_id: str) -> None:
        """Delete the thread upstream."""
        with translated("delete thread"):
            self.client.beta.threads.delete(thread_id)


def _tokens(run: dict[str, Any]) -> int:
    """Tokens a run used, as its usage reports them (0 before it ends)."""
    return int((run.get("usage") or {}).get("total_tokens") or 0)


def _collect(step: dict[str, Any], found: dict[str, list[str]]) -> None:
    """Add the text of a run step's file search results to `found` (file id -> texts)."""
    for call in (step.get("step_details") or {}).get("tool_calls") or []:
        if call.get("type") != "file_search":
            continue
        for hit in (call.get("file_search") or {}).get("results") or []:
            text = "".join(
                part.get("text") or ""
                for part in hit.get("content") or []
                if part.get("type") == "text"
            )
            if hit.get("file_id") and text:
                found.setdefault(hit["file_id"], []).append(text)


def _answer(
    messages: list[dict[str, Any]], run_id: str, retrieved: dict[str, list[str]] | None = None
) -> Answer:
    """Join the run's assistant messages into one answer with its file citations."""
    text = ""
    citations: list[Citation] = []
    first_id = ""
    for message in messages:
        if message.get("role") != "assistant":
            continue
        first_id = first_id or message["id"]
        for part in message.get("content") or []:
            if part.get("type") != "text":
                continue
            if text:
                text += "\n\n"
            offset = len(text)
            text += part["text"]["value"]
            for note in part["text"].get("annotations") or []:
                if note.get("type") == "file_citation":
                    citations.append(
                        Citation(
                            offset + note["start_index"],
                            offset + note["end_index"],
                            note["file_citation"]["file_id"],
                        )
                    )
    return Answer(first_id or run_id, text, citations, retrieved=retrieved or {})
