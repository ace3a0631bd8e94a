"""The MCP server's tools, and the SDK's ASGI app run as a WSGI app (proxy/web/mcp.py mounts it).

The official `mcp` SDK serves the protocol as an ASGI app; a2wsgi runs it on an event loop
thread of its own. The server is stateless and answers JSON, so every request stands alone: any
web process (or gunicorn worker) can serve any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from a2wsgi import ASGIMiddleware
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations

from proxy.answers.errors import Refused
from proxy.documents.llms import stored_page
from proxy.services import Services
from proxy.upstream.errors import UpstreamError

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def _passed(ctx: Context, name: str) -> str:
    """A value the Flask route passed along with the request (proxy.web.mcp.PASSED)."""
    req = ctx.request_context.request
    return (req.headers.get(f"x-docschat-{name}") if req is not None else None) or ""


def _client_ip(ctx: Context) -> str:
    return _passed(ctx, "client-ip") or "unknown"


def _refusal(exc: Refused | UpstreamError) -> ToolError:
    """A domain refusal or an upstream failure as the tool error a model reads."""
    if isinstance(exc, Refused):
        return ToolError(exc.message)
    return ToolError("The documentation search is unavailable right now; try again shortly.")


def build_server(services: Services) -> MCPServer:
    """The MCP server and its three tools, over this process's services."""
    server = MCPServer(
        name="docschat",
        instructions="Search and read this product's documentation, or ask its docs assistant.",
    )

    @server.tool(annotations=READ_ONLY)
    def search_docs(query: str, ctx: Context, limit: int = 5) -> list[dict[str, str]]:
        """The documentation pages that best match `query` (1 to 10 of them), each with its
        title, URL and a snippet; read one whole with get_page."""
        try:
            found = services.search.find(query, limit, _client_ip(ctx))
        except (Refused, UpstreamError) as exc:
            raise _refusal(exc) from None
        return [r.as_dict() for r in found]

    @server.tool(annotations=READ_ONLY)
    def get_page(url: str, ctx: Context) -> str:
        """One documentation page as Markdown, by its URL (an #anchor is ignored)."""
        try:
            services.limits.check_search(_client_ip(ctx))
        except Refused as exc:
            raise _refusal(exc) from None
        page = stored_page(services.db, url)
        if page is None:
            raise ToolError("No documentation page has that URL; search_docs lists them.")
        return f"# {page.title}\n\nSource: {page.url}\n\n{page.text.strip()}\n"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    def ask_docs(question: str, ctx: Context) -> dict[str, Any]:
        """Ask the documentation assistant: an answer written from the docs, with its sources.
        Slower than search_docs, and limited per client like the site's chat."""
        try:
            return _ask(services, question, _client_ip(ctx), _passed(ctx, "request-id"))
        except (Refused, UpstreamError) as exc:
            raise _refusal(exc) from None

    return server


def _ask(services: Services, question: str, ip: str, request_id: str) -> dict[str, Any]:
    """Ask in a conversation of its own and wait for the answer's end."""
    services.limits.check_session(ip)
    sid = services.chat.create_session(ip)
    sub = services.hub.subscribe(sid)  # before asking: the answer may be quick
    try:
        asked = services.chat.ask(sid, question, ip, request_id)
        deadline = time.monotonic() + services.settings.answer_deadline + 10
        answer = _finished_answer(services, sid, asked["id"])
        while answer is None and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                sub.queue.get(timeout=1.0)
            answer = _finished_answer(services, sid, asked["id"])
    finally:
        services.hub.unsubscribe(sub)
    if answer is None:
        raise ToolError("The answer took too long; try again, or use search_docs.")
    if answer["status"] == "error":
        raise ToolError(answer["text"] or "The assistant could not answer; try again.")
    return {"answer": answer["text"], "sources": answer["sources"]}


def _finished_answer(services: Services, sid: str, question_id: int) -> dict[str, Any] | None:
    for message in services.chat.messages(sid, question_id):
        if message["role"] == "assistant" and message["status"] in ("done", "error"):
            return message
    return None


class McpBridge:
    """The MCP app on an event loop thread of its own, as a WSGI app for the Flask route."""

    def __init__(self, server: MCPServer) -> None:
        # Origins are checked by our own before_request, as for /api/; the SDK's
        # DNS-rebinding check would refuse every host name but loopback.
        asgi = server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.manager = server.session_manager
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mcp", daemon=True)
        self._thread.start()
        self._stop = asyncio.Event()
        ready = threading.Event()
        self._running = asyncio.run_coroutine_threadsafe(self._serve(ready), self.loop)
        ready.wait(10)
        self.wsgi = ASGIMiddleware(asgi, loop=self.loop)

    async def _serve(self, ready: threading.Event) -> None:
        async with self._session_manager():
            ready.set()
            await self._stop.wait()

    @contextlib.asynccontextmanager
    async def _session_manager(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    def close(self) -> None:
        """Stop the session manager and the loop."""
        self.loop.call_soon_threadsafe(self._stop.set)
        with contextlib.suppress(Exception):
            self._running.result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
