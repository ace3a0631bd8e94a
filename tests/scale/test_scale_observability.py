"""Seeing what the service does: /metrics families, /readyz checks, JSON logs with request ids."""

from __future__ import annotations

import json
import re

import httpx

from tests.conftest import wait_until

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
