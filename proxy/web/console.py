"""The operator console's page and files under /admin/ (off, 404, while no token is set)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, redirect, send_from_directory

from proxy.web.errors import ApiError
from proxy.web.security import CONSOLE_CSP

# Package data (static/admin/ in the repository, linked here), as for the widget.
CONSOLE = Path(str(resources.files("proxy") / "web" / "console"))
FILES = frozenset({"index.html", "console.js", "console.css"})
console = Blueprint("console", __name__)


@console.before_request
def _on() -> None:
    """Nothing to see while the operator endpoints are off."""
    if not current_app.extensions["docschat"].settings.admin_token:
        raise ApiError(404, "not_found", "Not found.")


@console.after_request
def _headers(response: Response) -> Response:
    """Never framed, never cached, our own script only."""
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@console.get("/admin")
def bare() -> Any:
    """The console lives at /admin/."""
    return redirect("/admin/", code=308)


@console.get("/admin/")
def page() -> Any:
    """The sign-in and console page (one page; the token stays in the tab's sessionStorage)."""
    return send_from_directory(CONSOLE, "index.html", mimetype="text/html", max_age=0)


@console.get("/admin/<name>")
def asset(name: str) -> Any:
    """The console's script and style."""
    if name not in FILES:
        raise ApiError(404, "not_found", "Not found.")
    return send_from_directory(CONSOLE, name, max_age=0)
