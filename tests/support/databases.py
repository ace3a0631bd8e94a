"""Databases to test on: private schemas and databases on the local PostgreSQL, a throw-away
PostgreSQL cluster of our own, and one-off SQL queries."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from tests.support.processes import free_port

PG_USER = os.environ.get("PGUSER", getpass.getuser())
PG_BASE = f"postgresql+psycopg://{PG_USER}@127.0.0.1:5432/test"
PG_ADMIN = f"postgresql://{PG_USER}@127.0.0.1:5432/test"  # for CREATE and DROP
PG_BIN = Path("/usr/lib/postgresql")


@contextlib.contextmanager
def pg_schema(admin_dsn: str = PG_ADMIN, prefix: str = "t") -> Iterator[str]:
    """A fresh private schema in the database of `admin_dsn`; yields its SQLAlchemy URL, then
    drops it (ending the sessions still using it)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    base = admin_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query LIKE %s",
                (f"%{schema}%",),
            )
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def new_pg_database(prefix: str) -> Iterator[str]:
    """A fresh database named `prefix_<random>` on the local PostgreSQL; yields its URL, then
    drops it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def query(db_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of one SQL query against a docschat database (a short-lived engine)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


class PrivatePostgres:
    """A throw-away PostgreSQL cluster of our own on a free port, so a test may stop and restart
    it freely (and a benchmark is alone on it); `durable` keeps fsync on, as in production."""

    def __init__(self, max_connections: int = 300, *, durable: bool = False) -> None:
        reason = self.missing()
        if reason is not None:
            raise RuntimeError(reason)
        self.max_connections = max_connections
        self.durable = durable
        self.bin = sorted(PG_BIN.glob("*/bin/initdb"))[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="docschat-pg-"))
        shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        sync = [] if durable else ["--no-sync"]
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", *sync)
        self.start()

    @staticmethod
    def missing() -> str | None:
        """Why no private cluster can run here (not root, no PostgreSQL), or None."""
        if not sorted(PG_BIN.glob("*/bin/initdb")) or os.geteuid() != 0:
            return "needs root and a local PostgreSQL installation to run a private cluster"
        if shutil.which("runuser") is None:
            return "needs runuser to run a private PostgreSQL cluster as its own user"
        return None

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.dir,
        )

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the cluster's `postgres` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """The libpq DSN of the cluster's `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={self.max_connections}"
        )
        if not self.durable:
            options += " -c fsync=off"
        log = str(self.dir / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Stop the server (fast mode: open connections are cut)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and remove its files."""
        pg_ctl = str(self.bin / "pg_ctl")
        stop = [pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        subprocess.run(["runuser", "-u", "postgres", "--", *stop], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
