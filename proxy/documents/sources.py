"""Recorded sources (sites and local folders scraped once) and their scheduled re-syncs.

Many processes may run the worker on one PostgreSQL database: a process claims a due source
with one conditional UPDATE (only one of them can see it succeed), syncs it, and frees it. A
process that dies mid-sync holds its claim until the claim's lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, update

from proxy.config import Settings
from proxy.documents.scrape import ScrapeError, exit_code, scrape
from proxy.storage.db import Database
from proxy.storage.models import Document, Source, utcnow
from scraper.crawl import CrawlOptions
from scraper.folder import FolderOptions

log = logging.getLogger(__name__)

# How long a claimed sync may run before another process may take the source over.
CLAIM_LEASE = timedelta(hours=2)


@dataclass(frozen=True)
class SourceSpec:
    """What to scrape again: a start URL, or a folder with the URL it is published at."""

    location: str
    base_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_folder(self) -> bool:
        """Whether the source is a local folder."""
        return self.base_url is not None

    @property
    def scope(self) -> str:
        """The URL prefix the source's pages live under."""
        return self.base_url if self.base_url is not None else self.location

    def crawl_options(self) -> CrawlOptions:
        """The crawl options the source was recorded with."""
        o = self.options
        mapped = o.get("map_sitemap")
        return CrawlOptions(
            max_pages=int(o.get("max_pages", 5000)),
            include=tuple(o.get("include") or ()),
            exclude=tuple(o.get("exclude") or ()),
            concurrency=int(o.get("concurrency", 8)),
            map_sitemap=(str(mapped[0]), str(mapped[1])) if mapped else None,
        )

    def folder_options(self) -> FolderOptions | None:
        """The folder options, for a folder source."""
        if self.base_url is None:
            return None
        c = self.crawl_options()
        style = str(self.options.get("url_style") or "dir")
        return FolderOptions(self.base_url, style, c.include, c.exclude, c.max_pages)


def spec_of(
    location: str, options: CrawlOptions, folder: FolderOptions | None, *, upload: bool = True
) -> SourceSpec:
    """The record of a scrape's source: folders by absolute path, with their options."""
    recorded: dict[str, Any] = {
        "upload": upload,
        "max_pages": options.max_pages,
        "include": list(options.include),
        "exclude": list(options.exclude),
        "concurrency": options.concurrency,
        "map_sitemap": list(options.map_sitemap) if options.map_sitemap else None,
    }
    if folder is None:
        return SourceSpec(location, None, recorded)
    recorded["url_style"] = folder.url_style
    return SourceSpec(str(Path(location).resolve()), folder.base_url, recorded)


def problems(summary: dict[str, Any]) -> str:
    """A sync's problems in one line ('' when it synced cleanly)."""
    if not exit_code(summary):
        return ""
    parts = []
    for key, words in (
        ("failed", "pages failed"),
        ("upload_failed", "uploads failed"),
        ("delete_failed", "deletions failed"),
    ):
        if summary[key]:
            parts.append(f"{summary[key]} {words}")
    if summary["prune_needed"]:
        parts.append(f"{summary['held']} vanished pages kept by the prune guard")
    elif summary["held"]:
        parts.append(f"{summary['held']} vanished pages kept")
    return "; ".join(parts)


def _stored(db: Database, scope: str) -> tuple[int, int]:
    """Pages stored under a URL prefix, and the bytes of their text."""
    with db.read() as s:
        rows = s.execute(select(Document.url, func.length(Document.text))).all()
    sizes = [n or 0 for url, n in rows if url.startswith(scope)]
    return len(sizes), sum(sizes)


def _release(row: Source, owner: str | None) -> None:
    """End the claim `owner` holds on a source. Another process's claim stays (one that took
    over an expired claim, or a worker syncing while an operator's `docschat scrape` ran)."""
    if owner is not None and row.claimed_by == owner:
        row.claimed_by = row.claimed_until = None


