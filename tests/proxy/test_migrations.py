"""Alembic from the repository (alembic.ini at its root), and models that agree with the migrations
on SQLite and PostgreSQL: after `upgrade head`, autogenerate finds nothing to add."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from proxy.storage.db import Database
from proxy.storage.models import Base
from tests.support import ROOT, new_pg_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: a new SQLite file or a new PostgreSQL database (not a
    schema, so Alembic's view of it is exactly what a fresh deployment has)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with new_pg_database("docschat_mig") as url:
        yield url


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `alembic` command line from the repository root, as a maintainer would."""
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def differences(url: str) -> list[object]:
    """What autogenerate would write for this database, server defaults and types included."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_alembic_runs_from_the_repository_and_agrees_with_the_models(empty_db: str) -> None:
    before = alembic(empty_db, "current")
    assert before.returncode == 0, before.stderr
    assert "(head)" not in before.stdout

    upgraded = alembic(empty_db, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade" in upgraded.stderr

    current = alembic(empty_db, "current")
    assert current.returncode == 0 and "(head)" in current.stdout, current.stderr

    checked = alembic(empty_db, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout
    assert differences(empty_db) == []

    # The programmatic path (every process's start, `docschat db upgrade`) sees the same head.
    db = Database(empty_db)
    try:
        db.upgrade()
    finally:
        db.dispose()
    assert "(head)" in alembic(empty_db, "current").stdout


def test_alembic_check_reports_a_schema_the_models_do_not_have(empty_db: str) -> None:
    assert alembic(empty_db, "upgrade", "head").returncode == 0
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE stray_notes (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()

    checked = alembic(empty_db, "check")
    assert checked.returncode != 0
    assert "stray_notes" in checked.stdout + checked.stderr
