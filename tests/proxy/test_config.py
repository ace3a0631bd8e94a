"""Settings come from the environment, with types and defaults, and README documents every one;
a value that is not allowed stops the start with one clear line."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import SettingError, Settings, documented
from tests.support import ROOT, free_port, run_docschat

README = (ROOT / "README.md").read_text()
SETTINGS_HEADING = "## Settings"
SEPARATOR = re.compile(r"\|(\s*:?-+:?\s*\|)+")  # |---|---| under a table's header row
CELL_SPLIT = re.compile(r"(?<!\\)\|")  # a pipe that is not escaped as \|


def _tables(markdown: str) -> list[tuple[str, list[list[str]]]]:
    """Every table of a markdown text as (the heading it sits under, its body rows' cells)."""
    tables: list[tuple[str, list[list[str]]]] = []
    heading, in_table = "", False
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.strip()
        is_row = line.startswith("|")
        if is_row and not in_table:  # a header row starts a table
            tables.append((heading, []))
        elif is_row and not SEPARATOR.fullmatch(line.strip()):
            cells = CELL_SPLIT.split(line.strip().removeprefix("|").removesuffix("|"))
            tables[-1][1].append([c.strip() for c in cells])
        in_table = is_row
    return tables


def _code(cell: str) -> str:
    """The text of a cell written as `code`."""
    assert cell.startswith("`") and cell.endswith("`"), f"not written as code: {cell}"
    return cell[1:-1]


def test_readme_settings_table_lists_every_setting_with_its_default():
    tables = _tables(README)
    under = [rows for heading, rows in tables if heading == SETTINGS_HEADING]
    assert len(under) == 1, f"README needs exactly one table under {SETTINGS_HEADING!r}"
    documented_rows = [(_code(row[0]), _code(row[1])) for row in under[0]]
    declared = [(env, default or "(empty)") for env, default, _help in documented()]
    names = [name for name, _default in documented_rows]
    assert len(names) == len(set(names)), "a setting is listed twice"
    assert dict(documented_rows) == dict(declared)


def test_no_setting_row_sits_in_another_readme_table():
    settings = {env for env, _default, _help in documented()}
    elsewhere = [
        (heading, row[0])
        for heading, rows in _tables(README)
        if heading != SETTINGS_HEADING
        for row in rows
        if row and row[0].strip("`") in settings
    ]
    assert not elsewhere, f"setting rows outside the settings table: {elsewhere}"


def test_settings_read_types_from_the_environment():
    s = Settings.from_env(
        {
            "DOCSCHAT_STREAMING": "off",
            "DOCSCHAT_WORKER_THREADS": "7",
            "DOCSCHAT_ALLOWED_ORIGINS": "https://a.example/, https://b.example",
        }
    )
    assert s.streaming is False and s.worker_threads == 7
    assert s.origins == ["https://a.example", "https://b.example"]


def test_unreadable_setting_is_a_clear_error():
    with pytest.raises(SettingError, match="DOCSCHAT_WORKER_THREADS"):
        Settings.from_env({"DOCSCHAT_WORKER_THREADS": "many"})


def _docschat(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_docschat(*args, env=env)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"DOCSCHAT_API": "bogus"},
            "docschat: DOCSCHAT_API='bogus' is not one of: responses, assistants "
            "(or empty to detect)",
        ),
        (
            {"DOCSCHAT_LOG_LEVEL": "verbose"},
            "docschat: DOCSCHAT_LOG_LEVEL='verbose' is not one of: DEBUG, INFO, WARNING, "
            "ERROR, CRITICAL",
        ),
        (
            {"DOCSCHAT_WORKER_THREADS": "0"},
            "docschat: DOCSCHAT_WORKER_THREADS='0' is not a whole number of at least 1",
        ),
        ({"DATABASE_URL": "notaurl"}, "docschat: DATABASE_URL='notaurl' is not a database URL"),
        ({"PORT": "70000"}, "docschat: PORT='70000' is not a whole number from 0 to 65535"),
        (
            {"DOCSCHAT_TICK_INTERVAL": "-1"},
            "docschat: DOCSCHAT_TICK_INTERVAL='-1' is not a number above 0",
        ),
        ({"DOCSCHAT_STREAMING": "maybe"}, "docschat: DOCSCHAT_STREAMING='maybe' is not a boolean"),
        ({"REDIS_URL": "cache:6379"}, "docschat: REDIS_URL='cache:6379' is not a Redis URL"),
        (
            {"DOCSCHAT_ALLOWED_ORIGINS": "docs.example.com"},
            "docschat: DOCSCHAT_ALLOWED_ORIGINS='docs.example.com' is not a comma-separated list",
        ),
    ],
)
def test_a_bad_value_stops_the_start_with_one_line(tmp_path: Path, env: dict[str, str], line: str):
    db = tmp_path / "never.db"
    done = _docschat("serve", "--port", "0", **{"DATABASE_URL": f"sqlite:///{db}", **env})
    assert done.returncode == 2
    assert done.stderr.startswith(line), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not db.exists()  # nothing started


