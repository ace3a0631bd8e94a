"""The MCP server at /mcp, driven by the official MCP client over Streamable HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support import Stack


def _call(url: str, tool: str | None = None, args: dict[str, Any] | None = None, **kw: Any) -> Any:
    """List the tools, or call one, in a fresh client session."""

    async def go() -> Any:
        async with Client(url + "/mcp", **kw) as client:
            if tool is None:
                return await client.list_tools()
            return await client.call_tool(tool, args or {})

    return asyncio.run(go())


def test_tools_are_listed_and_each_answers_from_the_docs(start_stack: Callable[..., Stack]) -> None:
    stack = start_stack()
    tools = {t.name: t for t in _call(stack.url).tools}
    assert set(tools) == {"search_docs", "get_page", "ask_docs"}
    assert tools["search_docs"].annotations.read_only_hint is True
    assert "query" in tools["search_docs"].input_schema["properties"]

    found = _call(stack.url, "search_docs", {"query": "which database", "limit": 2})
    assert not found.is_error
    first = found.structured_content["result"][0]
    assert first["url"] == "http://docs.test/config" and "DATABASE_URL" in first["snippet"]

    page = _call(stack.url, "get_page", {"url": "http://docs.test/install#upgrading"})
    assert not page.is_error
    assert page.content[0].text.startswith("# Installing\n\nSource: http://docs.test/install")

    missing = _call(stack.url, "get_page", {"url": "http://docs.test/nope"})
    assert missing.is_error and "search_docs" in missing.content[0].text

    answer = _call(stack.url, "ask_docs", {"question": "Which setting chooses the database?"})
    assert not answer.is_error, answer.content
    result = answer.structured_content
    assert "DATABASE_URL" in result["answer"]
    assert {"title": "Configuration", "url": "http://docs.test/config"} in result["sources"]


def test_bad_input_and_too_many_calls_are_tool_errors_not_failures(
    start_stack: Callable[..., Stack],
) -> None:
    stack = start_stack(DOCSCHAT_RATE_SEARCH_MINUTE="3")
    too_many = _call(stack.url, "search_docs", {"query": "database", "limit": 50})
    assert too_many.is_error and "limit" in too_many.content[0].text
    empty = _call(stack.url, "search_docs", {"query": "   "})
    assert empty.is_error and "few words" in empty.content[0].text
    hostile = _call(stack.url, "get_page", {"url": "javascript:alert(1)"})
    assert hostile.is_error
    # Malformed searches are refused before they count; the page lookup counted as one call of
    # three, so two searches pass and the third does not.
    results = [_call(stack.url, "search_docs", {"query": "install"}) for _ in range(3)]
    assert [r.is_error for r in results] == [False, False, True]
    assert "Too many searches" in results[-1].content[0].text
    # The HTTP API's rate is the same budget: the reader's search box is refused too.
    assert stack.http.get("/api/search", params={"q": "install"}).status_code == 429


def test_a_token_closes_the_whole_server(start_stack: Callable[..., Stack]) -> None:
    stack = start_stack(DOCSCHAT_MCP_TOKEN="mcp-secret-token")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for auth in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(f"{stack.url}/mcp", json=body, headers=auth)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["error"]["code"] == "unauthorized"
    # Without the token the official client cannot even start a session.
    with pytest.raises(BaseExceptionGroup) as refused:
        _call(stack.url)
    assert "Server returned an error response" in repr(refused.value.exceptions)

    async def with_token() -> Any:
        http = httpx2.AsyncClient(headers={"Authorization": "Bearer mcp-secret-token"})
        async with Client(streamable_http_client(f"{stack.url}/mcp", http_client=http)) as c:
            return await c.call_tool("search_docs", {"query": "install"})

    found = asyncio.run(with_token())
    assert not found.is_error and found.structured_content["result"][0]["url"].endswith("install")

    # Guessing is limited like the operator token's: 30 wrong tokens a minute (one was sent
    # above), then 429 with Retry-After, even for the right token.
    statuses = [
        httpx.post(f"{stack.url}/mcp", json=body, headers={"Authorization": f"Bearer g{n}"})
        for n in range(35)
    ]
    assert [r.status_code for r in statuses[:29]] == [401] * 29
    assert statuses[-1].status_code == 429 and int(statuses[-1].headers["Retry-After"]) >= 1
    right = {"Authorization": "Bearer mcp-secret-token"}
    assert httpx.post(f"{stack.url}/mcp", json=body, headers=right).status_code == 429


def test_a_page_of_another_site_may_not_call_it(start_stack: Callable[..., Stack]) -> None:
    stack = start_stack()
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    r = httpx.post(f"{stack.url}/mcp", json=body, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
