"""When things happen to a run or response: status by time, its planned events, and SSE pumping."""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from emulator.search import Citation

INF = float("inf")
DELTA_EVENTS = frozenset({"thread.message.delta", "response.output_text.delta"})
OUTCOMES = ("completed", "failed", "expired", "incomplete", "never")


@dataclass(frozen=True)
class Chunk:
    """One streamed piece of answer text; `citation` marks the piece a citation belongs to."""

    text: str
    citation: Citation | None = None


@dataclass(frozen=True)
class Event:
    """A server-sent event planned for time `t`."""

    t: float
    name: str
    data: Any

    def encode(self) -> bytes:
        """The event in SSE wire form."""
        payload = self.data if isinstance(self.data, str) else json.dumps(self.data)
        return f"event: {self.name}\ndata: {payload}\n\n".encode()


class Job:
    """The timing of one run or response, computed from its creation time (nothing ticks).

    queued until created + 20% of the latency, in_progress until created + latency, then one
    chunk per 1/tokens_per_second (all at once when 0), then the outcome.
    """

    def __init__(
        self,
        job_id: str,
        created: float,
        latency: float,
        tokens_per_second: float,
        chunks: list[Chunk],
        outcome: str = "completed",
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(outcome)
        self.id = job_id
        self.created = created
        self.latency = latency
        self.tps = tokens_per_second
        self.chunks = chunks
        self.outcome = outcome
        self.start_at = created + latency * 0.2
        n = len(chunks)
        if outcome == "completed":
            self.limit = n
        elif outcome == "incomplete":
            self.limit = (n + 1) // 2
        else:
            self.limit = 0
        base = created + latency
        step = 1.0 / tokens_per_second if tokens_per_second > 0 else 0.0
        self.token_times = [base + i * step for i in range(self.limit)]
        if outcome == "never":
            self.end_time = INF
        elif outcome in ("completed", "incomplete"):
            self.end_time = base + self.limit * step
        else:
            self.end_time = base
        self.cancelled_at: float | None = None
        self.stream_first_token: float | None = None
        self.planner: Callable[[], list[Event]] | None = None
        self.tail: list[Event] = []
        # The planned events are built only while someone streams them: a run's plan holds a
        # snapshot per event, too much to keep for every run of a long benchmark.
        self._plan: list[Event] | None = None
        self._plan_times: list[float] = []
        self._streams = 0

    # --- state by time -----------------------------------------------------------------------

    @property
    def cut(self) -> float:
        """When the job stops producing: its cancellation, or never."""
        return INF if self.cancelled_at is None else self.cancelled_at

    def status(self, at: float) -> str:
        """queued, in_progress, or the terminal status reached by `at`."""
        if self.cancelled_at is not None and at >= self.cancelled_at:
            return "cancelled"
        if at >= self.end_time:
            return self.outcome
        if at >= self.start_at:
            return "in_progress"
        return "queued"

    def terminal_time(self, at: float) -> float | None:
        """When the job reached its terminal status, if it has by `at`."""
        if self.cancelled_at is not None and at >= self.cancelled_at:
            return self.cancelled_at
        if at >= self.end_time:
            return self.end_time
        return None

    def emitted(self, at: float) -> int:
        """How many chunks had been produced by `at`."""
        return bisect.bisect_right(self.token_times, min(at, self.cut))

    def first_token_time(self, at: float) -> float | None:
        """When the first chunk was produced (a stream's actual write if it streamed)."""
        if self.stream_first_token is not None:
            return self.stream_first_token
        if self.token_times and self.token_times[0] <= min(at, self.cut):
            return self.token_times[0]
        return None

    def text(self, at: float) -> str:
        """The text produced by `at`."""
        return "".join(c.text for c in self.chunks[: self.emitted(at)])

    def is_active(self, at: float) -> bool:
        """Whether the job is still queued or running at `at`."""
        return self.terminal_time(at) is None

    # --- events ------------------------------------------------------------------------------

    def plan(self) -> list[Event]:
        """Every event a stream of this job carries (times never decrease).

        Built by `planner`, which renders each snapshot as of its own time; a cancellation only
        changes what comes after it, so a rebuilt plan equals the first one.
        """
        if self._plan is None:
            self._plan = self.planner() if self.planner is not None else []
            self._plan_times = [e.t for e in self._plan]
        return self._plan

    def open_stream(self) -> None:
        """Note a stream reading the plan (call with the state lock held)."""
        self._streams += 1

    def close_stream(self) -> None:
        """Note a stream ended; the plan is dropped when none is left (state lock held)."""
        self._streams -= 1
        if self._streams <= 0:
            self._streams = 0
            self._plan = None
            self._plan_times = []

    def cancel(self, at: float, tail: list[Event]) -> None:
        """Stop the job at `at`; `tail` are the events that announce it."""
        self.cancelled_at = at
        self.tail = tail

    def events_until(self, now: float) -> tuple[list[Event], bool, float | None]:
        """Events due by `now`, whether the stream is over, and when the next one is due."""
        plan = self.plan()
        k = bisect.bisect_right(self._plan_times, min(now, self.cut))
        events = plan[:k]
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return events + self.tail, True, None
        finished = k == len(plan) and self.outcome != "never"
        upcoming = self._plan_times[k] if k < len(plan) else None
        return events, finished, upcoming


STALL_SECONDS = 60.0  # how long a stalled stream stays silent before it drops


def pump(
    job: Job,
    lock: threading.RLock,
    stopping: threading.Event,
    start: int = 0,
    disconnect_after: int | None = None,
    keepalive: float = 10.0,
    *,
    stall: bool = False,
) -> Iterator[bytes]:
    """Yield the job's events from index `start` as they fall due, until it ends.

    With `disconnect_after`, the connection is dropped (no clean end) after that many events;
    with `stall` too, it first stays open and silent for up to a minute.
    """
    with lock:
        job.open_stream()
    try:
        yield from _pump(job, lock, stopping, start, disconnect_after, keepalive, stall)
    finally:
        with lock:
            job.close_stream()


def _pump(
    job: Job,
    lock: threading.RLock,
    stopping: threading.Event,
    start: int,
    disconnect_after: int | None,
    keepalive: float,
    stall: bool,
) -> Iterator[bytes]:
    sent = start
    written = 0
    last_write = time.time()
    while True:
        with lock:
            now = time.time()
            events, finished, upcoming = job.events_until(now)
        batch: list[bytes] = []
        for event in events[sent:]:
            if disconnect_after is not None and written >= disconnect_after:
                break
            if event.name in DELTA_EVENTS and job.stream_first_token is None:
                job.stream_first_token = time.time()
            batch.append(event.encode())
            written += 1
        sent = max(sent, len(events))
        if batch:
            yield b"".join(batch)
            last_write = time.time()
        if disconnect_after is not None and written >= disconnect_after:
            if stall:
                stopping.wait(STALL_SECONDS)
            # werkzeug treats this as a dropped connection: no closing chunk is written.
            raise ConnectionAbortedError("emulated stream disconnect")
        if finished:
            return
        if time.time() - last_write >= keepalive:
            # A comment line finds out whether the client is still there.
            yield b": keepalive\n\n"
            last_write = time.time()
        wait = 0.25 if upcoming is None else min(max(upcoming - time.time(), 0.0), 0.25)
        if stopping.wait(wait):
            return
