"""Seeing what the service does: /metrics families, /readyz checks, JSON logs with request ids."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support import Stack, free_port, wait_until

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def _samples(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


def _family(samples: dict[str, float], name: str) -> dict[str, float]:
    return {k: v for k, v in samples.items() if k == name or k.startswith(name + "{")}


def test_metrics_count_questions_answers_upstream_calls_sockets_and_refusals(start_stack, listen):
    stack = start_stack(DOCSCHAT_RATE_SESSION_MINUTE="2")
    sid = stack.new_session()
    listener = listen(stack.url, sid)
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid, 1)
    stack.ask(sid, "Which database?")
    refused = stack.http.post(f"/api/sessions/{sid}/messages", json={"text": "A third?"})
    assert refused.status_code == 429

    r = stack.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = _samples(r.text)
    assert samples["docschat_questions_total"] >= 2
    assert samples['docschat_answers_total{outcome="done"}'] >= 1
    assert samples["docschat_answer_seconds_count"] >= 1
    assert samples['docschat_answer_seconds_bucket{le="+Inf"}'] >= 1
    assert sum(_family(samples, "docschat_upstream_requests_total").values()) >= 1
    assert "docschat_jobs_inflight" in samples
    assert samples["docschat_websocket_connections"] == 1
    assert sum(_family(samples, "docschat_refusals_total").values()) >= 1
    listener.close()


def test_metrics_show_added_latency_overdue_jobs_and_upstream_status(start_stack):
    stack = start_stack()
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid, 1)
    text = stack.http.get("/metrics").text
    samples = _samples(text)
    assert any(k.startswith("docschat_added_latency_seconds_bucket") for k in samples)
    assert "docschat_jobs_overdue" in samples
    assert any(
        k.startswith("docschat_upstream_requests_total{") and "status=" in k for k in samples
    )
    assert "# TYPE docschat_answer_seconds histogram" in text


def test_readyz_reports_the_database(start_stack, private_pg):
    stack = start_stack(db_url=private_pg.url)
    r = stack.http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "setup": "ok", "upstream": "ok"}
    private_pg.stop()
    try:
        r = stack.http.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] != "ok"
        assert stack.http.get("/healthz").status_code == 200  # alive, just not ready
    finally:
        private_pg.start()
    wait_until(lambda: stack.http.get("/readyz").status_code == 200, timeout=15)


def test_readyz_reports_an_unreachable_upstream_but_stays_ready(start_stack):
    stack = start_stack()
    assert stack.http.get("/readyz").status_code == 200
    stack.emulator.stop()
    # The upstream check is remembered for 10 seconds, so probes cannot hammer the upstream.
    r = wait_until(lambda: _upstream_down(stack), timeout=15, every=0.5)
    # Every replica sees the same outage: leaving the load balancer would only add to it.
    assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"


def _upstream_down(stack):
    r = stack.http.get("/readyz")
    return r if r.json()["checks"]["upstream"] != "ok" else None


def _json_lines(text: str) -> list[dict]:
    entries = []
    for line in text.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def test_json_logs_carry_the_request_id_from_the_http_request_into_the_worker(start_stack, procs):
    stack = start_stack(DOCSCHAT_RUN_WORKER="0", DOCSCHAT_LOG_JSON="1", DOCSCHAT_LOG_LEVEL="INFO")
    worker = procs.worker(stack.env, "json-worker")
    sid = stack.new_session()
    # A failing upstream request makes the worker say something about this job.
    stack.faults({"kind": "http_500", "times": 1, "match": "/runs"})
    r = httpx.post(
        f"{stack.url}/api/sessions/{sid}/messages",
        json={"text": "How do I install docschat?"},
        headers={"X-Request-Id": "scale-req-42"},
    )
    assert r.status_code == 202
    assert r.headers["X-Request-Id"] == "scale-req-42"
    stack.answers(sid, 1)

    entries = _json_lines(worker.log.read_text())
    assert entries, "the worker wrote no JSON log lines"
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    mine = [e for e in entries if e.get("request_id") == "scale-req-42"]
    assert mine, entries
    # The job's own lines, not just the HTTP client's, carry it.
    assert any(e["logger"].startswith("proxy.") for e in mine), mine


# --- the Procfile's processes on one machine ------------------------------------------------


@pytest.fixture
def deployment(tmp_path, start_emulator, pg_database) -> Iterator[Stack]:
    """A fresh PostgreSQL database, set up, and an emulator: the Procfile's processes are
    started by the test (their URL is the stack's)."""
    stack = Stack(tmp_path, pg_database, start_emulator(), {"DOCSCHAT_LOG_JSON": "1"})
    stack.setup()
    yield stack
    stack.close()


def _scrape(url: str) -> tuple[str, dict[str, float]]:
    """One scrape of /metrics on a new connection (so gunicorn's workers take turns)."""
    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return r.text, _samples(r.text)


def _answers_total(samples: dict[str, float]) -> float:
    return sum(_family(samples, "docschat_answers_total").values())


def _json_entries(*paths: Path) -> list[dict]:
    """Every line of the files, each parsed as one JSON object (a line that is not fails)."""
    entries = []
    for path in paths:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            assert isinstance(entry, dict), line
            entries.append(entry)
    return entries


def _metrics_served_by(proc) -> set[int]:
    """Process ids of the gunicorn workers whose access lines show a GET /metrics."""
    access = [e for e in _json_entries(proc.out) if e["logger"] == "gunicorn.access"]
    return {e["process"] for e in access if e.get("path") == "/metrics"}


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_any_web_process_shows_the_metrics_of_every_docschat_process(deployment, procs, listen):
    stack = deployment
    web = procs.gunicorn_on(stack.port, stack.env, WEB_CONCURRENCY="2")  # answers nothing
    procs.worker(stack.env)
    sessions = [stack.new_session() for _ in range(3)]
    for sid in sessions:
        stack.ask(sid, "How do I install docschat?")
        stack.ask(sid, "Which database?")
    answered = sum(len(stack.answers(sid, 2)) for sid in sessions)
    assert answered == 6
    listener = listen(stack.url, sessions[0])

    # Scrape until both gunicorn workers have answered a scrape: each shows every process.
    def both_workers_scraped() -> bool:
        text, samples = _scrape(stack.url)
        assert _answers_total(samples) == 6, text
        assert samples["docschat_questions_total"] == 6
        assert samples["docschat_websocket_connections"] == 1
        return len(_metrics_served_by(web)) >= 2

    wait_until(both_workers_scraped, timeout=30, every=0)

    text, samples = _scrape(stack.url)
    assert samples['docschat_answers_total{outcome="done"}'] == 6
    for name in {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}:
        help_line = next(x for x in text.splitlines() if x.startswith(f"# HELP {name} "))
        assert len(help_line) > len(f"# HELP {name} ") + 10, help_line
    route = 'route="/api/sessions/<sid>/messages"'
    asked = [v for k, v in samples.items() if route in k and 'status="202"' in k]
    assert asked == [6], asked
    assert not any(sid in text for sid in sessions)  # routes, never paths, in labels
    assert samples['docschat_upstream_request_seconds_count{operation="start"}'] >= 6
    assert any(k.startswith("docschat_http_request_seconds_bucket{") for k in samples)

    # Another web process started now neither empties the directory nor misses anything.
    other = free_port()
    procs.gunicorn_on(other, stack.env, WEB_CONCURRENCY="1")
    assert _answers_total(_scrape(f"http://127.0.0.1:{other}")[1]) == 6

    # gunicorn workers killed: their counts stay, the WebSocket they held is gone.
    for pid in _children(web.pid):
        os.kill(pid, signal.SIGKILL)
    listener.close()

    def after_the_kill() -> bool:
        samples = _scrape(f"http://127.0.0.1:{other}")[1]
        assert _answers_total(samples) == 6 and samples["docschat_questions_total"] == 6
        return samples["docschat_websocket_connections"] == 0

    wait_until(after_the_kill, timeout=20, every=0.2)

    # Every process stopped, then a fresh start: the numbers start again from zero.
    for proc in list(procs.running):
        procs.stop(proc)
    procs.gunicorn_on(stack.port, stack.env, WEB_CONCURRENCY="1")
    samples = _scrape(stack.url)[1]
    assert _answers_total(samples) == 0 and samples["docschat_questions_total"] == 0


def test_every_line_of_every_process_is_json_under_gunicorn(deployment, procs):
    stack = deployment
    web = procs.gunicorn_on(stack.port, stack.env, WEB_CONCURRENCY="2")
    worker = procs.worker(stack.env, "json-worker")
    sid = stack.new_session()
    asked = httpx.post(
        f"{stack.url}/api/sessions/{sid}/messages",
        json={"text": "How do I install docschat?"},
        headers={"X-Request-Id": "json-ask-1"},
    )
    assert asked.status_code == 202
    stack.answers(sid, 1)
    missing = httpx.get(f"{stack.url}/nowhere", headers={"X-Request-Id": "json-404"})
    assert missing.status_code == 404
    assert missing.json()["error"]["request_id"] == "json-404"

    # A table gone from under the service: our bug to fix, not a dependency that is down.
    _execute(stack.db_url, "ALTER TABLE messages RENAME TO messages_away")
    try:
        broken = httpx.get(
            f"{stack.url}/api/sessions/{sid}/messages", headers={"X-Request-Id": "json-boom-1"}
        )
    finally:
        _execute(stack.db_url, "ALTER TABLE messages_away RENAME TO messages")
    assert broken.status_code == 500
    error = broken.json()["error"]
    assert error["code"] == "internal_error" and error["request_id"] == "json-boom-1"
    assert broken.headers["X-Request-Id"] == "json-boom-1"
    leaks = ("Traceback", "messages_away", "psycopg", "sqlalchemy")
    assert not [m for m in leaks if m in broken.text]
    procs.stop(web)
    procs.stop(worker)  # their last lines too

    access = _json_entries(web.out)
    errors = _json_entries(web.err)
    worked = _json_entries(worker.log)
    for entry in access + errors + worked:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
        assert datetime.fromisoformat(entry["time"]).utcoffset() is not None, entry
    assert {e["logger"] for e in access} == {"gunicorn.access"}
    lines = {(e.get("request_id"), e["method"], e["path"], e["status"]) for e in access}
    assert ("json-ask-1", "POST", "/api/sessions/<sid>/messages", 202) in lines
    assert ("json-boom-1", "GET", "/api/sessions/<sid>/messages", 500) in lines
    assert sid not in web.out.read_text()  # a session id is a bearer secret
    assert any(e["logger"] == "gunicorn.error" and "Booting worker" in e["message"] for e in errors)
    assert any(e.get("request_id") == "json-ask-1" for e in worked)

    (boom,) = [e for e in errors if e.get("request_id") == "json-boom-1" and "exc_info" in e]
    trace = boom["exc_info"].splitlines()
    assert trace[0] == "Traceback (most recent call last):"
    assert len(trace) > 10 and any(line.startswith('  File "') for line in trace)
    assert any("UndefinedTable" in line and "messages" in line for line in trace), trace


def _execute(db_url: str, sql: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()