def test_a_password_in_a_refused_url_is_not_echoed():
    done = _docschat("settings", DATABASE_URL="mysql://app:hunter2@db.internal/docs")
    assert done.returncode == 2
    assert "hunter2" not in done.stderr and "mysql://app:***@db.internal/docs" in done.stderr


@pytest.mark.parametrize("config", [["-c", "gunicorn.conf.py"], ["-c", "/dev/null"]])
def test_gunicorn_refuses_a_bad_value_with_one_clear_line(tmp_path: Path, config: list[str]):
    # With the Procfile's configuration, or with none (the app is then loaded in a worker).
    env = {**os.environ, "DOCSCHAT_API": "bogus", "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}
    bind = ["--bind", f"127.0.0.1:{free_port()}", "--no-control-socket"]
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", *config, *bind, "wsgi:app"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    lines = [x for x in output.splitlines() if "DOCSCHAT_API" in x]
    assert lines == [
        "docschat: DOCSCHAT_API='bogus' is not one of: responses, assistants (or empty to detect)"
    ]
    assert "Traceback" not in output


def test_postgres_urls_mean_psycopg_3():
    for scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        s = Settings.from_env({"DATABASE_URL": f"{scheme}://app:pw@db.internal:5432/docs"})
        assert s.database_url == "postgresql+psycopg://app:pw@db.internal:5432/docs"
    with pytest.raises(SettingError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": "postgresql+psycopg2://app@db/docs"})


def test_unknown_docschat_variables_are_warned_about_with_the_closest_name(tmp_path: Path):
    done = _docschat(
        "settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        DOCSCHAT_WORKERS_THREADS="4",
        DOCSCHAT_NOTHING_LIKE_IT="1",
    )
    assert done.returncode == 0, done.stderr
    warnings = [x for x in done.stderr.splitlines() if "is not a docschat setting" in x]
    assert len(warnings) == 2
    assert "DOCSCHAT_WORKERS_THREADS" in warnings[1] and "DOCSCHAT_WORKER_THREADS?" in warnings[1]
    assert "DOCSCHAT_NOTHING_LIKE_IT" in warnings[0] and "did you mean" not in warnings[0]


def test_settings_lists_every_setting_with_secrets_masked():
    secret_env = {
        "OPENAI_API_KEY": "sk-live-SECRET-key",
        "DOCSCHAT_ADMIN_TOKEN": "admin-SECRET-token",
        "DATABASE_URL": "postgres://app:db-SECRET@db.internal/docs",
        "REDIS_URL": "redis://:redis-SECRET@cache.internal:6379/0",
        "DOCSCHAT_WORKER_THREADS": "7",
    }
    table = _docschat("settings", **secret_env)
    listed = _docschat("settings", "--json", **secret_env)
    assert table.returncode == listed.returncode == 0, table.stderr
    assert "SECRET" not in table.stdout + listed.stdout
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert list(rows) == [env for env, _default, _help in documented()]
    assert rows["DOCSCHAT_WORKER_THREADS"] == {
        "name": "DOCSCHAT_WORKER_THREADS",
        "default": "32",
        "value": "7",
    }
    assert rows["OPENAI_API_KEY"]["value"] == "***"
    assert rows["DATABASE_URL"]["value"] == "postgresql+psycopg://app:***@db.internal/docs"
    assert rows["REDIS_URL"]["value"] == "redis://:***@cache.internal:6379/0"
    line = next(x for x in table.stdout.splitlines() if x.startswith("DOCSCHAT_WORKER_THREADS"))
    assert line.split() == ["DOCSCHAT_WORKER_THREADS", "7", "32"]
