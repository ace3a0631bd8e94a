"""The Flask app: settings, services, blueprints, and the one table of error answers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from proxy.answers.errors import Refused
from proxy.config import Settings
from proxy.services import build
from proxy.web import security
from proxy.web.admin import admin
from proxy.web.api import api
from proxy.web.errors import ApiError
from proxy.web.pages import web
from proxy.web.ws import Connections, events_bp, sock

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


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
    security.install(app, settings)
    app.register_blueprint(api)
    app.register_blueprint(admin)
    app.register_blueprint(web)
    app.register_blueprint(events_bp)
    sock.init_app(app)
    _errors(app)
    return app


def _errors(app: Flask) -> None:
    """Every error leaves as {"error": {"code", "message"}}; never a stack trace."""

    @app.errorhandler(Refused)
    def _refused(exc: Refused) -> Any:
        return _api_error(ApiError.of(exc))

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        if exc.status in (429, 503):
            app.extensions["docschat"].metrics.refused(exc.code)
        response = jsonify(exc.body())
        response.status_code = exc.status
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        response = jsonify({"error": {"code": code, "message": exc.description or exc.name}})
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    # A full pool (every connection busy for DOCSCHAT_DB_POOL_TIMEOUT) is the database being
    # out of reach for now, as much as a refused connection is.
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(DBAPIError)
    def _storage(exc: DBAPIError | PoolTimeout) -> Any:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        log.warning("database unavailable: %s", type(cause).__name__)
        body = {
            "error": {
                "code": "storage_unavailable",
                "message": "Your question could not be saved right now. Please try again shortly.",
            }
        }
        response = jsonify(body)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unexpected error")
        body = {"error": {"code": "unavailable", "message": "Something went wrong. Please retry."}}
        return jsonify(body), 503
