"""Shared fixtures: fresh databases (SQLite, PostgreSQL), the emulator and a live proxy stack.

The helpers they are built on live in tests/support (shared with bench/)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emulator.options import EmulatorOptions
from emulator.server import serve_in_thread
from tests.support import Stack, new_pg_database, pg_schema


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'docschat.db'}"
        return
    with pg_schema() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh private schema on the local PostgreSQL."""
    with pg_schema() as url:
        yield url


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database of its own (not a schema) on the local PostgreSQL."""
    with new_pg_database("docschat") as url:
        yield url


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Any]]:
    """Start emulators with given options; all stop after the test."""
    running: list[Any] = []

    def start(**options: Any) -> Any:
        options.setdefault("latency_ms", 150)
        options.setdefault("tokens_per_second", 0)
        emu = serve_in_thread(EmulatorOptions(**options))
        running.append(emu)
        return emu

    yield start
    for emu in running:
        emu.stop()


class _RefusingHandler(BaseHTTPRequestHandler):
    """Answers every request as OpenAI answers a wrong key."""

    def _refuse(self) -> None:
        body = json.dumps(
            {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                       "code": "invalid_api_key"}}
        ).encode()  # fmt: skip
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_upstream() -> Iterator[str]:
    """The base URL of an upstream that refuses every API key (401), as with a wrong key."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def emulator(start_emulator: Callable[..., Any]) -> Any:
    """An emulator answering in 150 ms, without streaming delays."""
    return start_emulator()


@pytest.fixture
def start_stack(
    tmp_path: Path, start_emulator: Callable[..., Any], request: pytest.FixtureRequest
) -> Iterator[Callable[..., Stack]]:
    """Start proxy stacks: `start_stack(db_url=None, emulator={...}, **env)`."""
    stacks: list[Stack] = []

    def start(
        db_url: str | None = None, emulator: dict[str, Any] | None = None, **env: str
    ) -> Stack:
        emu = start_emulator(**(emulator or {}))
        url = db_url or f"sqlite:///{tmp_path / f'stack{len(stacks)}.db'}"
        stack = Stack(tmp_path, url, emu, env)
        stacks.append(stack)
        stack.setup()
        return stack.start()

    yield start
    for stack in stacks:
        stack.close()


@pytest.fixture(params=["assistants", "responses"])
def api_mode(request: pytest.FixtureRequest) -> str:
    """Each upstream API mode in turn."""
    return request.param
