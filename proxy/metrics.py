"""Prometheus metrics kept in process memory and rendered in the text exposition format."""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120)


class Histogram:
    """Cumulative buckets, sum and count of observed values."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        """Record one value."""
        self.n += 1
        self.total += value
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1


class Metrics:
    """Counters and histograms one process collects about questions, answers and upstream calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[str, float] = defaultdict(float)
        self.latency = Histogram()
        self.added = Histogram()

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        with self._lock:
            self.counters[(name, tuple(sorted(labels.items())))] += amount

    def set_gauge(self, name: str, value: float) -> None:
        """Set a gauge."""
        with self._lock:
            self.gauges[name] = value

    def question(self) -> None:
        """A question was accepted."""
        self.inc("docschat_questions_total")

    def refused(self, code: str) -> None:
        """A request was refused by a limit."""
        self.inc("docschat_refusals_total", code=code)

    def answered(self, outcome: str, seconds: float, added: float | None = None) -> None:
        """An answer ended (done, stopped or an error status), `seconds` after it was asked."""
        self.inc("docschat_answers_total", outcome=outcome)
        with self._lock:
            self.latency.observe(seconds)
            if added is not None:
                self.added.observe(max(0.0, added))

    def upstream_call(self, kind: str, status: str = "ok") -> None:
        """An upstream request of a kind (start, poll, cancel) ended with a status."""
        self.inc("docschat_upstream_requests_total", kind=kind, status=status)

    def upstream_error(self, status: int) -> None:
        """An upstream request failed."""
        self.inc("docschat_upstream_errors_total", status=str(status or "network"))

    def stream_fallback(self) -> None:
        """A stream broke and the answer went back to polling or resuming."""
        self.inc("docschat_stream_fallbacks_total")

    def set_inflight(self, n: int) -> None:
        """Answer jobs this worker is running now."""
        self.set_gauge("docschat_jobs_inflight", n)

    def render(self, extra: dict[str, float] | None = None) -> str:
        """The Prometheus text format of every metric."""
        lines: list[str] = []
        with self._lock:
            typed: set[str] = set()
            for (name, labels), value in sorted(self.counters.items()):
                if name not in typed:
                    typed.add(name)
                    lines.append(f"# TYPE {name} counter")
                label = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{label}}} {value:g}" if label else f"{name} {value:g}")
            for name, value in sorted({**self.gauges, **(extra or {})}.items()):
                lines.append(f"# TYPE {name} gauge")
                lines.append(f"{name} {value:g}")
            for name, hist in (
                ("docschat_answer_seconds", self.latency),
                ("docschat_added_latency_seconds", self.added),
            ):
                lines.append(f"# TYPE {name} histogram")
                running = 0
                for bound, count in zip((*BUCKETS, "+Inf"), hist.counts, strict=True):
                    running += count
                    lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
                lines.append(f"{name}_sum {hist.total:g}")
                lines.append(f"{name}_count {hist.n}")
        return "\n".join(lines) + "\n"
