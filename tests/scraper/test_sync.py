"""Storing and uploading: re-runs cost nothing, changes replace files, vanished pages go."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import NotFoundError, OpenAI
from sqlalchemy import select

from proxy.config import Settings
from proxy.documents.scrape import exit_code, scrape
from proxy.storage.db import Database
from proxy.storage.models import Document
from scraper.crawl import CrawlOptions
from tests.scraper.conftest import Site, doc_page, small_site

FAST = CrawlOptions(backoff=0.01)


class Harness:
    """A database, an emulator and a site, with the scrape command's core between them."""

    def __init__(self, db_url: str, emulator: Any, site: Site) -> None:
        self.settings = Settings.from_env(
            {}, openai_base_url=emulator.base_url, openai_api_key="k", database_url=db_url
        )
        self.db = Database(db_url)
        self.db.upgrade()
        self.emulator = emulator
        self.site = site
        self.client = OpenAI(api_key="k", base_url=emulator.base_url)

    def scrape(self, **kwargs: Any) -> dict[str, Any]:
        return scrape(self.site.url + "/docs/", self.settings, self.db, FAST, **kwargs)

    def docs(self) -> dict[str, Document]:
        with self.db.read() as s:
            return {d.url: d for d in s.scalars(select(Document))}

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.emulator.url}/_emulator/stats").json()["requests"]

    def uploads(self) -> int:
        return self.stats().get("POST /v1/files", 0)

    def faults(self, *faults: dict[str, Any]) -> None:
        r = httpx.post(f"{self.emulator.url}/_emulator/faults", json={"faults": list(faults)})
        assert r.status_code < 300, r.text

    def file_exists(self, file_id: str) -> bool:
        try:
            self.client.files.retrieve(file_id)
        except NotFoundError:
            return False
        return True

    def store_files(self) -> dict[str, dict[str, Any]]:
        with self.db.read() as s:
            from proxy.storage.models import Setting

            store = s.get(Setting, "vector_store_id")
            assert store is not None
            store_id = store.value
        return {f.id: f.attributes or {} for f in self.client.vector_stores.files.list(store_id)}


@pytest.fixture
def harness(tmp_path: Path, emulator: Any, site: Site) -> Iterator[Callable[..., Harness]]:
    """Make harnesses (on a given database URL, or a fresh SQLite file)."""
    made: list[Harness] = []

    def make(db_url: str | None = None) -> Harness:
        h = Harness(db_url or f"sqlite:///{tmp_path / 'scrape.db'}", emulator, site)
        made.append(h)
        return h

    yield make
    for h in made:
        h.db.dispose()


def test_first_run_uploads_every_page_and_a_rerun_uploads_nothing(harness, db_url):
    h = harness(db_url)
    urls = small_site(h.site, 5)
    first = h.scrape()
    assert (first["new"], first["uploaded"], first["pages"]) == (6, 6, 6)
    assert exit_code(first) == 0
    docs = h.docs()
    assert sorted(docs) == sorted(urls)
    assert all(d.file_id and d.etag and d.content_hash for d in docs.values())
    attributes = h.store_files()
    assert {a["url"] for a in attributes.values()} == set(urls)
    assert {a["title"] for a in attributes.values()} >= {"Home", "Page 3"}

    before = h.uploads()
    h.site.clear()
    again = h.scrape()
    assert (again["not_modified"], again["uploaded"], again["new"], again["changed"]) == (
        6,
        0,
        0,
        0,
    )
    assert h.uploads() == before
    hits = [x for x in h.site.requests() if x.path.endswith((".html", "/docs/"))]
    assert hits and all(x.status == 304 and x.headers.get("if-none-match") for x in hits)
    assert h.docs()[urls[1]].file_id == docs[urls[1]].file_id


def test_a_changed_page_replaces_its_file(harness, db_url):
    h = harness(db_url)
    urls = small_site(h.site, 3)
    h.scrape()
    old = h.docs()[urls[2]].file_id
    h.site.page("/docs/page-1.html", doc_page("Page 1", "Rewritten: topic one is now different."))
    result = h.scrape()
    assert (result["changed"], result["uploaded"], result["deleted_files"]) == (1, 1, 1)
    doc = h.docs()[urls[2]]
    assert doc.file_id != old and "Rewritten" in doc.text
    assert not h.file_exists(old)
    assert old not in h.store_files()
    content = h.client.files.content(doc.file_id).read().decode()
    assert "Rewritten: topic one is now different." in content


