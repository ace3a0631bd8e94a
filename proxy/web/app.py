"""The Flask app: settings, services, blueprints, and the one table of error answers."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from proxy.answers.errors import Refused
from proxy.config import Settings
from proxy.metrics import Metrics
from proxy.services import build
from proxy.upstream.errors import UpstreamError
from proxy.web import mcp, security
from proxy.web.admin import admin
from proxy.web.api import api
from proxy.web.console import console
from proxy.web.errors import ApiError
from proxy.web.pages import web
from proxy.web.ws import SERVER_OPTIONS, Connections, events_bp, sock

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
# Database errors that mean "cannot reach it now" (down, restarting, too many clients, a lost
# connection); other DBAPI errors (a bad statement, a missing table) are our bugs.
STORAGE_DOWN = (OperationalError, InterfaceError)


def create_app(settings: Settings | None = None, *, with_worker: bool = False) -> Flask:
    """Build the app; `with_worker` also runs the answer poller in this process."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    services = build(settings, with_worker=with_worker)
    app.extensions["docschat"] = services
    app.extensions["docschat_ws"] = Connections()
    _count_requests(app, services.metrics)  # first: its clock starts before any other check
    security.install(app, settings)
    app.register_blueprint(api)
    app.register_blueprint(admin)
    app.register_blueprint(console)
    app.register_blueprint(web)
    app.register_blueprint(events_bp)
    mcp.install(app)
    app.config["SOCK_SERVER_OPTIONS"] = SERVER_OPTIONS
    sock.init_app(app)
    _errors(app)
    return app


def _count_requests(app: Flask, metrics: Metrics) -> None:
    """Count and time every HTTP request by its route (the URL rule: a few label values, not
    one per session id), method and status."""

    @app.before_request
    def _began() -> None:
        g.began = time.perf_counter()

    @app.after_request
    def _counted(response: Response) -> Response:
        rule = request.url_rule
        seconds = time.perf_counter() - g.get("began", time.perf_counter())
        route = rule.rule if rule is not None else "(none)"
        metrics.http_request(route, request.method, response.status_code, seconds)
        return response


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    """The one error answer: {"error": {"code", "message", "request_id"}}."""
    body = {"error": {"code": code, "message": message, "request_id": security.request_id()}}
    response = jsonify(body)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _errors(app: Flask) -> None:
    """Every error leaves in the one shape, never with a stack trace: 503 when a dependency is
    down (try again soon), 500 for our own bugs."""

    @app.errorhandler(Refused)
    def _refused(exc: Refused) -> Any:
        return _api_error(ApiError.of(exc))

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        if exc.status in (429, 503):
            app.extensions["docschat"].metrics.refused(exc.code)
        return _error(exc.status, exc.code, exc.message, exc.retry_after)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        response = _error(exc.code or 500, code, exc.description or exc.name)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(DBAPIError)
    def _storage(exc: DBAPIError) -> Any:
        if not (isinstance(exc, STORAGE_DOWN) or exc.connection_invalidated):
            return _unexpected(exc)  # a bad statement or schema: ours to fix, not to retry
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return _storage_unavailable()

    # A full pool (every connection busy for DOCSCHAT_DB_POOL_TIMEOUT) is the database being
    # out of reach for now, as much as a refused connection is.
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(DisconnectionError)
    def _no_connection(exc: Exception) -> Any:
        log.warning("database unavailable: %s", type(exc).__name__)
        return _storage_unavailable()

    @app.errorhandler(UpstreamError)
    def _upstream(exc: UpstreamError) -> Any:
        if not exc.retryable:
            return _unexpected(exc)
        log.warning("upstream unavailable: %s", exc.detail)
        message = "The assistant cannot be reached right now. Please try again shortly."
        return _error(503, "upstream_unavailable", message, retry_after=5)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        log.error("unexpected error in %s %s", request.method, rule, exc_info=exc)
        message = "Something went wrong on our side. It has been logged; please retry later."
        return _error(500, "internal_error", message)


def _storage_unavailable() -> Response:
    """503: the database cannot be reached (down, restarting, out of connections)."""
    message = "Your question could not be saved right now. Please try again shortly."
    return _error(503, "storage_unavailable", message, retry_after=5)
