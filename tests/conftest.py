"""Shared fixtures: fresh databases (SQLite, PostgreSQL), the emulator and a live proxy stack."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_USER = os.environ.get("PGUSER", getpass.getuser())
PG_BASE = f"postgresql+psycopg://{PG_USER}@127.0.0.1:5432/test"
PG_ADMIN = f"postgresql://{PG_USER}@127.0.0.1:5432/test"  # for CREATE and DROP
API_KEY = "sk-test-docschat-SECRET-0123456789abcdef"

# Two small pages every live stack knows, so answers carry real sources.
SAMPLE_DOCS = [
    (
        "http://docs.test/install",
        "Installing",
        "# Installing\n\nInstall the package with pip install docschat. Then run docschat demo "
        "to start the local demo on port 8000.",
    ),
    (
        "http://docs.test/config",
        "Configuration",
        "# Configuration\n\nThe DATABASE_URL setting chooses the database. PostgreSQL is "
        "supported for many processes; SQLite is the default file.",
    ),
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'docschat.db'}"
        return
    yield from _pg_schema()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh private schema on the local PostgreSQL."""
    yield from _pg_schema()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database of its own (not a schema) on the local PostgreSQL."""
    yield from new_pg_database("docschat")


def new_pg_database(prefix: str) -> Iterator[str]:
    """Create a database named `prefix_<random>`, yield its URL, then drop it."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _pg_schema() -> Iterator[str]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_ADMIN
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query LIKE %s",
                (f"%{schema}%",),
            )
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Any]]:
    """Start emulators with given options; all stop after the test."""
    from emulator.options import EmulatorOptions
    from emulator.server import serve_in_thread

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


@pytest.fixture
def emulator(start_emulator: Callable[..., Any]) -> Any:
    """An emulator answering in 150 ms, without streaming delays."""
    return start_emulator()


def wait_until(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")


class Stack:
    """A real proxy process (`docschat serve`) on loopback, talking to an emulator."""

    def __init__(self, tmp: Path, db_url: str, emulator: Any, env: dict[str, str]):
        self.tmp = tmp
        self.db_url = db_url
        self.emulator = emulator
        self.emulator_url = emulator.url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": emulator.base_url,
            "DATABASE_URL": db_url,
            "DOCSCHAT_TICK_INTERVAL": "0.2",
            "DOCSCHAT_POLL_MIN_INTERVAL": "0.05",
            "DOCSCHAT_POLL_MAX_INTERVAL": "0.5",
            "DOCSCHAT_ANSWER_DEADLINE": "40",
            "DOCSCHAT_RUN_ESTIMATE": "0.2",
            "DOCSCHAT_UPSTREAM_TIMEOUT": "15",
            "DOCSCHAT_RATE_SESSION_MINUTE": "1000",
            "DOCSCHAT_RATE_IP_MINUTE": "10000",
            "DOCSCHAT_RATE_GLOBAL_MINUTE": "100000",
            "DOCSCHAT_RATE_SESSION_DAY": "100000",
            "DOCSCHAT_RATE_IP_DAY": "100000",
            "DOCSCHAT_MAX_QUEUED": "10",
            "DOCSCHAT_LOG_LEVEL": "INFO",
            # This stack's processes (and extra ones started with its env) share their metrics.
            "DOCSCHAT_METRICS_DIR": str(tmp / f"metrics-{self.port}"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"proxy-{self.port}.log"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def setup(self, *, upload: bool = True) -> None:
        """Run setup (as `docschat setup` does) and upload the sample pages."""
        from proxy.config import Settings
        from proxy.setup import run_setup
        from proxy.storage.db import Database

        settings = Settings.from_env(self.env)
        db = Database(self.db_url)
        try:
            db.upgrade()
            run_setup(settings, db)
        finally:
            db.dispose()
        if upload:
            for url, title, text in SAMPLE_DOCS:
                self.upload_doc(url, title, text)

    def upload_doc(self, url: str, title: str, text: str) -> str:
        """Store a page and upload it to the vector store, as the scraper would."""
        from openai import OpenAI

        from proxy.setup import recorded
        from proxy.storage.db import Database
        from proxy.storage.models import Document

        db = Database(self.db_url)
        try:
            ids = recorded(db)
            assert ids is not None, "run setup first"
            client = OpenAI(api_key=API_KEY, base_url=self.emulator.base_url)
            name = url.rstrip("/").rsplit("/", 1)[-1] + ".md"
            upload = client.files.create(file=(name, text.encode()), purpose="assistants")
            client.vector_stores.files.create(
                ids.vector_store_id, file_id=upload.id, attributes={"url": url, "title": title}
            )
            with db.session() as s:
                s.add(Document(url=url, title=title, text=text, file_id=upload.id))
            return upload.id
        finally:
            db.dispose()

    def start(self) -> Stack:
        """Start (or restart) the proxy process and wait until it answers."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "proxy.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        wait_until(self._healthy, timeout=30)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"proxy exited:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop the proxy gracefully."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the proxy: no clean-up runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # --- API helpers ----------------------------------------------------------------------

    def new_session(self) -> str:
        """Create a session and return its id."""
        r = self.http.post("/api/sessions")
        assert r.status_code == 201, r.text
        return r.json()["session_id"]

    def ask(self, sid: str, text: str) -> dict[str, Any]:
        """Post a question; returns the stored user message."""
        r = self.http.post(f"/api/sessions/{sid}/messages", json={"text": text})
        assert r.status_code == 202, r.text
        return r.json()["message"]

    def messages(self, sid: str) -> list[dict[str, Any]]:
        """The session's messages."""
        r = self.http.get(f"/api/sessions/{sid}/messages")
        assert r.status_code == 200, r.text
        return r.json()["messages"]

    def answers(self, sid: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        """Wait until `count` answers are finished (done or error) and return all answers."""

        def finished() -> list[dict[str, Any]] | None:
            answers = [m for m in self.messages(sid) if m["role"] == "assistant"]
            done = [m for m in answers if m["status"] in ("done", "error")]
            return answers if len(done) >= count else None

        return wait_until(finished, timeout=timeout, every=0.1)

    def jobs(self) -> list[dict[str, Any]]:
        """Answer jobs as stored (id, state, thread and run ids, stream cursor)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT id, state, thread_id, run_id, stream_cursor"
                        " FROM answer_jobs ORDER BY id"
                    )
                ).mappings()
                return [dict(r) for r in rows]
        finally:
            engine.dispose()

    def stats(self) -> dict[str, int]:
        """Upstream requests the emulator counted, by method and path template."""
        return httpx.get(f"{self.emulator_url}/_emulator/stats").json()["requests"]

    def reset_stats(self) -> None:
        """Zero the emulator's request counters."""
        httpx.post(f"{self.emulator_url}/_emulator/stats/reset").raise_for_status()

    def faults(self, *faults: dict[str, Any]) -> None:
        """Queue emulator faults for the next matching requests."""
        r = httpx.post(f"{self.emulator_url}/_emulator/faults", json={"faults": list(faults)})
        assert r.status_code < 300, r.text

    def close(self) -> None:
        """Stop the process and close the client."""
        self.stop()
        self.http.close()


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
