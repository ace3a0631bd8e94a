"""End to end over real HTTP: emulator + proxy process + the real openai SDK, in both API modes."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import websocket

from tests.support import wait_until


def _count(stats: dict[str, int], *keys: str) -> int:
    return sum(stats.get(k, 0) for k in keys)


THREAD_CREATES = ("POST /v1/threads", "POST /v1/threads/runs", "POST /v1/conversations")


def test_question_gets_a_grounded_answer_with_its_source(start_stack, db_url, api_mode):
    stack = start_stack(db_url=db_url, DOCSCHAT_API=api_mode)
    sid = stack.new_session()
    question = stack.ask(sid, "How do I install docschat with pip?")
    assert question["role"] == "user" and question["text"] == "How do I install docschat with pip?"

    [answer] = stack.answers(sid)
    assert answer["status"] == "done", answer
    assert "pip install docschat" in answer["text"]
    assert {"title": "Installing", "url": "http://docs.test/install"} in answer["sources"]
    assert 'href="http://docs.test/install"' in answer["html"]
    assert "【" not in answer["text"]


def test_follow_up_uses_the_same_upstream_thread(start_stack, api_mode):
    stack = start_stack(DOCSCHAT_API=api_mode)
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid, 1)
    stack.ask(sid, "Which database setting is there?")
    answers = stack.answers(sid, 2)
    assert [a["status"] for a in answers] == ["done", "done"]
    assert "DATABASE_URL" in answers[1]["text"]
    assert _count(stack.stats(), *THREAD_CREATES) == 1


def test_unanswerable_question_says_so(start_stack, api_mode):
    stack = start_stack(DOCSCHAT_API=api_mode)
    sid = stack.new_session()
    stack.ask(sid, "zebra quantum marmalade?")
    [answer] = stack.answers(sid)
    assert answer["status"] == "done"
    assert "could not find" in answer["text"]
    assert answer["sources"] == []


def test_racing_first_questions_make_one_thread_and_answer_in_order(start_stack, db_url, api_mode):
    stack = start_stack(db_url=db_url, DOCSCHAT_API=api_mode)
    sid = stack.new_session()
    questions = ["How do I install docschat?", "Which database does DATABASE_URL choose?"]
    threads = [threading.Thread(target=stack.ask, args=(sid, q)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers = stack.answers(sid, 2)
    assert [a["status"] for a in answers] == ["done", "done"]
    assert _count(stack.stats(), *THREAD_CREATES) == 1
    messages = stack.messages(sid)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


def test_second_question_during_a_run_is_answered_after_it(start_stack, api_mode):
    stack = start_stack(DOCSCHAT_API=api_mode, emulator={"latency_ms": 800})
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    wait_until(lambda: stack.jobs()[0]["run_id"])  # the first answer's run is under way
    stack.ask(sid, "What does DATABASE_URL choose?")
    answers = stack.answers(sid, 2)
    assert "pip install" in answers[0]["text"]
    assert "DATABASE_URL" in answers[1]["text"]
    assert answers[0]["id"] < answers[1]["id"]


@pytest.mark.parametrize(
    ("fault", "readable"),
    [
        ({"kind": "run_failed"}, "could not answer"),
        ({"kind": "run_expired"}, "expired"),
        ({"kind": "run_incomplete"}, "cut short"),
    ],
)
def test_failed_runs_end_as_readable_errors(start_stack, api_mode, fault, readable):
    stack = start_stack(DOCSCHAT_API=api_mode, DOCSCHAT_STREAMING="0")
    stack.faults(fault)
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    [answer] = stack.answers(sid)
    assert answer["status"] == "error"
    if api_mode == "responses" and fault["kind"] == "run_expired":
        readable = "could not answer"  # responses have no expired status: they end failed
    assert readable in answer["text"]


def test_upstream_500_and_429_are_retried_until_answered(start_stack, api_mode):
    stack = start_stack(DOCSCHAT_API=api_mode, DOCSCHAT_STREAMING="0")
    stack.faults({"kind": "http_500", "times": 2}, {"kind": "http_429", "retry_after": 1})
    sid = stack.new_session()
    started = time.monotonic()
    stack.ask(sid, "How do I install docschat?")
    [answer] = stack.answers(sid)
    assert answer["status"] == "done"
    assert "pip install" in answer["text"]
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured


def test_run_that_never_finishes_ends_at_the_deadline(start_stack, api_mode):
    stack = start_stack(DOCSCHAT_API=api_mode, DOCSCHAT_STREAMING="0", DOCSCHAT_ANSWER_DEADLINE="3")
    stack.faults({"kind": "run_never_finishes"})
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    [answer] = stack.answers(sid, timeout=15)
    assert answer["status"] == "error"
    assert "took too long" in answer["text"]
    cancels = [k for k in stack.stats() if k.endswith("/cancel")]
    assert cancels, "the overdue run was not cancelled upstream"


def test_killed_proxy_answers_exactly_once_after_restart(start_stack, db_url, api_mode):
    stack = start_stack(
        db_url=db_url, DOCSCHAT_API=api_mode, emulator={"latency_ms": 1500}, DOCSCHAT_STREAMING="0"
    )
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    wait_until(lambda: stack.jobs()[0]["run_id"])  # the run is started and recorded
    stack.kill()
    stack.start()
    stack.answers(sid, 1, timeout=30)
    # No job is left that could still write a second answer.
    wait_until(lambda: all(j["state"] in ("done", "error") for j in stack.jobs()))
    answers = [m for m in stack.messages(sid) if m["role"] == "assistant"]
    assert len(answers) == 1
    assert answers[0]["status"] == "done" and "pip install" in answers[0]["text"]
    starts = _count(
        stack.stats(),
        "POST /v1/threads/runs",
        "POST /v1/threads/{thread_id}/runs",
        "POST /v1/responses",
    )
    assert starts == 1, "the answer was started twice upstream"


def test_websocket_receives_the_pending_and_the_done_message(start_stack, api_mode):
    stack = start_stack(DOCSCHAT_API=api_mode)
    sid = stack.new_session()
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{stack.port}/api/sessions/{sid}/events", timeout=10
    )
    try:
        stack.ask(sid, "How do I install docschat?")
        seen: list[dict] = []
        while not any(
            e["type"] == "message"
            and e["message"]["role"] == "assistant"
            and e["message"]["status"] == "done"
            for e in seen
        ):
            seen.append(json.loads(ws.recv()))
    finally:
        ws.close()
    statuses = [
        e["message"]["status"]
        for e in seen
        if e["type"] == "message" and e["message"]["role"] == "assistant"
    ]
    assert statuses[0] == "pending" and statuses[-1] == "done"


def test_delete_clears_the_conversation_and_starts_a_fresh_thread(start_stack, api_mode):
    stack = start_stack(DOCSCHAT_API=api_mode)
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid)
    assert stack.http.delete(f"/api/sessions/{sid}").status_code == 204
    assert stack.messages(sid) == []
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid)
    assert _count(stack.stats(), *THREAD_CREATES) == 2


def test_bad_input_gets_its_status_and_one_error_shape(start_stack):
    stack = start_stack()
    sid = stack.new_session()
    base = f"/api/sessions/{sid}/messages"
    cases = [
        (stack.http.post("/api/sessions/nope/messages", json={"text": "hi"}), 404),
        (stack.http.get("/api/sessions/nope/messages"), 404),
        (stack.http.post(base, json={"text": "   \n "}), 400),
        (stack.http.post(base, json={"text": ""}), 400),
        (stack.http.post(base, json={"text": "x" * 4001}), 413),
        (
            stack.http.post(
                base, content=b"{not json", headers={"Content-Type": "application/json"}
            ),
            400,
        ),
        (stack.http.post(base, json=["a list"]), 400),
        (stack.http.post(base, json={"text": 42}), 400),
        (stack.http.put(base, json={"text": "hi"}), 405),
        (stack.http.get(f"{base}?after=abc"), 400),
        (stack.http.post(base, content=b"text=hi", headers={"Content-Type": "text/plain"}), 415),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
        assert "Traceback" not in response.text
    assert stack.messages(sid) == []


def test_health_answers(start_stack):
    stack = start_stack()
    assert httpx.get(f"{stack.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok",
        "setup": "ok",
        "upstream": "ok",
    }


def test_runs_bound_the_context_and_the_answer_length(start_stack, api_mode):
    from openai import OpenAI

    stack = start_stack(
        DOCSCHAT_API=api_mode, DOCSCHAT_CONTEXT_TURNS="5", DOCSCHAT_MAX_ANSWER_TOKENS="300"
    )
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid)
    [job] = stack.jobs()
    client = OpenAI(api_key="sk-test", base_url=stack.emulator.base_url)
    if api_mode == "assistants":
        run = client.beta.threads.runs.retrieve(job["run_id"], thread_id=job["thread_id"])
        assert run.truncation_strategy.type == "last_messages"
        assert run.truncation_strategy.last_messages == 5
        assert run.max_completion_tokens == 300
    else:
        response = client.responses.retrieve(job["run_id"])
        assert response.truncation == "auto" and response.max_output_tokens == 300


def test_a_start_whose_answer_arrives_too_late_does_not_run_twice(start_stack):
    """The upstream made the run, but its answer came after our timeout: the retry looks for the
    run (by the job's metadata) and follows it instead of starting a second one."""
    stack = start_stack(
        DOCSCHAT_API="assistants", DOCSCHAT_STREAMING="0", DOCSCHAT_UPSTREAM_TIMEOUT="1"
    )
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid, 1)  # the session has its thread now
    stack.faults({"kind": "late", "seconds": 3, "match": "POST /v1/threads/{thread_id}/runs"})
    stack.ask(sid, "How do I upgrade docschat?")
    answers = stack.answers(sid, 2)
    assert [a["status"] for a in answers] == ["done", "done"]
    stats = stack.stats()
    assert stats.get("POST /v1/threads/{thread_id}/runs") == 2  # one run per question
    assert stats.get("GET /v1/threads/{thread_id}/runs", 0) >= 1  # it looked before retrying
