"""Who may talk to the service: allowed origins, CORS, framing, and the production warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import websocket

from proxy.config import Settings
from proxy.web.app import create_app
from tests.security.conftest import EVIL, ORIGIN, ws_close_code, ws_open
from tests.support import Stack


def test_api_calls_from_other_sites_are_refused(main_stack: Stack) -> None:
    sid = main_stack.new_session()
    calls = [
        ("POST", "/api/sessions", None),
        ("GET", f"/api/sessions/{sid}/messages", None),
        ("POST", f"/api/sessions/{sid}/messages", {"text": "hello"}),
        ("DELETE", f"/api/sessions/{sid}", None),
        ("OPTIONS", "/api/sessions", None),
    ]
    for origin in (EVIL, "null", f"{ORIGIN}.evil.net", "http://docs.example.com"):
        for method, path, body in calls:
            r = main_stack.http.request(method, path, json=body, headers={"Origin": origin})
            assert r.status_code == 403, (origin, method, path, r.text)
            assert r.json()["error"]["code"] == "origin_not_allowed"
            assert "Access-Control-Allow-Origin" not in r.headers
    # Nothing was asked or cleared on the refused calls.
    assert main_stack.messages(sid) == []


def test_allowed_site_gets_cors_and_others_do_not(main_stack: Stack) -> None:
    pre = main_stack.http.options(
        "/api/sessions",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    r = main_stack.http.post("/api/sessions", headers={"Origin": ORIGIN})
    assert r.status_code == 201
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in r.headers.get("Vary", "")
    # Without an Origin (curl, servers) the API works but never grants CORS; nor to ourselves.
    plain = main_stack.http.post("/api/sessions")
    own = main_stack.http.post("/api/sessions", headers={"Origin": main_stack.url})
    assert plain.status_code == own.status_code == 201
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Access-Control-Allow-Origin" not in own.headers
    # The admin token never travels cross-site: Authorization is not an allowed header.
    assert "authorization" not in pre.headers["Access-Control-Allow-Headers"].lower()


def test_websocket_upgrades_from_other_sites_are_refused(main_stack: Stack) -> None:
    sid = main_stack.new_session()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        ws_open(main_stack, sid, Origin=EVIL)
    assert refused.value.status_code == 403
    ok = ws_open(main_stack, sid, Origin=ORIGIN)
    try:
        assert ws_close_code(ok, timeout=0.5) is None  # stays open for the allowed site
    finally:
        ok.close()


def test_chat_page_may_be_framed_only_by_allowed_sites(main_stack: Stack) -> None:
    page = main_stack.http.get("/widget/")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    assert directives["frame-ancestors"].split() == ["'self'", ORIGIN]
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert "unsafe" not in csp
    assert "X-Frame-Options" not in page.headers  # it would forbid the allowed sites
    # Everything else refuses to be framed at all.
    api = main_stack.http.get("/api/openapi.json")
    assert "frame-ancestors 'none'" in api.headers["Content-Security-Policy"]
    assert api.headers["X-Frame-Options"] == "DENY"


def test_public_start_without_origins_warns_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env(
        {}, database_url=f"sqlite:///{tmp_path / 'w.db'}", public=True, allowed_origins=""
    )
    with caplog.at_level(logging.WARNING):
        app = create_app(settings)
    app.extensions["docschat"].close()
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING and "SECURITY" in r.message]
    assert loud and "DOCSCHAT_ALLOWED_ORIGINS" in loud[0].message

    caplog.clear()
    quiet = settings.with_(allowed_origins=ORIGIN, database_url=f"sqlite:///{tmp_path / 'q.db'}")
    with caplog.at_level(logging.WARNING):
        app = create_app(quiet)
    app.extensions["docschat"].close()
    assert not [r for r in caplog.records if "SECURITY" in r.message]
