"""Error answers: 500 for our bugs, 503 only when a dependency is down, one shape with the
request id, never a trace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask

from proxy.config import Settings
from proxy.web.app import create_app
from tests.support import PG_ADMIN

LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "UndefinedTable", "gone_messages")


@pytest.fixture
def own_role() -> Iterator[str]:
    """A PostgreSQL role of its own, owning a fresh schema; yields its database URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
    try:
        yield f"postgresql+psycopg://{name}@127.0.0.1:5432/test?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {name} CONNECTION LIMIT -1")
            _disconnect(conn, name)
            conn.execute(f"DROP SCHEMA {name} CASCADE")
            conn.execute(f"DROP ROLE {name}")


def _disconnect(conn: psycopg.Connection[Any], role: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
    )


@pytest.fixture
def app_on() -> Iterator[Any]:
    """Build apps on a database URL: `app_on(url)`; their background work stops after."""
    built: list[Flask] = []

    def build(url: str) -> Flask:
        app = create_app(Settings.from_env({}, database_url=url))
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["docschat"].close()


def _assert_error(response: Any, status: int, code: str, request_id: str) -> None:
    assert response.status_code == status, response.text
    assert response.json == {
        "error": {
            "code": code,
            "message": response.json["error"]["message"],
            "request_id": request_id,
        }
    }
    assert response.headers["X-Request-Id"] == request_id
    assert not [mark for mark in LEAKS if mark in response.text], response.text


def test_our_bug_answers_500_with_the_request_id_and_no_trace(own_role: str, app_on: Any) -> None:
    client = app_on(own_role).test_client()
    sid = client.post("/api/sessions").json["session_id"]
    role = own_role.split("://", 1)[1].split("@", 1)[0]
    # The schema no longer matches the code: a real fault of the deployment, not of a dependency.
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {role}.messages RENAME TO gone_messages")
    r = client.get(f"/api/sessions/{sid}/messages", headers={"X-Request-Id": "bug-1"})
    _assert_error(r, 500, "internal_error", "bug-1")
    # A request id the client did not send is made up, and still given back.
    r = client.get(f"/api/sessions/{sid}/messages")
    _assert_error(r, 500, "internal_error", r.headers["X-Request-Id"])
    assert len(r.headers["X-Request-Id"]) == 32


def test_a_database_that_refuses_connections_answers_503_then_recovers(
    own_role: str, app_on: Any
) -> None:
    client = app_on(own_role).test_client()
    sid = client.post("/api/sessions").json["session_id"]
    role = own_role.split("://", 1)[1].split("@", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
        _disconnect(conn, role)
    r = client.post(
        f"/api/sessions/{sid}/messages", json={"text": "Hello?"}, headers={"X-Request-Id": "db-1"}
    )
    _assert_error(r, 503, "storage_unavailable", "db-1")
    assert r.headers["Retry-After"] == "5"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
    assert client.get(f"/api/sessions/{sid}/messages").status_code == 200


def test_client_errors_carry_the_request_id_too(own_role: str, app_on: Any) -> None:
    client = app_on(own_role).test_client()
    r = client.get("/no/such/page", headers={"X-Request-Id": "lost-1"})
    _assert_error(r, 404, "not_found", "lost-1")
    r = client.put("/api/sessions", headers={"X-Request-Id": "verb-1"})
    _assert_error(r, 405, "method_not_allowed", "verb-1")
