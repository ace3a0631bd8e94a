"""Who may call the service: origin checks, CORS for allowed sites, security headers, client IPs."""

from __future__ import annotations

import hmac
import uuid
from urllib.parse import urlsplit

from flask import Flask, Response, g, request

from proxy.config import Settings
from proxy.errors import ApiError

API_CSP = "default-src 'none'; frame-ancestors 'none'"


def own_origin() -> str:
    """The origin this request was addressed to."""
    return f"{request.scheme}://{request.host}"


def origin_allowed(settings: Settings, origin: str) -> bool:
    """An Origin header is allowed if it is ours or one of the configured sites."""
    origin = origin.rstrip("/")
    return origin == own_origin() or origin in settings.origins


def chat_page_csp(settings: Settings) -> str:
    """The strict CSP of the chat page, framable only by the allowed sites."""
    ancestors = " ".join(["'self'", *settings.origins])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws: wss:; frame-ancestors {ancestors}; base-uri 'none'; "
        "form-action 'none'"
    )


def admin_allowed(settings: Settings) -> bool:
    """Whether the request carries the admin token (operator endpoints are off without one)."""
    if not settings.admin_token:
        return False
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), settings.admin_token.encode())


def install(app: Flask, settings: Settings) -> None:
    """Register the request checks and response headers on the app."""

    @app.before_request
    def _identify() -> None:
        g.request_id = _request_id()
        g.client_ip = request.remote_addr or "unknown"

    @app.before_request
    def _check_origin() -> Response | None:
        origin = request.headers.get("Origin")
        if not request.path.startswith("/api/") or origin is None:
            return None
        if not origin_allowed(settings, origin):
            raise ApiError(403, "origin_not_allowed", "This site may not use this assistant.")
        if request.method == "OPTIONS":
            return Response(status=204)
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin")
        headers.setdefault("Content-Security-Policy", API_CSP)
        headers["X-Request-Id"] = g.get("request_id", "")
        origin = request.headers.get("Origin", "").rstrip("/")
        if request.path.startswith("/api/") and origin and origin in settings.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
            headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            headers["Access-Control-Allow-Headers"] = "Content-Type"
            headers["Access-Control-Max-Age"] = "600"
        return response


def _request_id() -> str:
    """The caller's X-Request-Id when it looks sane, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 64 and all(c.isalnum() or c in "-_." for c in given):
        return given
    return uuid.uuid4().hex


def same_site(url: str, origin: str) -> bool:
    """Whether a URL belongs to an origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == origin