def test_a_removed_page_is_pruned(harness):
    h = harness()
    urls = small_site(h.site, 4)
    h.scrape()
    gone = h.docs()[urls[3]].file_id
    h.site.remove("/docs/page-2.html")
    result = h.scrape()
    assert result["removed_pages"] == [urls[3]]
    assert urls[3] not in h.docs()
    assert not h.file_exists(gone)
    assert gone not in h.store_files()


def test_the_prune_guard_keeps_pages_when_most_vanish(harness):
    h = harness()
    urls = small_site(h.site, 5)
    h.scrape()
    for i in range(1, 5):
        h.site.remove(f"/docs/page-{i}.html")
    held = h.scrape()
    assert held["prune_needed"] and held["held"] == 4 and held["removed"] == 0
    assert exit_code(held) == 1
    assert sorted(h.docs()) == sorted(urls)

    pruned = h.scrape(prune=True)
    assert pruned["removed"] == 4 and not pruned["prune_needed"]
    assert sorted(h.docs()) == [urls[0], urls[1]]


def test_an_upload_failure_is_retried(harness):
    h = harness()
    small_site(h.site, 2)
    h.faults({"kind": "http_500", "times": 2, "match": "POST /v1/files"})
    h.faults({"kind": "http_500", "times": 1, "match": "file_batches"})
    result = h.scrape()
    assert result["uploaded"] == 3 and result["upload_failed"] == 0
    assert result["upload_retries"] >= 3
    assert all(d.file_id for d in h.docs().values())


def test_an_upload_that_keeps_failing_is_reported_then_caught_up(harness):
    h = harness()
    urls = small_site(h.site, 2)
    h.faults({"kind": "http_500", "times": 1000, "match": "POST /v1/files"})
    failed = h.scrape()
    assert failed["upload_failed"] == 3 and failed["uploaded"] == 0
    assert {f["url"] for f in failed["upload_failures"]} == set(urls)
    assert "500" in failed["upload_failures"][0]["reason"]
    assert exit_code(failed) == 1
    assert all(d.file_id is None for d in h.docs().values())

    httpx.delete(f"{h.emulator.url}/_emulator/faults")
    caught_up = h.scrape()
    assert caught_up["not_modified"] == 3 and caught_up["uploaded"] == 3
    assert all(d.file_id for d in h.docs().values())


def test_no_upload_stores_locally_and_a_later_run_uploads(harness):
    h = harness()
    small_site(h.site, 2)
    local = h.scrape(upload=False)
    assert local["new"] == 3 and local["uploaded"] == 0
    assert h.stats() == {}
    assert all(d.file_id is None for d in h.docs().values())
    h.site.page("/docs/page-0.html", doc_page("Page 0", "Changed while only stored locally."))
    synced = h.scrape()
    assert synced["uploaded"] == 3
    assert all(d.file_id for d in h.docs().values())


def test_dry_run_writes_nothing(harness):
    h = harness()
    small_site(h.site, 2)
    result = h.scrape(dry_run=True)
    assert result["new"] == 3 and result["uploaded"] == 3 and result["dry_run"]
    assert h.docs() == {}
    assert h.stats() == {}


def test_moved_pages_go_and_failing_pages_stay(harness):
    h = harness()
    urls = small_site(h.site, 4)
    h.scrape()
    h.site.redirect("/docs/page-0.html", "/docs/page-1.html")
    h.site.raw("/docs/page-2.html", 503)
    h.site.raw("/docs/page-3.html", 403)
    result = h.scrape()
    assert result["removed_pages"] == [urls[1]]
    assert {p["url"] for p in result["failed_pages"]} == {urls[3], urls[4]}
    assert exit_code(result) == 1
    docs = h.docs()
    assert urls[1] not in docs and {urls[3], urls[4]} <= set(docs)
    assert all(docs[u].file_id for u in (urls[3], urls[4]))
