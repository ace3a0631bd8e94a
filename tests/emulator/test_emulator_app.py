"""The app around the endpoints: API selection, auth, validation, stats, timings, load."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from emulator_helpers import Docs, asked_and_finished, sdk, upload_docs
from openai import NotFoundError, OpenAI

from emulator.options import EmulatorOptions
from tests.support import emulator_stats

AUTH = {"Authorization": "Bearer sk-test"}


def test_responses_only_hides_the_assistants_api(run_emulator) -> None:
    emu = run_emulator(api="responses")
    client = sdk(emu)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(NotFoundError):
            client.beta.assistants.list(limit=1)
        with pytest.raises(NotFoundError):
            client.beta.threads.create()
    r = httpx.post(f"{emu.base_url}/threads/runs", json={}, headers=AUTH)
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert client.conversations.create().id.startswith("conv_")


def test_assistants_only_hides_the_responses_api(run_emulator) -> None:
    emu = run_emulator(api="assistants")
    client = sdk(emu)
    with pytest.raises(NotFoundError):
        client.conversations.create()
    with pytest.raises(NotFoundError):
        client.responses.retrieve("resp_1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert client.beta.assistants.list().data == []


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        EmulatorOptions(api="gpt")


def test_an_api_key_is_required(emu) -> None:
    r = httpx.get(f"{emu.base_url}/files")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{emu.base_url}/files", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "param", "code"),
    [
        ("/assistants", {"model": "m", "colour": "red"}, "colour", "unknown_parameter"),
        ("/assistants", {"name": "x"}, "model", "missing_required_parameter"),
        ("/assistants", {"model": 4}, "model", "invalid_type"),
        ("/assistants", {"model": "m", "tools": [{"type": "x"}]}, "tools[0].type", "invalid_value"),
        ("/threads", {"messages": [{"role": "user"}]}, "messages[0].content", None),
        ("/threads/thread_x/runs", {"assistant_id": "a", "stream": "yes"}, "stream", None),
        ("/threads/thread_x/messages", {"role": "bot", "content": "hi"}, "role", "invalid_value"),
        ("/threads/runs", {"assistant_id": "a", "thread": []}, "thread", "invalid_type"),
        ("/responses", {"model": "m", "input": "hi", "include": ["x"]}, "include[0]", None),
        ("/responses", {"model": "m", "input": "hi", "extra": 1}, "extra", "unknown_parameter"),
        ("/responses", {"input": "hi"}, "model", "missing_required_parameter"),
        (
            "/responses",
            {"model": "m", "input": "hi", "tools": [{"type": "file_search"}]},
            "tools[0].vector_store_ids",
            "missing_required_parameter",
        ),
        ("/responses", {"model": "m", "input": "hi", "metadata": {"k": 1}}, "metadata.k", None),
        ("/conversations", {"items": {}}, "items", "invalid_type"),
        ("/vector_stores", {"file_ids": "f"}, "file_ids", "invalid_type"),
        ("/vector_stores/vs_x/files", {"file_id": "f", "attributes": []}, "attributes", None),
        ("/vector_stores/vs_x/file_batches", {"files": [{}]}, "files[0].file_id", None),
    ],
)
def test_bad_requests_are_400_before_any_lookup(emu, path, body, param, code) -> None:
    r = httpx.post(f"{emu.base_url}{path}", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    if code:
        assert error["code"] == code


def test_malformed_input_never_gives_html_or_500(emu) -> None:
    cases = [
        httpx.post(f"{emu.base_url}/assistants", content=b"{nope", headers=AUTH),
        httpx.post(f"{emu.base_url}/assistants", json=[1, 2], headers=AUTH),
        httpx.get(f"{emu.base_url}/nothing/here", headers=AUTH),
        httpx.put(f"{emu.base_url}/files", headers=AUTH),
        httpx.get(f"{emu.base_url}/threads/t/messages?limit=abc", headers=AUTH),
        httpx.get(f"{emu.base_url}/responses/r?stream=true&starting_after=x", headers=AUTH),
        httpx.post(f"{emu.base_url}/files", data={"purpose": "assistants"}, headers=AUTH),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["message"]


def test_files_and_vector_store_files(client: OpenAI, docs: Docs) -> None:
    info = client.files.retrieve(docs.install_id)
    assert info.filename == "install.md" and info.bytes > 0 and info.purpose == "assistants"
    first = client.vector_stores.files.list(docs.vector_store_id, limit=1)
    assert len(first.data) == 1 and first.has_more
    second = client.vector_stores.files.list(docs.vector_store_id, limit=1, after=first.data[0].id)
    assert {first.data[0].id, second.data[0].id} == {docs.install_id, docs.config_id}
    assert not second.has_more
    attrs = {f.id: f.attributes for f in client.vector_stores.files.list(docs.vector_store_id)}
    assert attrs[docs.config_id] == {"url": "http://docs.test/config"}
    batch = client.vector_stores.file_batches.create(
        docs.vector_store_id, file_ids=[docs.install_id], attributes={"url": "http://x/i"}
    )
    done = client.vector_stores.file_batches.retrieve(
        batch.id, vector_store_id=batch.vector_store_id
    )
    assert done.status == "completed" and done.file_counts.completed == 1
    assert client.vector_stores.retrieve(docs.vector_store_id).file_counts.total == 2
    client.vector_stores.files.delete(docs.config_id, vector_store_id=docs.vector_store_id)
    assert [f.id for f in client.vector_stores.files.list(docs.vector_store_id)] == [
        docs.install_id
    ]
    assert client.files.delete(docs.install_id).deleted
    with pytest.raises(NotFoundError):
        client.files.retrieve(docs.install_id)
    assert client.vector_stores.files.list(docs.vector_store_id).data == []
    with pytest.raises(NotFoundError):
        client.vector_stores.files.create(docs.vector_store_id, file_id="file_missing")
    assert client.vector_stores.delete(docs.vector_store_id).deleted


def test_stats_count_requests_by_template(emu, client: OpenAI, assistant_id: str) -> None:
    httpx.post(f"{emu.url}/_emulator/stats/reset")
    asked_and_finished(client, assistant_id, "How do I install docschat?")
    counts = emulator_stats(emu.url)
    assert counts["POST /v1/threads/runs"] == 1
    polls = counts["GET /v1/threads/{thread_id}/runs/{run_id}"]
    assert polls >= 1
    body = httpx.get(f"{emu.url}/_emulator/stats").json()
    assert body["total"] == sum(body["requests"].values()) == 1 + polls
    httpx.post(f"{emu.url}/_emulator/stats/reset")
    assert emulator_stats(emu.url) == {}


def test_timings_record_each_run(emu, client: OpenAI, assistant_id: str) -> None:
    run = asked_and_finished(client, assistant_id, "How do I install docschat?")
    timing = httpx.get(f"{emu.url}/_emulator/timings").json()[run.id]
    assert timing["created"] < timing["first_token"] <= timing["completed"]
    assert timing["first_token"] - timing["created"] == pytest.approx(0.1, abs=0.01)


def test_hundreds_of_concurrent_streams(run_emulator) -> None:
    emu = run_emulator(latency_ms=300, tokens_per_second=100)
    client = sdk(emu)
    docs = upload_docs(client)

    def one(i: int) -> str:
        stream = client.responses.create(
            model="m",
            input="How do I install docschat?",
            tools=[{"type": "file_search", "vector_store_ids": [docs.vector_store_id]}],
            stream=True,
        )
        return [e for e in stream][-1].type

    with ThreadPoolExecutor(200) as pool:
        ends = list(pool.map(one, range(200)))
    assert ends == ["response.completed"] * 200
    assert emulator_stats(emu.url)["POST /v1/responses"] == 200


def test_scripted_answers_come_back_verbatim(emu, client: OpenAI, assistant_id: str) -> None:
    markdown = "## Steps\n\n```sh\npip install docschat\n```\n\n- one\n- two"
    r = httpx.post(
        f"{emu.url}/_emulator/answers",
        json={"answers": [{"match": "steps please", "text": markdown}]},
    )
    assert r.status_code == 200
    bad = httpx.post(f"{emu.url}/_emulator/answers", json={"answers": [{"match": 1}]})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    run = asked_and_finished(client, assistant_id, "The install steps please")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        [message] = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert message.content[0].text.value == markdown
    assert httpx.delete(f"{emu.url}/_emulator/answers").json() == {"answers": 0}
