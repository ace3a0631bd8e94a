"""Database engine and sessions: SQLite (WAL, write transactions begin IMMEDIATE) or PostgreSQL."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Select

from proxy.config import normalize_database_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_lock's first key for "docschat migrations"; the second is the schema's hash, so
# databases sharing a server (or schemas sharing a database) do not wait for each other.
MIGRATION_LOCK = 0x646F6373  # "docs"
_LOCK_KEYS = f"{MIGRATION_LOCK}, hashtext(coalesce(current_schema(), ''))"
# LISTEN and NOTIFY connections a process holds besides its pool (see proxy/answers/events.py).
CHANNEL_CONNECTIONS = 2


def libpq_dsn(database_url: str, application_name: str = "docschat-events") -> str | None:
    """The plain PostgreSQL connection string of a database URL (for LISTEN/NOTIFY), or None
    for another database."""
    url = make_url(normalize_database_url(database_url))
    if url.get_backend_name() != "postgresql":
        return None
    if "application_name" not in url.query:
        url = url.update_query_dict({"application_name": application_name})
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class Budget:
    """The connections a deployment may open against what the server accepts."""

    planned: int
    available: int | None  # max_connections less the slots kept for superusers; None: unknown

    @property
    def exceeded(self) -> bool:
        """Whether the planned total is more than the server accepts."""
        return self.available is not None and self.planned > self.available


class Database:
    """One engine and its session factories; migrations are applied with `upgrade()`."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        max_overflow: int = 4,
        pool_timeout: float = 10.0,
        application_name: str = "docschat",
    ) -> None:
        url = normalize_database_url(url)  # postgres:// as Heroku writes it works too
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.pool_size, self.max_overflow = pool_size, max_overflow
        if self.is_sqlite:
            self.engine = _sqlite_engine(url)
        else:
            self.engine = _pooled_engine(
                url, pool_size, max_overflow, pool_timeout, application_name
            )
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
        """Apply every Alembic migration up to the newest, one process at a time.

        Processes starting together (a release phase, web and worker processes, replicas) all
        call this: the first applies the migrations and the others wait for it, then find
        nothing left to do. Without the lock each would create the same tables and all but
        one would crash on PostgreSQL's unique catalog entries.
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        if self.is_sqlite:
            # An exclusive transaction holds SQLite's one write lock from its first statement,
            # so a second process waits (busy timeout) until the first has committed.
            exclusive = self.engine.connect().execution_options(sqlite_begin="EXCLUSIVE")
            with exclusive as connection, connection.begin():
                _migrate(config, connection)
            return
        with self.engine.connect() as connection:
            # A session-level lock on this dedicated connection, held across the migrations'
            # transaction; the server drops it by itself if this process dies meanwhile.
            connection.execute(text(f"SELECT pg_advisory_lock({_LOCK_KEYS})"))
            connection.commit()
            try:
                with connection.begin():
                    _migrate(config, connection)
            finally:
                try:
                    connection.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEYS})"))
                    connection.commit()
                except SQLAlchemyError:
                    connection.invalidate()  # closing the session releases the lock

    def budget(self, processes: int, channel_connections: int) -> Budget:
        """This process's share of connections times `processes`, against the server's
        max_connections (read at start; PostgreSQL refuses clients beyond it)."""
        per_process = self.pool_size + self.max_overflow + channel_connections
        planned = processes * per_process
        if self.is_sqlite:
            return Budget(planned, None)
        with self.engine.connect() as connection:
            # Slots kept for superusers, and (PostgreSQL 16+) for pg_use_reserved_connections.
            total, reserved = connection.execute(
                text(
                    "SELECT current_setting('max_connections')::int, "
                    "current_setting('superuser_reserved_connections')::int "
                    "+ coalesce(current_setting('reserved_connections', true), '0')::int"
                )
            ).one()
        return Budget(planned, total - reserved)

    def check_budget(self, processes: int, channel_connections: int) -> Budget:
        """Log a warning when the planned deployment may open more connections than the
        server accepts; a failed look is logged too, never fatal."""
        try:
            found = self.budget(processes, channel_connections)
        except SQLAlchemyError as exc:
            log.warning("could not read max_connections: %s", type(exc).__name__)
            return Budget(0, None)
        if found.exceeded:
            log.warning(
                "PostgreSQL accepts %d client connections, but the planned deployment may open "
                "%d: DOCSCHAT_DB_PROCESSES=%d x (DOCSCHAT_DB_POOL_SIZE=%d + "
                "DOCSCHAT_DB_MAX_OVERFLOW=%d + %d for events). Lower the pool settings, set "
                "REDIS_URL, or raise max_connections; see docs/deploying.md.",
                found.available,
                found.planned,
                processes,
                self.pool_size,
                self.max_overflow,
                channel_connections,
            )
        elif found.available is not None:
            log.info(
                "database connections: up to %d planned of %d the server accepts",
                found.planned,
                found.available,
            )
        return found

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _migrate(config: Config, connection: Connection) -> None:
    """Run Alembic's upgrade to the newest revision on a connection inside a transaction."""
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


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
        options = connection.get_execution_options()
        mode = "DEFERRED" if options.get("sqlite_deferred") else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', mode)}")

    return engine


def _pooled_engine(
    url: str, pool_size: int, max_overflow: int, pool_timeout: float, application_name: str
) -> Engine:
    """A PostgreSQL engine whose pool notices and replaces dead connections.

    When every pooled connection is in use, a request waits up to `pool_timeout` for one to
    come back rather than opening more than the budget allows (see docs/deploying.md)."""
    parsed = make_url(url)
    connect_args = {}
    if "application_name" not in parsed.query:  # names the process in pg_stat_activity
        connect_args["application_name"] = application_name
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args=connect_args,
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
