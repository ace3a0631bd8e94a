"""Database engine and sessions: SQLite (WAL, write transactions begin IMMEDIATE) or PostgreSQL."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Select

MIGRATIONS = Path(__file__).parent / "migrations"


def libpq_dsn(database_url: str) -> str | None:
    """The plain PostgreSQL connection string of a database URL (for LISTEN/NOTIFY), or None
    for another database."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


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

    def fetch(self, query: Query, params: dict[str, Any]) -> list[Sequence[Any]]:
        """Rows of a prepared read-only query, run without a transaction around it (one
        statement is consistent by itself) on a pooled driver connection."""
        connection = self.engine.raw_connection()
        try:
            driver = connection.driver_connection
            if not self.is_sqlite:  # no BEGIN and COMMIT round trips
                driver.autocommit = True
            try:
                cursor = connection.cursor()
                cursor.execute(query.sql, query.arguments(params))
                rows = cursor.fetchall()
                cursor.close()
            finally:
                if not self.is_sqlite:
                    driver.autocommit = False
        finally:
            connection.close()  # back to the pool
        return [query.convert(row) for row in rows]

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


class Query:
    """A read-only statement compiled once for a database, for `Database.fetch`: SQLAlchemy's
    work on every execution cost as much as the rest of the hottest read (GET /messages)."""

    def __init__(self, db: Database, statement: Select[Any]) -> None:
        dialect = db.engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._positions = compiled.positiontup  # SQLite's "?" parameters; None when named
        # The columns' own result processing (timestamps, JSON), as SQLAlchemy would apply it.
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self._convert = [(i, f) for i, f in enumerate(processors) if f is not None]

    def arguments(self, params: dict[str, Any]) -> Any:
        """The driver's arguments for plain parameter values."""
        if self._positions is None:
            return params
        return tuple(params[name] for name in self._positions)

    def convert(self, row: Sequence[Any]) -> Sequence[Any]:
        """A driver row with each value as its column's type gives it."""
        if not self._convert:
            return row
        values = list(row)
        for i, convert in self._convert:
            if values[i] is not None:
                values[i] = convert(values[i])
        return values


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
        deferred = connection.get_execution_options().get("sqlite_deferred")
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

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
        # An idle pooled connection with anything to read is dead (a restarted server sends a
        # FATAL message, then EOF): one poll() instead of pool_pre_ping's round trip per checkout.
        if dbapi_connection.closed or _readable(dbapi_connection.fileno()):
            raise DisconnectionError("the server closed this connection")

    return engine


def _readable(fd: int) -> bool:
    """Whether a socket has data (or EOF) waiting, without blocking."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
