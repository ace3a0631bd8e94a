"""The one interface both upstream APIs sit behind, and the values that cross it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

TERMINAL_ERRORS = {
    "failed": "The assistant could not answer this question. Please try again.",
    "expired": "The answer took too long and expired. Please try again.",
    "cancelled": "The answer was cancelled.",
    "incomplete": "The answer was cut short. Please try again or ask a narrower question.",
    "requires_action": "The assistant asked for a tool docschat does not offer.",
}


@dataclass(frozen=True)
class Citation:
    """A span of the answer text that cites an uploaded file (start == end marks a point)."""

    start: int
    end: int
    file_id: str
    filename: str = ""


@dataclass(frozen=True)
class Answer:
    """A finished upstream answer: its id (the key of the local copy), text and citations."""

    upstream_id: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    # (title, url) of cited files as the upstream's search results name them, for pages the
    # local documents table does not know.
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The text of each chunk the file search retrieved, by file id, best first: it tells which
    # section of a cited page the answer drew on.
    retrieved: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunState:
    """What the upstream says about a run or background response."""

    status: str
    answer: Answer | None = None
    tokens: int = 0

    @property
    def finished(self) -> bool:
        """True once the run will not change any more."""
        return self.status == "completed" or self.status in TERMINAL_ERRORS

    @property
    def error(self) -> str:
        """A short text a reader can understand, for an unsuccessful end."""
        return TERMINAL_ERRORS.get(self.status, "")


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation, to seed a new upstream thread."""

    role: str
    text: str


@dataclass(frozen=True)
class Begun:
    """A run or response was started upstream."""

    thread_id: str
    run_id: str


@dataclass(frozen=True)
class Delta:
    """New answer text from a stream; cursor is the position to resume after, if any."""

    text: str
    cursor: int | None = None


@dataclass(frozen=True)
class Ended:
    """The stream reached the run's end."""

    state: RunState


StreamEvent = Begun | Delta | Ended


class Upstream(Protocol):
    """An answering service: Assistants (threads, runs) or Responses (conversations, responses)."""

    api: str
    can_resume: bool

    def open_thread(self, history: list[Turn]) -> str:
        """Make a session's thread (or conversation), seeded with its earlier turns."""
        ...

    def find_run(self, thread_id: str, metadata: dict[str, str]) -> str | None:
        """The run on this thread started with this metadata, if one exists (a start whose
        answer was lost on its way back); None also where the API cannot list runs."""
        ...

    def begin(self, thread_id: str, question: str, metadata: dict[str, str]) -> Begun:
        """Start answering `question` on the thread."""
        ...

    def stream(
        self, thread_id: str, question: str, metadata: dict[str, str]
    ) -> Iterator[StreamEvent]:
        """Start answering with a stream: Begun first, then Deltas, then Ended."""
        ...

    def resume(self, thread_id: str, run_id: str, cursor: int) -> Iterator[StreamEvent]:
        """Continue a broken stream after `cursor` (only where can_resume)."""
        ...

    def poll(self, thread_id: str, run_id: str) -> RunState:
        """The run's state, with its answer once completed."""
        ...

    def cancel(self, thread_id: str, run_id: str) -> RunState:
        """Ask the upstream to stop a run; returns its state afterwards."""
        ...

    def forget(self, thread_id: str) -> None:
        """Delete an upstream thread or conversation (best effort)."""
        ...

    def probe(self) -> None:
        """One cheap request that raises an UpstreamError when the upstream cannot serve us."""
        ...
