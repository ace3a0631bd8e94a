"""`docschat serve` as an operator runs it: gunicorn on $PORT (or --port), the poller inside,
slow clients cut off, a clean stop on SIGTERM, and Heroku's `postgres://` URLs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket

from tests.support import ROOT, free_port, run_docschat, wait_until


class Served:
    """A `docschat serve` child process and what it printed."""

    def __init__(self, tmp: Path, args: list[str], env: dict[str, str]) -> None:
        self.log = tmp / f"serve-{len(list(tmp.glob('serve-*.log')))}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "proxy.cli", "serve", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.port = int(wait_until(self._announced, timeout=60))
        self.url = f"http://127.0.0.1:{self.port}"

    def _announced(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited:\n{self.text()[-3000:]}")
        found = re.search(r"^docschat serving on http://127\.0\.0\.1:(\d+)/$", self.text(), re.M)
        return found.group(1) if found else None

    def text(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit code (SIGKILL only if it hangs, which fails the test)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("serve did not stop on SIGTERM") from None
        return self.proc.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start `docschat serve` with extra arguments and environment; stopped after the test."""
    running: list[Served] = []

    def start(*args: str, **env: str) -> Served:
        environment = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "DOCSCHAT_LOG_LEVEL": "INFO",
            **env,
        }
        served = Served(tmp_path, list(args), environment)
        running.append(served)
        return served

    yield start
    for served in running:
        served.stop()


def test_serve_listens_on_port_from_the_environment_and_port_flag_wins(serve) -> None:
    first, second = free_port(), free_port()
    served = serve(PORT=str(first))
    assert served.port == first
    health = httpx.get(f"http://127.0.0.1:{first}/healthz")
    assert health.status_code == 200
    # A production server, not Werkzeug's development server.
    assert "werkzeug" not in health.headers.get("server", "").lower()
    assert "gunicorn" in served.text().lower()

    flagged = serve("--port", str(second), PORT=str(first + 1))
    assert flagged.port == second
    assert httpx.get(f"http://127.0.0.1:{second}/healthz").status_code == 200


def test_port_zero_picks_a_free_port_and_says_which(serve) -> None:
    served = serve("--port", "0")
    assert served.port > 0
    assert httpx.get(f"{served.url}/healthz").status_code == 200


def test_a_client_that_never_finishes_its_headers_is_cut_off(serve) -> None:
    served = serve("--port", "0", DOCSCHAT_HEADER_TIMEOUT="1", DOCSCHAT_RUN_WORKER="0")
    with socket.create_connection(("127.0.0.1", served.port)) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.settimeout(0.2)
        closed = False
        # A byte every 0.2 s keeps a per-read timeout happy for ever; the deadline is overall.
        for _ in range(300):  # at most a minute; the server should close long before
            try:
                slow.sendall(b"a")
                closed = slow.recv(1) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            if closed:
                break
        assert closed, "the server kept a connection whose headers never ended"
    assert "sent no complete request headers" in served.text()
    assert httpx.get(f"{served.url}/healthz").status_code == 200


def test_websockets_outlive_the_header_deadline_and_sigterm_stops_cleanly(
    serve, emulator: Any, tmp_path: Path
) -> None:
    env = _upstream_env(emulator, tmp_path / "ws.db", DOCSCHAT_HEADER_TIMEOUT="1")
    _setup(env)
    served = serve("--port", "0", **env)
    # The emulator takes 2.5 s to answer: longer than the header deadline.
    ws = _ask_and_listen(served)
    try:
        code = served.stop()
        with pytest.raises(websocket.WebSocketException):
            while True:  # whatever was still queued, then the end
                ws.recv()
    finally:
        ws.close()
    assert code == 0
    log = served.text()
    assert "closing 1 open WebSocket(s) to stop" in log
    assert "Traceback" not in log


def test_postgres_urls_as_heroku_writes_them_work(pg_url: str, emulator: Any, tmp_path: Path):
    heroku = pg_url.replace("postgresql+psycopg://", "postgres://")
    assert heroku.startswith("postgres://") and heroku != pg_url
    env = _upstream_env(emulator, None, DATABASE_URL=heroku)
    upgraded = run_docschat("db", "upgrade", env=env)
    assert upgraded.returncode == 0 and "up to date" in upgraded.stdout, upgraded.stderr
    _setup(env)
    # A web process without the poller and a separate worker: the answer reaches the
    # reader's WebSocket only through PostgreSQL's LISTEN/NOTIFY, on the same URL.
    web = Served(tmp_path, ["--port", "0"], {**env, "DOCSCHAT_RUN_WORKER": "0"})
    worker = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _ask_and_listen(web).close()
    finally:
        worker.terminate()
        worker.wait(30)
        assert web.stop() == 0


def _upstream_env(emulator: Any, db: Path | None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": emulator.base_url,
        "DOCSCHAT_TICK_INTERVAL": "0.2",
        "DOCSCHAT_LOG_LEVEL": "INFO",
        **extra,
    }
    if db is not None:
        env["DATABASE_URL"] = f"sqlite:///{db}"
    return env


def _setup(env: dict[str, str]) -> None:
    done = run_docschat("setup", env=env)
    assert done.returncode == 0, done.stderr


def _ask_and_listen(served: Served) -> websocket.WebSocket:
    """Ask a question with a WebSocket open; returns the socket once the answer came over it."""
    sid = httpx.post(f"{served.url}/api/sessions").json()["session_id"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{served.port}/api/sessions/{sid}/events", timeout=30
    )
    asked = httpx.post(f"{served.url}/api/sessions/{sid}/messages", json={"text": "Install?"})
    assert asked.status_code == 202
    assert _assistant_done(ws)["text"]
    return ws


def _assistant_done(ws: websocket.WebSocket) -> dict[str, Any]:
    """Read events until the assistant's message is done; returns it."""
    while True:
        event = json.loads(ws.recv())
        message = event.get("message") or {}
        if message.get("role") == "assistant" and message["status"] in ("done", "error"):
            assert message["status"] == "done", message
            return message


@pytest.fixture
def emulator(start_emulator: Any) -> Any:
    """An emulator that takes 2.5 s per answer."""
    return start_emulator(latency_ms=2500)
