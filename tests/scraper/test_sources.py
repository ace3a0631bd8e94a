"""Recorded sources and their scheduled re-syncs: on real served sites and folders, claimed by
one process of many, listed by `docschat sources`, never deleting pages when a sync fails."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from proxy.cli.main import parser
from proxy.config import SettingError, Settings
from proxy.documents.sources import Resync
from proxy.storage.db import Database
from tests.scraper.conftest import Site, doc_page
from tests.support import Live, live_env, query, wait_until


def settings_for(db_url: str, emulator: Any, **env: str) -> Settings:
    return Settings.from_env(live_env(db_url, emulator, **env))


def command(capsys, settings: Settings, *argv: str) -> tuple[int, str, str]:
    """Run one docschat command in this process; returns code, stdout, stderr."""
    args = parser().parse_args(list(argv))
    code = args.run(args, settings)
    out, err = capsys.readouterr()
    return code, out, err


def sources(capsys, settings: Settings) -> list[dict[str, Any]]:
    code, out, err = command(capsys, settings, "sources", "--json")
    assert code == 0, err
    return json.loads(out)


def two_pages(site: Site) -> None:
    site.raw("/robots.txt", 404)
    site.page("/docs/", doc_page("Home", "The home page links the guide.", ["/docs/guide.html"]))
    site.page("/docs/guide.html", doc_page("Guide", "The first edition of the guide text."))


def stored_text(db_url: str, url: str) -> str:
    rows = query(db_url, "SELECT text FROM documents WHERE url = :u", u=url)
    return rows[0][0] if rows else ""


def test_a_scraped_site_is_recorded_and_resynced_by_one_process_of_many(
    db_url: str, emulator, site: Site, capsys
):
    settings = settings_for(db_url, emulator, DOCSCHAT_SYNC_INTERVAL="1")
    two_pages(site)
    code, _, err = command(capsys, settings, "scrape", site.url + "/docs/", "--max-pages", "9")
    assert code == 0, err
    [recorded] = sources(capsys, settings)
    assert recorded["location"] == site.url + "/docs/" and recorded["kind"] == "site"
    assert (recorded["pages"], recorded["error"]) == (2, None)
    assert recorded["bytes"] > 40 and recorded["options"]["max_pages"] == 9

    site.page("/docs/guide.html", doc_page("Guide", "The second edition of the guide text."))
    dbs = [Database(settings.database_url) for _ in range(3)]
    resyncs = [Resync(settings, db, f"host:{n}") for n, db in enumerate(dbs)]
    # Each sees the source as due (its last sync is over a second old); one claim wins.
    wait_until(lambda: all(r.due() for r in resyncs), timeout=5)
    done: list[int] = []
    threads = [threading.Thread(target=lambda r=r: done.append(r.run_due())) for r in resyncs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for db in dbs:
        db.dispose()
    assert sorted(done) == [0, 0, 1]
    assert "second edition" in stored_text(db_url, site.url + "/docs/guide.html")
    [after] = sources(capsys, settings)
    assert after["last_sync"] > recorded["last_sync"] and after["error"] is None


def test_a_failing_sync_keeps_every_page_and_says_why(db_url: str, emulator, site: Site, capsys):
    settings = settings_for(db_url, emulator, DOCSCHAT_SYNC_INTERVAL="1")
    two_pages(site)
    assert command(capsys, settings, "scrape", site.url + "/docs/")[0] == 0
    # The site breaks: every page answers 404 now.
    site.remove("/docs/")
    site.remove("/docs/guide.html")
    db = Database(settings.database_url)
    try:
        resync = Resync(settings, db, "host:1")
        wait_until(resync.due, timeout=5)
        assert resync.run_due() == 1
    finally:
        db.dispose()
    assert "first edition" in stored_text(db_url, site.url + "/docs/guide.html")
    [recorded] = sources(capsys, settings)
    assert recorded["pages"] == 2 and recorded["error"]
    code, out, _ = command(capsys, settings, "sources")
    assert code == 0 and site.url + "/docs/" in out and "every 1 s" in out


def test_the_worker_resyncs_a_folder_on_its_schedule(tmp_path: Path, emulator, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nThe start page of the folder docs.\n")
    (docs / "setup.md").write_text("# Setup\n\nSetup takes one command and a cup of tea.\n")
    db_url = f"sqlite:///{tmp_path / 'folder.db'}"
    base = "https://docs.example.com/"
    settings = settings_for(db_url, emulator)
    assert command(capsys, settings, "scrape", str(docs), "--base-url", base)[0] == 0
    [recorded] = sources(capsys, settings)
    assert (recorded["kind"], recorded["base_url"], recorded["pages"]) == ("folder", base, 2)
    assert recorded["location"] == str(docs.resolve())
    code, out, _ = command(capsys, settings, "sources")
    assert code == 0 and "scheduled re-sync: off" in out

    (docs / "setup.md").write_text("# Setup\n\nSetup now takes two commands and coffee.\n")
    live = Live(live_env(db_url, emulator, DOCSCHAT_SYNC_INTERVAL="1s"), emulator)
    try:
        wait_until(lambda: "coffee" in stored_text(db_url, base + "setup/"), timeout=30)
    finally:
        live.close()
    [after] = sources(capsys, settings)
    assert after["last_sync"] > recorded["last_sync"] and after["error"] is None


@pytest.mark.parametrize(
    ("raw", "seconds"), [("", 0.0), ("0", 0.0), ("900", 900.0), ("90s", 90.0), ("6h", 21600.0)]
)
def test_the_sync_interval_takes_seconds_or_a_duration(raw: str, seconds: float):
    assert Settings.from_env({"DOCSCHAT_SYNC_INTERVAL": raw}).sync_interval == seconds


def test_a_sync_interval_that_is_no_duration_is_refused():
    with pytest.raises(SettingError) as refused:
        Settings.from_env({"DOCSCHAT_SYNC_INTERVAL": "every now and then"})
    assert "DOCSCHAT_SYNC_INTERVAL" in str(refused.value) and "6h" in str(refused.value)
