"""A live docschat: setup recorded, sample pages uploaded, and a real `docschat serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from proxy.config import Settings
from proxy.setup import recorded, run_setup
from proxy.storage.db import Database
from proxy.storage.models import Document
from tests.support.databases import query
from tests.support.emulator import add_faults, emulator_stats, reset_emulator_stats
from tests.support.processes import docschat, free_port
from tests.support.waits import wait_http, wait_until

API_KEY = "sk-test-docschat-SECRET-0123456789abcdef"

# Two small pages every live stack knows, so answers carry real sources: (url, title, text).
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


def provision(env: Mapping[str, str], docs: Sequence[tuple[str, str, str]] = SAMPLE_DOCS) -> None:
    """Do what an operator does before the first question: migrate, run setup (as `docschat
    setup` does) and upload `docs` (url, title, text) as the scraper would."""
    settings = Settings.from_env(env)
    db = Database(settings.database_url)
    try:
        db.upgrade()
        run_setup(settings, db)
        for url, title, text in docs:
            upload_doc(db, settings, url, title, text)
    finally:
        db.dispose()


def upload_doc(db: Database, settings: Settings, url: str, title: str, text: str) -> str:
    """Store a page and upload it to the recorded vector store; returns its file id."""
    ids = recorded(db)
    assert ids is not None, "run setup first"
    client = OpenAI(api_key=settings.openai_api_key, base_url=settings.openai_base_url)
    name = url.rstrip("/").rsplit("/", 1)[-1] + ".md"
    upload = client.files.create(file=(name, text.encode()), purpose="assistants")
    client.vector_stores.files.create(
        ids.vector_store_id, file_id=upload.id, attributes={"url": url, "title": title}
    )
    with db.session() as s:
        s.add(Document(url=url, title=title, text=text, file_id=upload.id))
    return upload.id


# Fast answers and no limits in the way, unless a test says otherwise.
STACK_ENV = {
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
}


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
            **STACK_ENV,
            # This stack's processes (and extra ones started with its env) share their metrics.
            "DOCSCHAT_METRICS_DIR": str(tmp / f"metrics-{self.port}"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"proxy-{self.port}.log"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def setup(self, *, upload: bool = True) -> None:
        """Run setup (as `docschat setup` does) and upload the sample pages."""
        provision(self.env, SAMPLE_DOCS if upload else ())

    def upload_doc(self, url: str, title: str, text: str) -> str:
        """Store a page and upload it to the vector store, as the scraper would."""
        db = Database(self.db_url)
        try:
            return upload_doc(db, Settings.from_env(self.env), url, title, text)
        finally:
            db.dispose()

    def start(self) -> Stack:
        """Start (or restart) the proxy process and wait until it answers."""
        # Its own process group: `serve` is gunicorn, whose worker is a child process.
        self.proc = docschat(["serve", "--port", str(self.port)], self.env, self.log, group=True)
        wait_http(f"{self.url}/healthz", timeout=30, proc=self.proc, log=self.log)
        return self

    def stop(self) -> None:
        """Stop the proxy gracefully."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the proxy, gunicorn's master and worker at once: no clean-up runs."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
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
        columns = ("id", "state", "thread_id", "run_id", "stream_cursor")
        rows = query(self.db_url, f"SELECT {', '.join(columns)} FROM answer_jobs ORDER BY id")
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def stats(self) -> dict[str, int]:
        """Upstream requests the emulator counted, by method and path template."""
        return emulator_stats(self.emulator_url)

    def reset_stats(self) -> None:
        """Zero the emulator's request counters."""
        reset_emulator_stats(self.emulator_url)

    def faults(self, *faults: dict[str, Any]) -> None:
        """Queue emulator faults for the next matching requests."""
        add_faults(self.emulator_url, *faults)

    def close(self) -> None:
        """Stop the process and close the client."""
        self.stop()
        self.http.close()
