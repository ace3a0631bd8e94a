"""The Procfile's deployment on a PostgreSQL server with its default max_connections = 100.

Release phase (`docschat db upgrade`), two web processes (gunicorn with its default workers,
each on its own `$PORT`), two `docschat worker` processes, the emulator as the upstream; 100
readers ask 3 questions each, spread over both web processes. No question may be refused, and
each must be answered exactly once, also when one worker is killed with SIGKILL mid-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.scale.conftest import Procs
from tests.support import API_KEY, ROOT, PrivatePostgres, free_port, query, wait_until

# Six server processes and a hundred readers load every core: run alone.
pytestmark = pytest.mark.serial

SESSIONS = 100
QUESTIONS = 3
MAX_CONNECTIONS = 100
APP_ROLE = "docschat"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    """A private cluster with PostgreSQL's default max_connections (the shared one is left be)."""
    reason = PrivatePostgres.missing()
    if reason is not None:
        pytest.skip(reason)
    cluster = PrivatePostgres(max_connections=MAX_CONNECTIONS)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`docschat emulator` in a process of its own; yields its /v1 base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    argv = [sys.executable, "-m", "proxy.cli", "emulator", "--port", str(port)]
    argv += ["--latency-ms", "600", "--tokens-per-second", "25"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/_emulator/stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=30)
        yield url
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def database(server: PrivatePostgres) -> Iterator[tuple[str, str]]:
    """A new, empty database owned by an ordinary (not superuser) role, as a hosted PostgreSQL
    gives one: (the app's URL, a superuser URL of the same database for the test's looks)."""
    name = f"docschat_{os.urandom(4).hex()}"
    admin = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        if exists is None:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
        conn.execute(f"CREATE DATABASE {name} OWNER {APP_ROLE}")
    try:
        yield (
            f"postgresql+psycopg://{APP_ROLE}@127.0.0.1:{server.port}/{name}",
            f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}",
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@dataclass
class Peaks:
    """The most connections the app's role held at once, in total and by application name."""

    total: int = 0
    by_name: dict[str, int] = field(default_factory=dict)


def _sample_connections(admin_url: str, stop: threading.Event, peaks: Peaks) -> None:
    """Read pg_stat_activity until `stop` (a superuser connection: not one of the app's)."""
    dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            rows = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE usename = %s GROUP BY 1",
                (APP_ROLE,),
            ).fetchall()
            now = dict(rows)
            peaks.total = max(peaks.total, sum(now.values()))
            for name, count in now.items():
                peaks.by_name[name] = max(peaks.by_name.get(name, 0), count)
            stop.wait(0.05)


