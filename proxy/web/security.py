"""Who may call the service: origin checks, CORS for allowed sites, security headers, client IPs."""

from __future__ import annotations

import hmac
import logging
import uuid

from flask import Flask, Response, current_app, g, has_request_context, request
from werkzeug.exceptions import RequestEntityTooLarge

from proxy.config import Settings
from proxy.logs import REQUEST_ID
from proxy.web.errors import ApiError

log = logging.getLogger(__name__)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


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
    # Older browsers do not let 'self' cover WebSockets, so name our own ws/wss origin; never
    # `ws:`/`wss:` alone, which would let an injected script talk to any host.
    sockets = f" ws://{request.host} wss://{request.host}" if has_request_context() else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{sockets}; frame-ancestors {ancestors}; base-uri 'none'; "
        "form-action 'none'; object-src 'none'"
    )


# The operator console: our own files only, never framed, and no way for data to become markup
# (Trusted Types with no policy refuses every innerHTML-style assignment).
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; "
    "object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
)


def token_matches(given: str, secret: str) -> bool:
    """Compare a presented token with a secret in constant time (False when no secret is set)."""
    if not secret:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode())


def bearer_token() -> str:
    """The token of this request's `Authorization: Bearer ...` header ('' when absent)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def admin_allowed(settings: Settings) -> bool:
    """Whether the request carries the admin token (operator endpoints are off without one)."""
    return token_matches(bearer_token(), settings.admin_token)


def startup_warnings(settings: Settings) -> list[str]:
    """What an operator must hear at start-up about this configuration's exposure."""
    warnings = []
    if settings.public and not settings.origins:
        warnings.append(
            "DOCSCHAT_PUBLIC=1 but DOCSCHAT_ALLOWED_ORIGINS is empty: no docs site can embed this "
            "assistant. Set it to the origins of your documentation sites, e.g. "
            "https://docs.example.com"
        )
    if settings.admin_token and len(settings.admin_token) < 24:
        warnings.append(
            "DOCSCHAT_ADMIN_TOKEN is shorter than 24 characters; use a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
        )
    if settings.public and not (settings.daily_answer_cap or settings.daily_token_cap):
        warnings.append("DOCSCHAT_PUBLIC=1 with no daily answer or token cap: the bill is open.")
    return warnings


def install(app: Flask, settings: Settings) -> None:
    """Register the request checks and response headers on the app."""
    for warning in startup_warnings(settings):
        banner = "!" * 78
        log.warning("\n%s\n!! SECURITY: %s\n%s", banner, warning, banner)

    @app.before_request
    def _identify() -> None:
        request_id()
        g.client_ip = request.remote_addr or "unknown"

    @app.teardown_request
    def _forget_request_id(_exc: BaseException | None) -> None:
        REQUEST_ID.set(None)  # this thread's next log lines belong to no request

    @app.before_request
    def _check_origin() -> Response | None:
        origin = request.headers.get("Origin")
        guarded = request.path.startswith("/api/") or request.path == "/mcp"
        if not guarded or origin is None:
            return None
        if not origin_allowed(settings, origin):
            raise ApiError(403, "origin_not_allowed", "This site may not use this assistant.")
        if request.method == "OPTIONS":
            return Response(status=204)
        return None

    @app.before_request
    def _bound_chunked_body() -> None:
        # A chunked body has no Content-Length to refuse up front, and werkzeug cuts it at
        # MAX_CONTENT_LENGTH without a word; read it here (cached for the route) and say 413.
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        unsized = limit and chunked and request.content_length is None
        if unsized and len(request.get_data(cache=True)) >= limit:
            raise RequestEntityTooLarge()

    @app.before_request
    def _limit_sessions() -> None:
        # New sessions cost no upstream money but fill the database; bound them per client IP.
        if request.method == "POST" and request.path == "/api/sessions":
            services = current_app.extensions.get("docschat")
            if services is not None:
                services.limits.check_session(g.client_ip)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        api = request.path.startswith("/api/")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        # API answers are for our pages and allowed sites (via CORS); widget assets for anyone.
        headers.setdefault("Cross-Origin-Resource-Policy", "same-origin" if api else "cross-origin")
        headers.setdefault("Content-Security-Policy", API_CSP)
        if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
            headers.setdefault("X-Frame-Options", "DENY")
        headers["X-Request-Id"] = g.get("request_id", "")
        if api:
            headers.add("Vary", "Origin")
            origin = request.headers.get("Origin", "").rstrip("/")
            if origin and origin in settings.origins:
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
                headers["Access-Control-Allow-Headers"] = "Content-Type"
                headers["Access-Control-Max-Age"] = "600"
        return response


def request_id() -> str:
    """This request's id, chosen on first use; log lines written while it is served carry it."""
    if "request_id" not in g:
        g.request_id = _request_id()
        REQUEST_ID.set(g.request_id)
    return g.request_id


def _request_id() -> str:
    """The caller's X-Request-Id when it looks sane, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_.") for c in given):
        return given
    return uuid.uuid4().hex
