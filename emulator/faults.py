"""Injected faults, queued through /_emulator/faults and consumed by matching requests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import invalid

HTTP_KINDS = frozenset({"http_429", "http_500", "hang", "late"})
RUN_KINDS = frozenset({"run_failed", "run_expired", "run_incomplete", "run_never_finishes"})
STREAM_KINDS = frozenset({"stream_disconnect", "stream_stall"})
KINDS = HTTP_KINDS | RUN_KINDS | STREAM_KINDS
# "hang" waits before a request is served, "late" after it was (the work is done upstream, but the
# answer arrives after the client gave up: what a retry must not do twice).
NUMBER_FIELDS = {
    "retry_after": ("http_429",),
    "seconds": ("hang", "late"),
    "after_events": ("stream_disconnect", "stream_stall"),
}


@dataclass
class Fault:
    """One queued fault: its kind, how many more requests it hits, and which requests."""

    kind: str
    times: int = 1
    match: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def matches(self, *lines: str) -> bool:
        """Whether a request ("METHOD /path", real or templated) is one this fault targets."""
        return not self.match or any(self.match in line for line in lines)

    def as_json(self) -> dict[str, Any]:
        """The fault as the faults endpoint shows it."""
        return {"kind": self.kind, "times": self.times, "match": self.match, **self.options}


def stream_break(fault: Fault | None) -> tuple[int | None, bool]:
    """After how many events a faulted stream breaks, and whether it stalls (stays open and
    silent) rather than drops."""
    if fault is None:
        return None, False
    return int(fault.options.get("after_events", 3)), fault.kind == "stream_stall"


def parse_faults(body: Any) -> list[Fault]:
    """Faults from a `{"faults": [...]}` body; 400 on anything malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("faults"), list):
        raise invalid('Expected {"faults": [...]}.', param="faults")
    faults = []
    for i, raw in enumerate(body["faults"]):
        where = f"faults[{i}]"
        if not isinstance(raw, dict):
            raise invalid(f"{where} must be an object.", param=where)
        kind = raw.get("kind")
        if kind not in KINDS:
            raise invalid(
                f"{where}.kind must be one of {', '.join(sorted(KINDS))}.", param=f"{where}.kind"
            )
        times = raw.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise invalid(f"{where}.times must be a positive integer.", param=f"{where}.times")
        match = raw.get("match") or ""
        if not isinstance(match, str):
            raise invalid(f"{where}.match must be a string.", param=f"{where}.match")
        options = {}
        for name, owners in NUMBER_FIELDS.items():
            if name in raw and kind in owners:
                value = raw[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise invalid(f"{where}.{name} must be a number >= 0.", param=f"{where}.{name}")
                options[name] = value
        faults.append(Fault(kind, times, match, options))
    return faults


class FaultQueue:
    """Faults in the order they were queued; each request takes the first that fits it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, faults: list[Fault]) -> None:
        """Queue faults after those already waiting."""
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The faults still waiting."""
        with self._lock:
            return [f.as_json() for f in self._faults]

    def take(self, kinds: frozenset[str], *lines: str) -> Fault | None:
        """Consume one use of the first queued fault of `kinds` that matches the request."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(*lines):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return Fault(fault.kind, 1, fault.match, dict(fault.options))
        return None
