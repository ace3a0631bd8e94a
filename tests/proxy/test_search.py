"""GET /api/search: the docs' best pages for a few words, as the widget's search box asks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from proxy.documents.search import snippet
from tests.support import Stack


@pytest.fixture
def stack(start_stack: Callable[..., Stack]) -> Stack:
    """A proxy over the two sample pages, with a small search rate to reach."""
    return start_stack(DOCSCHAT_RATE_SEARCH_MINUTE="12")


def test_the_page_that_holds_the_words_comes_first_with_a_snippet(stack: Stack) -> None:
    r = stack.http.get("/api/search", params={"q": "which database", "limit": 5})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0] == {
        "title": "Configuration",
        "url": "http://docs.test/config",
        "snippet": "The DATABASE_URL setting chooses the database. PostgreSQL is supported for "
        "many processes; SQLite is the default file.",
    }
    assert len({x["url"] for x in results}) == len(results)  # one result per page
    one = stack.http.get("/api/search", params={"q": "pip install"}).json()["results"]
    assert one[0]["url"] == "http://docs.test/install"
    assert stack.http.get("/api/search", params={"q": "zebra"}).json() == {"results": []}
    assert len(stack.http.get("/api/search", params={"q": "docschat", "limit": 1}).json()[
        "results"
    ]) == 1  # fmt: skip


def test_a_match_inside_a_section_links_to_that_section(stack: Stack) -> None:
    stack.upload_doc(
        "http://docs.test/tuning",
        "Tuning",
        "# Tuning\n\nHow to make answers faster.\n\n## Cache sizes {#cache-sizes}\n\n"
        "The mangosteen cache holds five hundred answers.",
    )
    results = stack.http.get("/api/search", params={"q": "mangosteen cache"}).json()["results"]
    assert results[0]["url"] == "http://docs.test/tuning#cache-sizes"
    assert (results[0]["title"], results[0]["section"]) == ("Tuning", "Cache sizes")
    assert results[0]["snippet"] == "The mangosteen cache holds five hundred answers."


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "empty_query"),
        ({"q": "   "}, "empty_query"),
        ({"q": "x" * 201}, "query_too_long"),
        ({"q": "database", "limit": "0"}, "invalid_limit"),
        ({"q": "database", "limit": "11"}, "invalid_limit"),
        ({"q": "database", "limit": "two"}, "invalid_limit"),
    ],
)
def test_bad_searches_get_a_clear_400(stack: Stack, params: dict[str, str], code: str) -> None:
    r = stack.http.get("/api/search", params=params)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"] and error["request_id"]


def test_hostile_queries_are_just_words(stack: Stack) -> None:
    for q in ["<script>alert(1)</script>", "' OR 1=1 --", "\u202edatabase", "数据库", "%00", "\\"]:
        r = stack.http.get("/api/search", params={"q": q})
        assert r.status_code == 200, (q, r.text)
        assert all(x["url"].startswith("http://docs.test/") for x in r.json()["results"])


def test_searching_too_fast_is_refused_with_retry_after(stack: Stack) -> None:
    statuses = [
        stack.http.get("/api/search", params={"q": "install"}).status_code for _ in range(14)
    ]
    assert statuses[:12] == [200] * 12 and statuses[12:] == [429, 429]
    r = stack.http.get("/api/search", params={"q": "install"})
    assert int(r.headers["Retry-After"]) >= 1 and r.json()["error"]["code"] == "rate_limited"


def test_snippets_start_at_the_sentence_of_the_match_and_drop_the_file_header() -> None:
    chunk = "Title: Guide\nURL: http://x/\n\n# Guide\n\nFirst part. " + "Filler words here. " * 20
    chunk += "The **workers** setting sets how many run."
    text = snippet(chunk, "workers")
    assert text.startswith("…") and "The workers setting sets how many run." in text
    assert snippet(chunk, "guide").startswith("First part. Filler words here.")
