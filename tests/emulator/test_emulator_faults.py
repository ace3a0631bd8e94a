"""Injected faults and fail_rate: each kind, as a client of the real SDK sees it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import httpx
import openai
import pytest
from emulator_helpers import Docs, finished_response, finished_run, sdk, upload_docs
from openai import OpenAI

from tests.support import add_faults


@pytest.fixture(autouse=True)
def _no_deprecation_noise() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _run(client: OpenAI, assistant_id: str, question: str = "How do I install docschat?"):
    return client.beta.threads.create_and_run(
        assistant_id=assistant_id, thread={"messages": [{"role": "user", "content": question}]}
    )


def _respond(client: OpenAI, docs: Docs, **extra):
    return client.responses.create(
        model="m",
        input="How do I install docschat?",
        tools=[{"type": "file_search", "vector_store_ids": [docs.vector_store_id]}],
        background=True,
        **extra,
    )


def test_http_429_with_retry_after(emu, client: OpenAI) -> None:
    add_faults(emu.url, {"kind": "http_429", "retry_after": 2})
    with pytest.raises(openai.RateLimitError) as caught:
        client.files.list()
    assert caught.value.response.headers["Retry-After"] == "2"
    assert caught.value.code == "rate_limit_exceeded"
    assert "2s" in caught.value.message
    client.files.list()  # consumed: the next request is fine


def test_http_500_times_and_match(emu, client: OpenAI, docs: Docs) -> None:
    add_faults(emu.url, {"kind": "http_500", "times": 2, "match": "POST /v1/responses"})
    client.files.list()  # does not match
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            _respond(client, docs)
    assert _respond(client, docs).status == "queued"


def test_http_faults_are_retried_by_the_sdk(emu, docs: Docs) -> None:
    add_faults(emu.url, {"kind": "http_429", "retry_after": 0})
    patient = OpenAI(api_key="k", base_url=emu.base_url, max_retries=2)
    assert patient.vector_stores.retrieve(docs.vector_store_id).id == docs.vector_store_id


def test_hang_holds_the_request(emu, client: OpenAI) -> None:
    add_faults(emu.url, {"kind": "hang", "seconds": 0.4, "match": "/v1/files"})
    started = time.monotonic()
    client.files.list()
    assert time.monotonic() - started >= 0.4
    impatient = OpenAI(api_key="k", base_url=emu.base_url, max_retries=0, timeout=0.2)
    add_faults(emu.url, {"kind": "hang", "seconds": 1})
    with pytest.raises(openai.APITimeoutError):
        impatient.files.list()


@pytest.mark.parametrize(
    ("kind", "run_status", "response_status"),
    [
        ("run_failed", "failed", "failed"),
        ("run_expired", "expired", "failed"),
        ("run_incomplete", "incomplete", "incomplete"),
    ],
)
def test_run_outcome_faults(
    emu, client: OpenAI, docs: Docs, assistant_id: str, kind, run_status, response_status
) -> None:
    add_faults(emu.url, {"kind": kind, "times": 2})
    started = _run(client, assistant_id)
    run = finished_run(client, started.thread_id, started.id)
    assert run.status == run_status
    response = finished_response(client, _respond(client, docs).id)
    assert response.status == response_status
    if kind == "run_failed":
        assert run.last_error.code == "server_error"
        assert response.error.code == "server_error" and response.error.message
    if kind == "run_incomplete":
        assert run.incomplete_details.reason == "max_completion_tokens"
        (message,) = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
        assert message.status == "incomplete" and message.content[0].text.value
        assert response.incomplete_details.reason == "max_output_tokens"
        assert response.output[-1].status == "incomplete" and response.output_text
    # Faults are used up: the next run completes.
    again = _run(client, assistant_id)
    assert finished_run(client, again.thread_id, again.id).status == "completed"


def test_run_never_finishes_until_cancelled(
    emu, client: OpenAI, docs: Docs, assistant_id: str
) -> None:
    add_faults(emu.url, {"kind": "run_never_finishes", "times": 2})
    run = _run(client, assistant_id)
    response = _respond(client, docs)
    # Runs started after them, without a fault, finish: the faulty ones had the time to.
    control = _run(client, assistant_id)
    assert finished_run(client, control.thread_id, control.id).status == "completed"
    assert finished_response(client, _respond(client, docs).id).status == "completed"
    assert (
        client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status == "in_progress"
    )
    assert client.responses.retrieve(response.id).status == "in_progress"
    client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
    assert finished_run(client, run.thread_id, run.id).status == "cancelled"
    assert client.responses.cancel(response.id).status == "cancelled"


def test_stream_disconnect_assistants_run_still_completes(
    emu, client: OpenAI, assistant_id: str
) -> None:
    add_faults(emu.url, {"kind": "stream_disconnect", "after_events": 4})
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "How do I install docschat?"}]
    )
    seen = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for event in client.beta.threads.runs.create(
            thread.id, assistant_id=assistant_id, stream=True
        ):
            seen.append(event)
    assert len(seen) == 4
    run = finished_run(client, thread.id, seen[0].data.id)
    assert run.status == "completed"


def test_stream_disconnect_responses_resume(run_emulator) -> None:
    emu = run_emulator(latency_ms=50, tokens_per_second=500)
    client = sdk(emu)
    docs = upload_docs(client)
    add_faults(emu.url, {"kind": "stream_disconnect"})
    seen = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for event in _respond(client, docs, stream=True):
            seen.append(event)
    assert [e.sequence_number for e in seen] == [0, 1, 2]
    rest = list(client.responses.retrieve(seen[0].response.id, stream=True, starting_after=2))
    assert rest[0].sequence_number == 3 and rest[-1].type == "response.completed"


def test_fail_rate_is_seeded(run_emulator) -> None:
    outcomes = []
    for _ in range(2):
        emu = run_emulator(fail_rate=0.5, seed=7, latency_ms=0)
        client = sdk(emu)
        docs = upload_docs(client)
        outcomes.append(
            [finished_response(client, _respond(client, docs).id).status for _ in range(12)]
        )
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {"completed", "failed"}


def test_faults_can_be_listed_and_cleared(emu, client: OpenAI) -> None:
    add_faults(emu.url, {"kind": "http_500", "times": 3})
    assert httpx.get(f"{emu.url}/_emulator/faults").json()["faults"][0]["times"] == 3
    httpx.delete(f"{emu.url}/_emulator/faults")
    client.files.list()
    bad = httpx.post(f"{emu.url}/_emulator/faults", json={"faults": [{"kind": "meteor"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "faults[0].kind"
