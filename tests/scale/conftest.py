"""Fixtures for the scale-out and fault tests: extra processes, a private PostgreSQL, listeners."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support import (
    DOCSCHAT,
    Listener,
    PrivatePostgres,
    free_port,
    printed,
    spawn,
    wait_http,
    wait_until,
)


class Procs:
    """docschat worker and web-only processes started by a test; all are killed at its end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[subprocess.Popen[bytes]] = []

    def _start(
        self,
        args: list[str],
        env: dict[str, str],
        name: str,
        *,
        program: list[str] | None = None,
        split: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start a process logging to `name.log`, or with `split` its stdout to `name.out` and
        its stderr to `name.err` (then also its `.log`)."""
        log = self.tmp / f"{name}.log"
        out = self.tmp / f"{name}.out" if split else log
        err = self.tmp / f"{name}.err" if split else None
        # Its own process group: a gunicorn master's forked workers go with it.
        proc = spawn([*(program or DOCSCHAT), *args], env, out, err=err, group=True)
        proc.log, proc.out, proc.err = err or log, out, err or log  # type: ignore[attr-defined]
        self.running.append(proc)
        return proc

    def worker(self, env: dict[str, str], name: str = "worker", **extra: str) -> Any:
        """Start `docschat worker` with a stack's environment (plus `extra`)."""
        proc = self._start(["worker"], {**env, **extra}, f"{name}-{len(self.running)}")
        wait_until(lambda: printed(proc.log, "worker running", proc), timeout=30)
        return proc

    def web(self, env: dict[str, str], **extra: str) -> str:
        """Start a web-only `docschat serve` on a free port; returns its base URL."""
        port = free_port()
        env = {**env, "DOCSCHAT_RUN_WORKER": "0", **extra}
        proc = self._start(["serve", "--port", str(port)], env, f"web-{port}")
        return _serving(proc, port)

    def gunicorn(self, env: dict[str, str], **extra: str) -> str:
        """Start the Procfile's `web:` command (gunicorn, its default workers) on a free `$PORT`;
        returns its base URL once it answers."""
        return self.gunicorn_on(free_port(), env, **extra).url

    def gunicorn_on(self, port: int, env: dict[str, str], **extra: str) -> Any:
        """Start the Procfile's `web:` command on `port`; returns the master's process once it
        answers (`.url`; its stdout in `.out`, its stderr in `.err`)."""
        env = {**env, "PORT": str(port), **extra}
        program = [sys.executable, "-m", "gunicorn"]
        args = ["-c", "gunicorn.conf.py", "wsgi:app"]
        name = f"gunicorn-{port}-{len(self.running)}"
        proc = self._start(args, env, name, program=program, split=True)
        proc.url = _serving(proc, port)  # type: ignore[attr-defined]
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop one process gracefully (SIGTERM) and wait for it."""
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        """Kill every process this test started, with the processes it forked (its group)."""
        for proc in self.running:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _serving(proc: Any, port: int) -> str:
    """Wait until a started web process answers /healthz on `port`; returns its base URL."""
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", timeout=60, proc=proc, log=proc.log)
    return url


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Start extra docschat processes; they are killed after the test."""
    running = Procs(tmp_path)
    yield running
    running.stop_all()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster on a free port, removed after the test."""
    reason = PrivatePostgres.missing()
    if reason is not None:
        pytest.skip(reason)
    cluster = PrivatePostgres()
    yield cluster
    cluster.destroy()


@pytest.fixture
def listen() -> Iterator[Callable[[str, str], Listener]]:
    """Open WebSocket listeners: `listen(base_url, sid)`; all close after the test."""
    opened: list[Listener] = []

    def open_one(base_url: str, sid: str) -> Listener:
        listener = Listener(base_url, sid)
        opened.append(listener)
        return listener

    yield open_one
    for listener in opened:
        listener.close()


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL one process we started and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def sample_owners(db_url: str, stop: threading.Event, seen: dict[int, set[str]]) -> None:
    """Record which worker held which answer's lease, until `stop` is set (runs in a thread)."""
    engine = create_engine(db_url)
    try:
        while not stop.is_set():
            try:
                with engine.connect() as conn:
                    rows = conn.execute(
                        text(
                            "SELECT message_id, lease_owner FROM answer_jobs "
                            "WHERE lease_owner IS NOT NULL"
                        )
                    ).all()
                for message_id, owner in rows:
                    seen.setdefault(message_id, set()).add(owner)
            except Exception:
                pass
            stop.wait(0.03)  # the sampling rate, until told to stop
    finally:
        engine.dispose()


class RequestLog:
    """WSGI middleware around an emulator that records every /v1 request with its timing.

    Each record is (start, responded, method, path, key, status, retry_after): `key` names the
    answer a request belongs to (the run id in its path, else the `docschat_job` metadata of its
    body), so a test can see when the same answer's next request came.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self.records: list[tuple[float, float, str, str, str, int, float | None]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/v1/"):
            return self.app(environ, start_response)
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        key = _request_key(path, body)
        started = time.monotonic()

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            retry = dict(headers).get("Retry-After")
            record = (
                started,
                time.monotonic(),
                method,
                path,
                key,
                int(status.split()[0]),
                float(retry) if retry else None,
            )
            with self._lock:
                self.records.append(record)
            return start_response(status, headers, exc_info)

        return self.app(environ, respond)

    def snapshot(self) -> list[tuple[float, float, str, str, str, int, float | None]]:
        """The records so far, in order of their start."""
        with self._lock:
            return sorted(self.records)


def _request_key(path: str, body: bytes) -> str:
    parts = path.strip("/").split("/")
    for marker in ("runs", "responses"):
        if marker in parts:
            i = parts.index(marker)
            if i + 1 < len(parts) and parts[i + 1] not in ("cancel", "input_items"):
                return f"run:{parts[i + 1]}"
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return path
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if isinstance(metadata, dict) and "docschat_job" in metadata:
        return f"job:{metadata['docschat_job']}"
    return path


def record_requests(emulator: Any) -> RequestLog:
    """Wrap a running emulator (from `start_emulator`) so its /v1 requests are recorded."""
    server = emulator._server  # werkzeug reads `server.app` on every request
    log = RequestLog(server.app)
    server.app = log
    return log
