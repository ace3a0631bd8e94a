"""Every upstream call docschat makes, in both modes, meets OpenAI's published API description."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openai import OpenAI

from proxy.config import Settings
from proxy.setup import run_setup
from proxy.storage.db import Database
from proxy.upstream.assistants import AssistantsUpstream
from proxy.upstream.base import Turn
from proxy.upstream.errors import StreamBroken, UpstreamError
from proxy.upstream.responses import ResponsesUpstream
from proxy.upstream.search import DocsSearch

HISTORY = [Turn("user", "What is docschat?"), Turn("assistant", "A docs assistant.")]
META = {"docschat_job": "7"}


def _client(url: str) -> OpenAI:
    return OpenAI(api_key="sk-contract", base_url=url, max_retries=0)


def accepted(call: Callable[[], Any]) -> Any:
    """Run an adapter call; a request the description rejects fails with the validator's reason."""
    try:
        result = call()
        if hasattr(result, "__next__"):
            result = list(result)
        return result
    except StreamBroken:
        return None  # the mock answers JSON, not SSE: the request itself was accepted
    except UpstreamError as exc:
        cause = exc.__cause__
        body = getattr(getattr(cause, "response", None), "text", "")
        if exc.status == 400 or exc.status == 422:
            pytest.fail(f"the API description rejected the request: {body[:2000]}")
        raise


def test_the_validator_rejects_a_malformed_request(steady_url):
    r = httpx.post(f"{steady_url}/threads/thread_1/runs", json={"instructions": 5})
    assert r.status_code == 400


def test_assistants_mode_requests_meet_the_description(steady_url):
    up = AssistantsUpstream(_client(steady_url), _client(steady_url), "asst_contract")
    assert accepted(lambda: up.open_thread(HISTORY))
    begun = accepted(lambda: up.begin("thread_1", "How do I install it?", META))
    assert begun.run_id
    accepted(lambda: up.stream("thread_1", "And then?", META))
    accepted(lambda: up.find_run("thread_1", META))
    accepted(lambda: up.poll("thread_1", "run_1"))
    accepted(lambda: up.cancel("thread_1", "run_1"))
    accepted(lambda: up.forget("thread_1"))
    accepted(up.probe)


def test_assistants_completed_run_lists_its_messages_within_the_description(steady_url):
    up = AssistantsUpstream(_client(steady_url), _client(steady_url), "asst_contract")
    client = up.client
    # poll() lists messages only for a completed run; call that listing exactly as poll does.
    accepted(
        lambda: client.beta.threads.messages.list("thread_1", run_id="run_1", order="asc", limit=20)
    )


# The description names the run steps' query parameter `include[]` itself, which the SDK sends
# as `include[]=...`: steady reads that name literally only with the `repeat` array format.
LITERAL_BRACKETS = {"X-Steady-Query-Array-Format": "repeat"}


def test_assistants_run_steps_are_listed_with_their_results_content_within_the_description(
    steady_url,
):
    literal = OpenAI(
        api_key="sk-contract", base_url=steady_url, max_retries=0, default_headers=LITERAL_BRACKETS
    )
    up = AssistantsUpstream(literal, literal, "asst_contract")
    # poll() and a stream's end list the run's steps asking for the file search results' text.
    assert isinstance(accepted(lambda: up._retrieved("thread_1", "run_1")), dict)
    # Runs are started with the same include[], so a streamed search step carries the text.
    assert accepted(lambda: up.begin("thread_1", "How do I install it?", META)).run_id
    accepted(lambda: up.stream("thread_1", "And then?", META))
    bad = httpx.get(
        f"{steady_url}/threads/thread_1/runs/run_1/steps",
        params={"include[]": "step_details.everything"},
        headers={"Authorization": "Bearer sk-contract", **LITERAL_BRACKETS},
    )
    assert bad.status_code == 400, "the validator did not read include[]"


def test_responses_mode_requests_meet_the_description(steady_url):
    up = ResponsesUpstream(
        _client(steady_url), _client(steady_url), "gpt-4.1-mini", "Answer from the docs.", "vs_1"
    )
    assert accepted(lambda: up.open_thread(HISTORY))
    begun = accepted(lambda: up.begin("conv_1", "How do I install it?", META))
    assert begun.run_id
    accepted(lambda: up.stream("conv_1", "And then?", META))
    accepted(lambda: up.resume("conv_1", "resp_1", 12))
    accepted(lambda: up.poll("conv_1", "resp_1"))
    accepted(lambda: up.cancel("conv_1", "resp_1"))
    accepted(lambda: up.forget("conv_1"))
    accepted(up.probe)


@pytest.mark.parametrize("api", ["assistants", "responses"])
def test_setup_requests_meet_the_description(steady_url, tmp_path, api):
    settings = Settings.from_env(
        {}, openai_base_url=steady_url, api=api, database_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    db = Database(settings.database_url)
    db.upgrade()
    done = accepted(lambda: run_setup(settings, db))
    assert done.vector_store_id
    assert (done.assistant_id != "") == (api == "assistants")
    # A second run verifies what exists (retrieve, maybe update) instead of creating again.
    accepted(lambda: run_setup(settings, db))


def test_document_sync_requests_meet_the_description(steady_url):
    from proxy.upstream.knowledge import Knowledge, PageFile

    knowledge = Knowledge(
        _client(steady_url), "vs_1", attempts=1, poll_interval=0.05, batch_timeout=1.0
    )
    pages = [
        PageFile("https://docs.test/install", "Installing", "# Installing\n\npip install docschat"),
        PageFile("https://docs.test/config", "Configuration", "# Configuration\n\nDATABASE_URL"),
    ]
    outcome = knowledge.upload(pages)
    # The mock's batches never finish, so pages may fail by timeout; never by a rejected request.
    rejected = {url: why for url, why in outcome.failed.items() if "400" in why or "422" in why}
    assert not rejected, f"the API description rejected an upload request: {rejected}"
    failures = knowledge.remove(["file_1", "file_2"])
    assert not {f: w for f, w in failures.items() if "400" in w or "422" in w}


def test_the_docs_search_request_meets_the_description(steady_url):
    found = accepted(lambda: DocsSearch(_client(steady_url), "vs_1").search("install it", 15))
    assert isinstance(found, list)
