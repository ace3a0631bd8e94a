"""The MCP server at /mcp (Streamable HTTP): the docs for editors and coding agents.

The route applies the checks every route gets (origin, request id) and the optional token, then
hands the request to the official SDK (proxy/web/mcp_server.py), built on the first call: the
SDK takes as long to import as the rest of the service, and most processes never serve MCP.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from proxy.services import Services
from proxy.web.errors import ApiError
from proxy.web.security import bearer_token, token_matches

# What our checks learnt of the request (the client's address with trusted proxies applied, for
# the tools' rate limits; the request id, for the log lines of an answer), passed to the tools
# as headers; whatever a client sends under these names is dropped first.
PASSED = {"HTTP_X_DOCSCHAT_CLIENT_IP": "client_ip", "HTTP_X_DOCSCHAT_REQUEST_ID": "request_id"}
mcp_bp = Blueprint("mcp", __name__)
_building = threading.Lock()


def _bridge(app: Flask, services: Services) -> Any:
    """The SDK's app for this Flask app, built once on first use."""
    with _building:
        bridge = app.extensions.get("docschat_mcp")
        if bridge is None:
            from proxy.web.mcp_server import McpBridge, build_server  # slow: see the docstring

            bridge = app.extensions["docschat_mcp"] = McpBridge(build_server(services))
        return bridge


@mcp_bp.route("/mcp", methods=["GET", "POST", "DELETE"])
def mcp_endpoint() -> Any:
    """Hand an MCP request to the SDK, after the token check."""
    services: Services = current_app.extensions["docschat"]
    secret = services.settings.mcp_token
    if secret:
        # Wrong guesses count with the operator token's: one budget of guesses per client.
        services.limits.admin_locked(g.client_ip)
        if not token_matches(bearer_token(), secret):
            if request.headers.get("Authorization"):
                services.limits.admin_failed(g.client_ip)
            raise ApiError(401, "unauthorized", "This MCP server needs its Bearer token.")
    environ = {k: v for k, v in request.environ.items() if k not in PASSED}
    environ.update({key: g.get(name, "") for key, name in PASSED.items()})
    bridge = _bridge(current_app._get_current_object(), services)
    return Response.from_app(bridge.wsgi, environ)


@mcp_bp.after_request
def _challenge(response: Response) -> Response:
    """Tell a client without the token which scheme to use (RFC 6750)."""
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="docschat-mcp"'
    return response


def install(app: Flask) -> None:
    """Serve /mcp from this app."""
    app.register_blueprint(mcp_bp)
