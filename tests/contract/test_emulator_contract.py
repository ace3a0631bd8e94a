"""The emulator refuses the malformed requests that OpenAI's API description refuses."""

from __future__ import annotations

import httpx
import pytest

# (method, path, JSON body): each breaks the description (wrong type, missing field, bad enum...).
MALFORMED = [
    ("POST", "/threads/thread_1/runs", {"instructions": 5}),
    ("POST", "/threads/thread_1/runs", {"assistant_id": 12}),
    ("POST", "/threads/thread_1/runs", {"assistant_id": "asst_1", "additional_messages": "hi"}),
    (
        "POST",
        "/threads/thread_1/runs",
        {"assistant_id": "asst_1", "additional_messages": [{"role": "robot", "content": "x"}]},
    ),
    ("POST", "/threads/runs", {"thread": {"messages": [{"content": "no role"}]}}),
    ("POST", "/threads/thread_1/messages", {"role": "user"}),
    ("POST", "/threads/thread_1/messages", {"role": "wizard", "content": "hi"}),
    ("POST", "/assistants", {"instructions": "no model"}),
    ("POST", "/vector_stores/vs_1/file_batches", {"file_ids": "file_1"}),
    ("POST", "/vector_stores/vs_1/files", {}),
    ("POST", "/responses", {"model": "gpt-4.1-mini", "input": "hi", "background": "yes"}),
    ("POST", "/responses", {"model": "gpt-4.1-mini", "input": "hi", "tools": [{"type": "nope"}]}),
    ("POST", "/conversations", {"items": "not a list"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), MALFORMED, ids=[f"{m} {p}" for m, p, _ in MALFORMED]
)
def test_emulator_rejects_what_the_description_rejects(steady_url, emulator, method, path, body):
    headers = {"Authorization": "Bearer sk-contract", "OpenAI-Beta": "assistants=v2"}
    spec = httpx.request(method, f"{steady_url}{path}", json=body, headers=headers)
    assert spec.status_code == 400, f"the description accepts this request: {spec.text[:300]}"
    ours = httpx.request(method, f"{emulator.base_url}{path}", json=body, headers=headers)
    assert ours.status_code in (400, 404), ours.text
    if ours.status_code == 404:
        # The object does not exist in the emulator; the body must still be checked first.
        pytest.fail(f"emulator looked up ids before validating the body: {ours.text[:300]}")
    error = ours.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


def test_emulator_refuses_an_include_the_description_does_not_list(steady_url, emulator):
    # The description's parameter is named `include[]`; `repeat` makes steady read it so.
    headers = {"Authorization": "Bearer sk-contract", "X-Steady-Query-Array-Format": "repeat"}
    query = {"include[]": "step_details.everything"}
    spec = httpx.get(f"{steady_url}/threads/t/runs/r/steps", params=query, headers=headers)
    assert spec.status_code == 400
    ours = httpx.get(f"{emulator.base_url}/threads/t/runs/r/steps", params=query, headers=headers)
    assert ours.status_code == 400 and ours.json()["error"]["param"] == "include[]"
