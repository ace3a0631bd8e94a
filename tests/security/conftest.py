"""Security fixtures: long-lived proxy stacks shared by a module, and hostile-client helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket

from tests.support import Stack, pg_schema

ORIGIN = "https://docs.example.com"
EVIL = "https://evil.example.net"
ADMIN_TOKEN = "admin-0123456789-abcdefghijklmnopqrstuvwxyz"

# The main stack: one allowed site, an admin token, one trusted proxy, tight WebSocket limits.
MAIN_ENV = {
    "DOCSCHAT_ALLOWED_ORIGINS": ORIGIN,
    "DOCSCHAT_ADMIN_TOKEN": ADMIN_TOKEN,
    "DOCSCHAT_TRUSTED_PROXIES": "1",
    "DOCSCHAT_WS_PER_SESSION": "2",
    "DOCSCHAT_WS_PER_IP": "4",
    "DOCSCHAT_MAX_QUEUED": "3",
}


def launch(tmp: Path, db_url: str, env: dict[str, str], **emulator: Any) -> Stack:
    """Start an emulator and a set-up proxy stack on it (the caller closes both)."""
    from emulator.options import EmulatorOptions
    from emulator.server import serve_in_thread

    emulator.setdefault("latency_ms", 150)
    emulator.setdefault("tokens_per_second", 0)
    emu = serve_in_thread(EmulatorOptions(**emulator))
    stack = Stack(tmp, db_url, emu, env)
    try:
        stack.setup()
        return stack.start()
    except BaseException:
        stack.close()
        emu.stop()
        raise


def shutdown(stack: Stack) -> None:
    """Stop a stack started by `launch` and its emulator."""
    stack.close()
    stack.emulator.stop()


@pytest.fixture(scope="session")
def main_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One proxy (SQLite) shared by the security tests that need no special limits."""
    tmp = tmp_path_factory.mktemp("security-main")
    stack = launch(tmp, f"sqlite:///{tmp / 'main.db'}", MAIN_ENV)
    yield stack
    shutdown(stack)


@pytest.fixture(scope="module")
def pg_schema_url() -> Iterator[str]:
    """A private PostgreSQL schema for one module."""
    with pg_schema() as url:
        yield url


def wait_minute_start(margin: float = 12.0) -> None:
    """Sleep past a near minute boundary: per-minute windows follow the wall clock."""
    into = time.time() % 60
    if into > 60 - margin:
        # The wall clock is what the limits count by: crossing the boundary is the point.
        time.sleep(60 - into + 0.2)


def ws_url(stack: Stack, sid: str) -> str:
    """The WebSocket address of a session's events."""
    return f"ws://127.0.0.1:{stack.port}/api/sessions/{sid}/events"


def ws_open(stack: Stack, sid: str, **headers: str) -> websocket.WebSocket:
    """Open a session's event socket (raises WebSocketBadStatusException on a refused upgrade)."""
    origin = headers.pop("Origin", None)
    header = [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return websocket.create_connection(ws_url(stack, sid), timeout=5, header=header, origin=origin)


def ws_close_code(ws: websocket.WebSocket, timeout: float = 5.0) -> int | None:
    """Read until the server closes; its close code (None when it stayed open)."""
    ws.settimeout(timeout)
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
    except websocket.WebSocketTimeoutException:
        return None
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        return 1006


def healthy(stack: Stack) -> bool:
    """Whether the proxy still answers its health check and a real API call."""
    r = httpx.get(f"{stack.url}/healthz", timeout=5)
    s = httpx.post(f"{stack.url}/api/sessions", timeout=5)
    return r.status_code == 200 and s.status_code == 201


def xff(*hops: str) -> dict[str, str]:
    """An X-Forwarded-For header listing these hops (left-most is client-controlled)."""
    return {"X-Forwarded-For": ", ".join(hops)}