def _run(argv: list[str], env: dict[str, str]) -> str:
    """Run a one-off `docschat` command as a platform would; its output, or fail with it."""
    done = subprocess.run(
        [sys.executable, "-m", "proxy.cli", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _open_jobs(admin_url: str) -> int:
    [(count,)] = query(
        admin_url, "SELECT count(*) FROM answer_jobs WHERE state NOT IN ('done', 'error')"
    )
    return int(count)


def _done_answers(admin_url: str) -> int:
    [(count,)] = query(
        admin_url, "SELECT count(*) FROM messages WHERE role = 'assistant' AND status = 'done'"
    )
    return int(count)


def _leases_of(admin_url: str, pid: int) -> int:
    [(count,)] = query(
        admin_url,
        "SELECT count(*) FROM answer_jobs WHERE lease_owner LIKE :owner",
        owner=f"%:{pid}:%",
    )
    return int(count)


@pytest.mark.parametrize("kill_a_worker", [False, True], ids=["steady", "worker-killed"])
def test_procfile_deployment_answers_100_sessions_x_3_within_100_connections(
    server: PrivatePostgres,
    upstream: str,
    database: tuple[str, str],
    tmp_path: Path,
    listen: Any,
    kill_a_worker: bool,
) -> None:
    app_url, admin_url = database
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "PORT")}
    env.update(
        DATABASE_URL=app_url,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=f"{upstream}/v1",
        DOCSCHAT_LOG_LEVEL="INFO",
        # A killed worker's answers go to the other worker once its leases end.
        DOCSCHAT_LEASE_SECONDS="3",
        DOCSCHAT_TICK_INTERVAL="0.5",
        # Every reader here comes from 127.0.0.1: lift the limits meant for the open internet.
        DOCSCHAT_RATE_SESSION_MINUTE="1000",
        DOCSCHAT_RATE_IP_MINUTE="100000",
        DOCSCHAT_RATE_IP_DAY="100000",
        DOCSCHAT_RATE_GLOBAL_MINUTE="100000",
        DOCSCHAT_WS_PER_IP="1000",
    )
    # Pool sizes, pool timeout and the process count stay at their defaults: they are the test.
    procs = Procs(tmp_path)
    peaks = Peaks()
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_connections, args=(admin_url, stop, peaks))
    sampler.start()
    try:
        began = time.monotonic()
        assert "database is up to date" in _run(["db", "upgrade"], env)  # release:
        _run(["setup"], env)
        webs = [procs.gunicorn(env), procs.gunicorn(env)]  # web: x2
        workers = [procs.worker(env, "w1"), procs.worker(env, "w2")]  # worker: x2
        started = time.monotonic()

        clients = [httpx.Client(base_url=url, timeout=60) for url in webs]
        sessions = []
        for i in range(SESSIONS):
            r = clients[i % 2].post("/api/sessions")
            assert r.status_code == 201, r.text
            sessions.append(r.json()["session_id"])
        for i, sid in enumerate(sessions):  # each reader's widget listens on one web process
            listen(webs[(i + 1) % 2], sid)

        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def ask_three(i: int) -> None:
            for n in range(QUESTIONS):
                r = clients[(i + n) % 2].post(
                    f"/api/sessions/{sessions[i]}/messages",
                    json={"text": f"Which database does DATABASE_URL choose? ({i}.{n})"},
                )
                with lock:
                    statuses[r.status_code] += 1

        with ThreadPoolExecutor(50) as pool:
            asking = pool.map(ask_three, range(SESSIONS))
            if kill_a_worker:
                victim = workers[0]
                # Mid-run: answers have been written and the victim holds some of the rest.
                wait_until(
                    lambda: _done_answers(admin_url) >= 30 and _leases_of(admin_url, victim.pid),
                    timeout=90,
                    every=0.02,
                )
                held = _leases_of(admin_url, victim.pid)
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
            list(asking)

        wait_until(lambda: _open_jobs(admin_url) == 0, timeout=150, every=0.2)
        finished = time.monotonic()
    finally:
        stop.set()
        sampler.join()
        procs.stop_all()

    # No question refused (no 503 storage_unavailable, no 429).
    assert statuses == {202: SESSIONS * QUESTIONS}, statuses
    # Each answered exactly once, as a reader sees it and as stored.
    rows = query(
        admin_url,
        "SELECT session_id, role, status, count(*) FROM messages GROUP BY 1, 2, 3",
    )
    by_session = Counter[tuple[str, str, str]]()
    for sid, role, status, count in rows:
        by_session[(sid, role, status)] += count
    for sid in sessions:
        assert by_session[(sid, "user", "done")] == QUESTIONS
        assert by_session[(sid, "assistant", "done")] == QUESTIONS, [
            (k, v) for k, v in by_session.items() if k[0] == sid
        ]
    assert sum(by_session.values()) == 2 * SESSIONS * QUESTIONS
    [(copied,)] = query(
        admin_url,
        "SELECT count(DISTINCT upstream_message_id) FROM messages WHERE role = 'assistant'",
    )
    assert copied == SESSIONS * QUESTIONS
    # Within PostgreSQL's 100 (97 for an ordinary role), as docs/deploying.md plans it.
    assert peaks.total <= 60, peaks
    for w in workers[1:] if kill_a_worker else workers:
        assert "up to 60 planned of 97" in w.log.read_text()  # type: ignore[attr-defined]
    server_log = (server.dir / "server.log").read_text(errors="replace")
    assert "too many clients" not in server_log

    print(
        f"\n[{'worker killed' if kill_a_worker else 'steady'}] "
        f"{SESSIONS * QUESTIONS} answers in {finished - started:.1f} s after start "
        f"({started - began:.1f} s release + setup + start); "
        f"peak connections {peaks.total}: {dict(sorted(peaks.by_name.items()))}"
        + (f"; {held} leases of the killed worker taken over" if kill_a_worker else "")
    )
