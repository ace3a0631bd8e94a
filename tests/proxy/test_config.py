"""Settings come from the environment, with types and defaults, and README documents every one."""

import re

import pytest

from proxy.config import Settings, documented
from tests.support import ROOT

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
    with pytest.raises(SystemExit, match="DOCSCHAT_WORKER_THREADS"):
        Settings.from_env({"DOCSCHAT_WORKER_THREADS": "many"})
