"""The emulator's vector store search: OpenAI's shape, the emulator's own ranking."""

from __future__ import annotations

import httpx
import pytest
from emulator_helpers import Docs
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types import VectorStoreSearchResponse
from pydantic import TypeAdapter

from emulator.server import RunningEmulator


def test_search_ranks_the_page_that_holds_the_words_first(client: OpenAI, docs: Docs) -> None:
    page = client.vector_stores.search(
        docs.vector_store_id, query="which database", max_num_results=5
    )
    assert page.data, "the configuration page holds both words"
    best = page.data[0]
    assert best.file_id == docs.config_id
    assert best.attributes == {"url": "http://docs.test/config"}
    assert "DATABASE_URL" in best.content[0].text and best.content[0].type == "text"
    assert [r.score for r in page.data] == sorted((r.score for r in page.data), reverse=True)
    for result in page.data:
        TypeAdapter(VectorStoreSearchResponse).validate_python(result.model_dump(mode="json"))


def test_search_pages_follow_the_description(emu: RunningEmulator, docs: Docs) -> None:
    r = httpx.post(
        f"{emu.base_url}/vector_stores/{docs.vector_store_id}/search",
        json={"query": ["install", "upgrade"], "max_num_results": 1},
        headers={"Authorization": "Bearer sk-test"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "vector_store.search_results.page"
    assert body["search_query"] == ["install", "upgrade"]
    assert len(body["data"]) == 1 and body["data"][0]["file_id"] == docs.install_id
    assert (body["has_more"], body["next_page"]) == (False, None)


def test_search_refuses_what_the_description_refuses(client: OpenAI, docs: Docs) -> None:
    with pytest.raises(BadRequestError):
        client.vector_stores.search(docs.vector_store_id, query="x", max_num_results=51)
    with pytest.raises(BadRequestError):
        client.vector_stores.search(docs.vector_store_id, query=[])
    with pytest.raises(NotFoundError):
        client.vector_stores.search("vs_missing", query="install")
    nothing = client.vector_stores.search(docs.vector_store_id, query="zebra giraffe")
    assert nothing.data == []