def record(
    db: Database,
    spec: SourceSpec,
    error: str = "",
    scope: str | None = None,
    owner: str | None = None,
) -> None:
    """Record (or update) a source after a sync: when, any error, and the pages and bytes
    stored under `scope` (the sync's scope; a sync that failed before it had one keeps the
    counts it had); `owner` gives up its claim."""
    counted = _stored(db, scope) if scope is not None else None
    with db.session() as s:
        row = s.scalars(select(Source).where(Source.location == spec.location)).first()
        if row is None:
            row = Source(location=spec.location, pages=0, bytes=0)
            s.add(row)
        row.base_url = spec.base_url
        row.options = dict(spec.options)
        row.last_sync_at = utcnow()
        if counted is not None:
            row.pages, row.bytes = counted
        row.error = error[:2000]
        _release(row, owner)


def record_failure(db: Database, spec: SourceSpec, error: str, owner: str | None = None) -> bool:
    """Note a failed sync on a recorded source (its counts stay); False when not recorded;
    `owner` gives up its claim."""
    with db.session() as s:
        row = s.scalars(select(Source).where(Source.location == spec.location)).first()
        if row is None:
            return False
        row.last_sync_at = utcnow()
        row.error = (error or "failed")[:2000]
        _release(row, owner)
    return True


def listing(db: Database) -> list[dict[str, Any]]:
    """Every recorded source with its last sync, oldest recorded first."""
    with db.read() as s:
        rows = s.scalars(select(Source).order_by(Source.id)).all()
        return [
            {
                "location": r.location,
                "kind": "folder" if r.base_url is not None else "site",
                "base_url": r.base_url,
                "options": r.options,
                "last_sync": r.last_sync_at.isoformat() if r.last_sync_at else None,
                "pages": r.pages,
                "bytes": r.bytes,
                "error": r.error or None,
                "syncing": bool(r.claimed_until and r.claimed_until > utcnow()),
            }
            for r in rows
        ]


def _spec(row: Source) -> SourceSpec:
    return SourceSpec(row.location, row.base_url, dict(row.options or {}))


class Resync:
    """Re-syncs every recorded source that is due, one process per source at a time."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        owner: str,
        *,
        sync: Callable[[SourceSpec], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.owner = owner
        self.interval = timedelta(seconds=settings.sync_interval)
        self.sync = sync or self._scrape

    def _scrape(self, spec: SourceSpec) -> dict[str, Any]:
        """Scrape the source as `docschat scrape` did, uploading what changed (never pruning)."""
        return scrape(
            spec.location,
            self.settings,
            self.db,
            spec.crawl_options(),
            upload=bool(spec.options.get("upload", True)),
            folder=spec.folder_options(),
        )

    def due(self, now: datetime | None = None) -> list[int]:
        """Ids of the sources whose last sync is an interval old (or that never synced)."""
        now = now or utcnow()
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(Source.id)
                    .where(*self._due(now))
                    .order_by(Source.last_sync_at.is_not(None), Source.last_sync_at, Source.id)
                )
            )

    def _due(self, now: datetime) -> tuple[Any, ...]:
        return (
            or_(Source.last_sync_at.is_(None), Source.last_sync_at <= now - self.interval),
            or_(Source.claimed_until.is_(None), Source.claimed_until < now),
        )

    def claim(self, source_id: int, now: datetime | None = None) -> SourceSpec | None:
        """Take a due source for this process; None when another process was first."""
        now = now or utcnow()
        with self.db.session() as s:
            taken = s.execute(
                update(Source)
                .where(Source.id == source_id, *self._due(now))
                .values(claimed_by=self.owner, claimed_until=now + CLAIM_LEASE)
            )
            if taken.rowcount != 1:
                return None
            row = s.get(Source, source_id)
            return _spec(row) if row is not None else None

    def run_due(self) -> int:
        """Sync every due source this process can claim; returns how many it synced."""
        done = 0
        for source_id in self.due():
            spec = self.claim(source_id)
            if spec is None:
                continue
            try:
                summary = self.sync(spec)
            except ScrapeError as exc:
                # Nothing was removed: a failed sync only records why it failed.
                log.warning("re-sync of %s failed: %s", spec.location, exc)
                record_failure(self.db, spec, str(exc), self.owner)
            except Exception as exc:
                log.exception("re-sync of %s failed", spec.location)
                record_failure(self.db, spec, f"{type(exc).__name__}: {exc}", self.owner)
            else:
                trouble = problems(summary)
                log.info("re-synced %s%s", spec.location, f" ({trouble})" if trouble else "")
                record(self.db, spec, trouble, summary.get("scope"), self.owner)
            done += 1
        return done
