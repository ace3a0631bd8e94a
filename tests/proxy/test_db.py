"""The database layer: concurrent first starts migrate once, the pool waits for a connection
rather than failing a request, and a deployment too big for max_connections is warned about."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from werkzeug.serving import make_server

from proxy.config import Settings
from proxy.storage.db import MIGRATIONS, Database
from proxy.web.app import create_app
from tests.support import PG_USER, ROOT, wait_until

SERVER = f"postgresql://{PG_USER}@127.0.0.1:5432"
TABLES = {"alembic_version", "answer_jobs", "messages", "sessions", "settings"}


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    """An empty PostgreSQL database of its own (not a schema: the first start creates `public`'s
    tables exactly as a new deployment would), dropped afterwards."""
    name = f"docschat_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{SERVER}/test", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/test", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _start_together(database_url: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    """Run `docschat db upgrade` in `count` processes started at the same moment."""
    env = {**os.environ, "DATABASE_URL": database_url}
    argv = [sys.executable, "-m", "proxy.cli", "db", "upgrade"]
    procs = [
        subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), ""))
    return results


def _schema(database_url: str) -> tuple[set[str], list[tuple[str, ...]]]:
    """The tables of a database and the rows of its alembic_version."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            versions = [tuple(r) for r in conn.execute(text("SELECT * FROM alembic_version"))]
        return tables, versions
    finally:
        engine.dispose()


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_four_processes_starting_at_once_on_an_empty_postgres_database_all_succeed(
    fresh_pg_database: str,
) -> None:
    results = _start_together(fresh_pg_database, 4)
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stdout[-2000:] for r in results]
    assert all("database is up to date" in r.stdout for r in results)
    tables, versions = _schema(fresh_pg_database)
    assert tables >= TABLES
    assert versions == [(_head(),)]


def test_a_release_and_workers_starting_at_once_on_an_empty_postgres_database_all_come_up(
    fresh_pg_database: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": fresh_pg_database}
    logs = [tmp_path / f"{n}.log" for n in range(4)]
    commands = [["db", "upgrade"], ["worker"], ["db", "upgrade"], ["worker"]]
    procs = []
    for command, log in zip(commands, logs, strict=True):
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "proxy.cli", *command],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        upgrades, workers = procs[0::2], procs[1::2]
        assert [p.wait(timeout=120) for p in upgrades] == [0, 0], [log.read_text() for log in logs]

        def running() -> bool:
            assert all(w.poll() is None for w in workers), [log.read_text() for log in logs]
            return all("worker running" in log.read_text() for log in logs[1::2])

        wait_until(running, timeout=60)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        assert [w.wait(timeout=30) for w in workers] == [0, 0]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    tables, versions = _schema(fresh_pg_database)
    assert tables >= TABLES
    assert versions == [(_head(),)]


def test_four_processes_starting_at_once_on_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'docschat.db'}"
    results = _start_together(url, 4)
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stdout[-2000:] for r in results]
    tables, versions = _schema(url)
    assert tables >= TABLES
    assert versions == [(_head(),)]


def test_an_upgrade_of_an_up_to_date_database_changes_nothing(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        db.upgrade()
        db.upgrade()
    finally:
        db.dispose()
    assert _schema(pg_url)[1] == [(_head(),)]


def test_a_deployment_larger_than_max_connections_is_warned_about_at_start(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    [(limit, reserved)] = _rows(
        pg_url,
        "SELECT current_setting('max_connections')::int, "
        "current_setting('superuser_reserved_connections')::int "
        "+ coalesce(current_setting('reserved_connections', true), '0')::int",
    )
    processes = (limit - reserved) // 10 + 1  # 10 connections each: one process too many
    db = Database(pg_url, pool_size=4, max_overflow=4)
    try:
        with caplog.at_level(logging.INFO, logger="proxy.storage.db"):
            fits = db.check_budget(2, 2)
            assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
            too_many = db.check_budget(processes, 2)
    finally:
        db.dispose()
    assert (fits.planned, fits.available, fits.exceeded) == (20, limit - reserved, False)
    assert (too_many.planned, too_many.exceeded) == (processes * 10, True)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"accepts {limit - reserved} client connections" in warning
    assert f"may open {processes * 10}: DOCSCHAT_DB_PROCESSES={processes}" in warning


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture
def small_pool_app(pg_url: str) -> Iterator[tuple[str, Database]]:
    """The real app on a loopback port whose pool holds one PostgreSQL connection, no more."""
    settings = Settings.from_env(
        {},
        database_url=pg_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=3.0,
    )
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app.extensions["docschat"].db
    finally:
        server.shutdown()
        app.extensions["docschat"].close()


def test_more_requests_than_pooled_connections_wait_their_turn(small_pool_app) -> None:
    base, _db = small_pool_app
    with httpx.Client(base_url=base, timeout=20) as http, ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda _: http.post("/api/sessions").status_code, range(48)))
    assert statuses == [201] * 48


def test_a_request_that_waits_too_long_for_a_connection_gets_storage_unavailable(
    small_pool_app,
) -> None:
    base, db = small_pool_app
    held = db.engine.connect()  # the pool's only connection, taken for longer than the wait
    held.execute(text("SELECT 1"))
    try:
        r = httpx.post(f"{base}/api/sessions", timeout=20)
    finally:
        held.close()
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "storage_unavailable"
    assert r.headers["Retry-After"]
    assert httpx.post(f"{base}/api/sessions", timeout=20).status_code == 201
