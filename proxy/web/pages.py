"""Non-API routes: the widget's files, the demo page, health, readiness and metrics."""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from proxy.answers.jobs import overdue
from proxy.answers.render import ALLOWLIST
from proxy.documents import llms
from proxy.metrics import CONTENT_TYPE
from proxy.web.openapi import describe
from proxy.web.security import chat_page_csp

# Package data (static/widget/ in the repository, linked here); a Path, since every install
# docschat supports (wheel, editable, checkout) keeps it on the file system.
WIDGET = Path(str(resources.files("proxy") / "web" / "widget"))
# index.html's empty slot for the allow-list; the page as served carries it filled.
ALLOWLIST_SLOT = '<script id="allowlist" type="application/json">{}</script>'
web = Blueprint("web", __name__)


@web.get("/widget.js")
def embed() -> Any:
    """The loader a docs site includes with one script tag."""
    response = send_from_directory(WIDGET, "embed.js", mimetype="text/javascript", max_age=300)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@web.get("/widget/")
def chat_page() -> Any:
    """The chat page the loader opens in an iframe."""
    settings = current_app.extensions["docschat"].settings
    response = Response(_with_handoff(_chat_page(), settings.handoff_url), mimetype="text/html")
    response.cache_control.no_cache = True
    response.add_etag()
    response.headers["Content-Security-Policy"] = chat_page_csp(
        current_app.extensions["docschat"].settings
    )
    return response.make_conditional(request)


def _with_handoff(page: str, url: str) -> str:
    """The chat page telling chat.js where "Contact support" leads (nothing when unset)."""
    if not url:
        return page
    meta = f'<meta name="docschat-handoff" content="{html.escape(url, quote=True)}">'
    return page.replace("</head>", meta + "\n</head>", 1)


@functools.cache
def _chat_page() -> str:
    """index.html with the renderer's allow-list inlined: chat.js reads it without a request.

    A data block is not script, so the page's CSP (no inline script) still holds.
    """
    allowed = json.dumps(json.loads(ALLOWLIST.read_text(encoding="utf-8")), separators=(",", ":"))
    # No "<" at all inside the element, so nothing in the data can close it early.
    filled = ALLOWLIST_SLOT.replace("{}", allowed.replace("<", "\\u003c"))
    return (WIDGET / "index.html").read_text(encoding="utf-8").replace(ALLOWLIST_SLOT, filled)


@web.get("/widget/<path:name>")
def widget_file(name: str) -> Any:
    """The chat page's script and style."""
    return send_from_directory(WIDGET, name, max_age=300)


@web.get("/llms.txt")
def llms_index() -> Any:
    """The stored docs as an llms.txt index, for tools that look for one."""
    return _llms(llms.llms_txt)


@web.get("/llms-full.txt")
def llms_full() -> Any:
    """Every stored page's Markdown in one file."""
    return _llms(llms.llms_full_txt)


def _llms(render: Callable[[list[llms.Page], str, str], str]) -> Response:
    services = current_app.extensions["docschat"]
    pages = llms.stored_pages(services.db)
    title = llms.site_title(pages, services.settings.site_name)
    response = Response(render(pages, title, services.settings.site_summary))
    response.mimetype = "text/plain"  # Flask adds "; charset=utf-8"
    response.headers["Access-Control-Allow-Origin"] = "*"  # public docs, read by any tool
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


@web.get("/healthz")
def healthz() -> Any:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@web.get("/readyz")
def readyz() -> Any:
    """Readiness: the database answers and setup has been recorded. The upstream's reachability
    is reported but does not decide: in an upstream outage every replica would otherwise leave
    the load balancer at once, and readers could not even read their conversations."""
    services = current_app.extensions["docschat"]
    checks: dict[str, str] = {}
    try:
        with services.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except DBAPIError:
        checks["database"] = "unavailable"
    problem = services.upstreams.setup_problem() if checks["database"] == "ok" else None
    checks["setup"] = problem or ("ok" if checks["database"] == "ok" else "unknown")
    ready = checks["database"] == "ok" and problem is None
    checks["upstream"] = "ok" if ready and services.upstreams.reachable() else "unavailable"
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


@web.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics of every docschat process on this machine (or of this one alone)."""
    services = current_app.extensions["docschat"]
    extra = {
        "docschat_jobs_overdue": (
            "Unfinished answers that should have been looked at more than 5 seconds ago "
            "(from the database: every process of the deployment).",
            _overdue_jobs(services.db),
        )
    }
    return Response(services.metrics.render(extra), content_type=CONTENT_TYPE)


def _overdue_jobs(db: Any) -> float:
    """Unfinished answers that should have been looked at more than 5 seconds ago."""
    try:
        return float(overdue(db, 5.0))
    except Exception:
        return float("nan")


@web.get("/api/openapi.json")
def openapi() -> Any:
    """This service's OpenAPI description."""
    return jsonify(describe(current_app.extensions["docschat"].settings.max_question_chars))
