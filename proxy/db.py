"""Database engine and sessions: SQLite (WAL, write transactions begin IMMEDIATE) or PostgreSQL."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, Row, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Executable

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    """One engine and its session factories; migrations are applied with `upgrade()`."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine = _sqlite_engine(url)
        else:
            self.engine = _pooled_engine(url, pool_size, max_overflow)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one write lock per file, and its busy handler polls for it with sleeps of up
        # to 100 ms. Queueing this process's writers on a Python lock hands it over at once;
        # other processes still wait on the busy timeout.
        self._write_lock = threading.RLock() if self.is_sqlite else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        if self._write_lock is None:
            with self._factory.begin() as s:
                yield s
            return
        with self._write_lock, self._factory.begin() as s:
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (on SQLite it takes no write lock)."""
        with self._factory() as s:
            if self.is_sqlite:
                s.connection(execution_options={"sqlite_deferred": True})
            # Closing (not rolling back) ends the transaction without expiring loaded objects.
            yield s

    def fetch(self, statement: Executable, params: dict[str, Any]) -> Sequence[Row[Any]]:
        """Rows of one read-only statement, run without a transaction around it: one statement
        is consistent by itself, and the hottest reads skip BEGIN and COMMIT (round trips on
        PostgreSQL)."""
        # SQLite: skip BEGIN (switching the isolation level costs more than the query);
        # PostgreSQL: autocommit, so the driver sends neither BEGIN nor COMMIT.
        single = {"single_statement": True} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
        with self.engine.connect().execution_options(**single) as c:
            return c.execute(statement, params).all()

    def upgrade(self) -> None:
        """Apply every Alembic migration up to the newest."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_engine(url: str) -> Engine:
    """SQLite with WAL and a busy timeout; write transactions begin IMMEDIATE to avoid deadlocks."""
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=20, max_overflow=40
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY instead of
        # waiting; taking the write lock up front makes concurrent writers queue on busy_timeout.
        options = connection.get_execution_options()
        if options.get("single_statement"):
            return  # one statement is consistent by itself (see Database.fetch)
        connection.exec_driver_sql("BEGIN" if options.get("sqlite_deferred") else "BEGIN IMMEDIATE")

    return engine


def _pooled_engine(url: str, pool_size: int, max_overflow: int) -> Engine:
    """A PostgreSQL engine whose pool notices and replaces dead connections."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
    )

    @event.listens_for(engine, "checkout")
    def _check_alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A server that restarts or ends a session says so on the socket (a FATAL message, then
        # EOF), so an idle pooled connection with anything to read is dead. Looking costs one
        # poll() instead of the round trip of pool_pre_ping's SELECT 1 on every checkout (a
        # fifth of GET /messages' throughput); the pool replaces what this rejects.
        if dbapi_connection.closed or _readable(dbapi_connection.fileno()):
            raise DisconnectionError("the server closed this connection")

    return engine


def _readable(fd: int) -> bool:
    """Whether a socket has data (or EOF) waiting, without blocking."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
