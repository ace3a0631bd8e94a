"""Prometheus metrics with prometheus-client: what one process counts, and what /metrics shows.

In a process that shares a metrics directory (see proxy/metrics_dir.py) the series live in files
that every docschat process of the machine writes, and `render` adds them all up; otherwise they
stay in this process.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

CONTENT_TYPE = CONTENT_TYPE_LATEST
ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Any other method a client sends is counted as "other": label values must stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


class Metrics:
    """Counters, gauges and histograms of questions, answers, HTTP and upstream requests."""

    def __init__(self, directory: Path | None = None) -> None:
        if directory is not None and values.ValueClass is values.MutexValue:
            raise RuntimeError(
                "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: "
                "call proxy.metrics_dir.share() first in this process"
            )
        # `_created` series are one timestamp per series, which dashboards do not use.
        disable_created_metrics()
        self.directory = directory
        self.registry = CollectorRegistry()
        reg = self.registry
        self.questions = Counter(
            "docschat_questions", "Questions accepted from readers.", registry=reg
        )
        self.refusals = Counter(
            "docschat_refusals",
            "Requests refused by a limit (rate, queue, budget, WebSockets), by code.",
            ["code"],
            registry=reg,
        )
        self.answers = Counter(
            "docschat_answers",
            "Answers that ended, by outcome (done, stopped, or the run's error status).",
            ["outcome"],
            registry=reg,
        )
        self.answer_seconds = Histogram(
            "docschat_answer_seconds",
            "Seconds from a question to the end of its answer.",
            buckets=ANSWER_BUCKETS,
            registry=reg,
        )
        self.added_seconds = Histogram(
            "docschat_added_latency_seconds",
            "Seconds docschat itself added to an answer: waiting before the upstream began, "
            "and storing and publishing after it ended.",
            buckets=ANSWER_BUCKETS,
            registry=reg,
        )
        self.upstream_requests = Counter(
            "docschat_upstream_requests",
            "Requests to the upstream API, by operation and status (ok, an HTTP status, or "
            "network).",
            ["operation", "status"],
            registry=reg,
        )
        self.upstream_errors = Counter(
            "docschat_upstream_errors",
            "Upstream requests that failed, by operation and status (an HTTP status, or network).",
            ["operation", "status"],
            registry=reg,
        )
        self.upstream_seconds = Histogram(
            "docschat_upstream_request_seconds",
            "Seconds one upstream request took, by operation (opening a stream counts until "
            "the stream is open).",
            ["operation"],
            buckets=UPSTREAM_BUCKETS,
            registry=reg,
        )
        self.stream_fallbacks = Counter(
            "docschat_stream_fallbacks",
            "Streams that broke or stalled, so the answer went back to polling or resuming.",
            registry=reg,
        )
        self.inflight = Gauge(
            "docschat_jobs_inflight",
            "Answer jobs the workers are running now.",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.websockets = Gauge(
            "docschat_websocket_connections",
            "Open WebSocket connections of readers.",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.http_requests = Counter(
            "docschat_http_requests",
            "HTTP requests served, by route (the URL rule, not the path), method and status.",
            ["route", "method", "status"],
            registry=reg,
        )
        self.http_seconds = Histogram(
            "docschat_http_request_seconds",
            "Seconds to answer an HTTP request, by route and method (a WebSocket's lasts as "
            "long as its connection).",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )

    def question(self) -> None:
        """A question was accepted."""
        self.questions.inc()

    def refused(self, code: str) -> None:
        """A request was refused by a limit."""
        self.refusals.labels(code).inc()

    def answered(self, outcome: str, seconds: float, added: float | None = None) -> None:
        """An answer ended (done, stopped or an error status), `seconds` after it was asked."""
        self.answers.labels(outcome).inc()
        self.answer_seconds.observe(seconds)
        if added is not None:
            self.added_seconds.observe(max(0.0, added))

    def upstream_call(self, kind: str, status: str = "ok", seconds: float | None = None) -> None:
        """An upstream request of an operation (start, poll, cancel...) ended with a status."""
        self.upstream_requests.labels(kind, status).inc()
        if status != "ok":
            self.upstream_errors.labels(kind, status).inc()
        if seconds is not None:
            self.upstream_seconds.labels(kind).observe(seconds)

    def stream_fallback(self) -> None:
        """A stream broke and the answer went back to polling or resuming."""
        self.stream_fallbacks.inc()

    def set_inflight(self, n: int) -> None:
        """Answer jobs this worker is running now."""
        self.inflight.set(n)

    def websocket_opened(self) -> None:
        """A reader's WebSocket was accepted."""
        self.websockets.inc()

    def websocket_closed(self) -> None:
        """A reader's WebSocket ended."""
        self.websockets.dec()

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """An HTTP request was answered; `route` is the URL rule that matched it."""
        method = method if method in METHODS else "other"
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_seconds.labels(route, method).observe(seconds)

    def render(self, extra: Mapping[str, tuple[str, float]] | None = None) -> bytes:
        """The text exposition of every series, plus `extra` gauges (name -> (help, value))
        computed at scrape time; in a shared directory, of every process of the machine."""
        registry = CollectorRegistry()
        if self.directory is not None:
            _forget_dead(self.directory)
            MultiProcessCollector(registry, path=str(self.directory))
        else:
            registry.register(_Own(self.registry))
        registry.register(_Gauges(extra or {}))
        return generate_latest(registry)


class _Own:
    """The series of this process's own registry (a collector for the scrape's registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        """Every series of the registry."""
        return self.registry.collect()


class _Gauges:
    """Gauges whose values are computed for one scrape."""

    def __init__(self, gauges: Mapping[str, tuple[str, float]]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        """One gauge family per value."""
        for name, (help_text, value) in sorted(self.gauges.items()):
            yield GaugeMetricFamily(name, help_text, value=value)


def _forget_dead(directory: Path) -> None:
    """Drop live gauges of processes that ended without anyone noticing (SIGKILL of a process
    that is not a gunicorn worker), so jobs in flight and WebSockets do not count them."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = LIVE_GAUGE_FILE.match(os.path.basename(path))
        if match and not _alive(int(match[1])):
            mark_process_dead(int(match[1]), str(directory))


def _alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's
    return True
