"""One scrape: crawl a site (or read a folder), store its pages and keep the upstream in step.

The command line and the worker's scheduled re-syncs both run it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from proxy.config import Settings
from proxy.documents.sync import (
    SyncReport,
    load_known,
    load_not_pages,
    remember_not_pages,
    sync,
)
from proxy.storage.db import Database
from scraper.crawl import CrawlError, CrawlOptions, CrawlReport, CrawlStats, crawl
from scraper.folder import FolderOptions, read_folder


class ScrapeError(Exception):
    """A scrape that could not be done; its message is one line for the operator."""


class Progress(Protocol):
    """Where a scrape reports how far it got (the command line's progress line)."""

    crawl: Callable[[CrawlStats], None]
    upload: Callable[[int, int], None]

    def done(self) -> None:
        """Clear what was shown."""
        ...


def scrape(
    url: str,
    settings: Settings,
    db: Database,
    options: CrawlOptions,
    *,
    upload: bool = True,
    dry_run: bool = False,
    prune: bool = False,
    progress: Progress | None = None,
    folder: FolderOptions | None = None,
) -> dict[str, Any]:
    """Crawl (or read `folder`), then store and upload; returns the summary.

    Raises ScrapeError on failure.
    """
    # Imported here, not at the top: `docschat --help` imports this module through the
    # command line, and the openai SDK would triple its time (see proxy/cli/main.py).
    from proxy.upstream.errors import UpstreamError
    from proxy.upstream.failures import upstream_failure

    began = time.monotonic()
    knowledge = None
    try:
        if upload and not dry_run:
            knowledge = _knowledge(settings, db)
        known = load_known(db)
        if folder is not None:
            report = read_folder(Path(url), folder, known)
        else:
            not_pages = load_not_pages(db)
            with _extract_pool() as pool:
                report = crawl(
                    url, options, known, progress.crawl if progress else None, pool, not_pages
                )
        if progress:
            progress.done()
        result = sync(
            db,
            report,
            knowledge,
            dry_run=dry_run,
            prune=prune,
            uploading=upload,
            progress=progress.upload if progress else None,
        )
        if not dry_run:
            remember_not_pages(db, report)
        if progress:
            progress.done()
    except CrawlError as exc:
        raise ScrapeError(str(exc)) from exc
    except UpstreamError as exc:
        raise ScrapeError(f"upstream error: {upstream_failure(exc, settings)}") from exc
    except SQLAlchemyError as exc:
        raise ScrapeError(f"database error: {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        if progress:
            progress.done()
    return summarize(report, result, time.monotonic() - began, dry_run=dry_run, upload=upload)


def _knowledge(settings: Settings, db: Database) -> Any:
    """The upstream store, created or verified by setup (idempotent)."""
    # Imported when used, for `docschat --help`'s sake: see scrape() above.
    from proxy.setup import run_setup
    from proxy.upstream.factory import make_client
    from proxy.upstream.knowledge import Knowledge

    recorded = run_setup(settings, db)
    # Knowledge retries by itself and counts the retries; the SDK's own would hide them.
    return Knowledge(make_client(settings, retries=0), recorded.vector_store_id)


def _extract_pool() -> AbstractContextManager[Executor | None]:
    """Worker processes for extraction when there are spare CPUs (started only when used)."""
    cpus = os.cpu_count() or 1
    if cpus < 2:
        return nullcontext()
    return ProcessPoolExecutor(max_workers=min(cpus, 4), mp_context=get_context("spawn"))


def scrape_site(
    url: str, settings: Settings, db: Database, *, map_sitemap: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Crawl a site and sync it with upload (for the demo); returns the summary dict."""
    return scrape(url, settings, db, CrawlOptions(map_sitemap=map_sitemap))


def summarize(
    report: CrawlReport, result: SyncReport, seconds: float, *, dry_run: bool, upload: bool
) -> dict[str, Any]:
    """The summary every output form is made from."""
    stats = report.stats
    skipped = [r for r in report.results if r.status == "skipped"]
    failed = [r for r in report.results if r.status == "failed"]
    return {
        "url": report.start_url,
        "scope": report.scope.origin + report.scope.prefix,
        "dry_run": dry_run,
        "upload": upload and not dry_run,
        "pages": len(report.pages),
        "found": stats.found,
        "fetched": stats.fetched,
        "not_modified": stats.not_modified,
        "skipped": stats.skipped,
        "failed": stats.failed,
        "new": len(result.new),
        "changed": len(result.changed),
        "unchanged": result.unchanged,
        "removed": len(result.removed),
        "held": len(result.held),
        "prune_needed": result.prune_needed,
        "stored_before": result.stored_before,
        "uploaded": result.uploaded,
        "upload_failed": len(result.upload_failed),
        "upload_retries": result.upload_retries,
        "deleted_files": result.deleted_files,
        "delete_failed": len(result.delete_failed),
        "requests": stats.requests,
        "bytes": stats.bytes,
        "retries": stats.retries,
        "truncated": report.truncated,
        "seconds": round(seconds, 2),
        "crawl_seconds": round(report.seconds, 2),
        "sitemaps": report.sitemaps,
        "notes": report.notes,
        "skipped_pages": [{"url": r.url, "reason": r.reason} for r in skipped],
        "failed_pages": [{"url": r.url, "reason": r.reason} for r in failed],
        "upload_failures": [{"url": u, "reason": why} for u, why in result.upload_failed.items()],
        "delete_failures": [{"file_id": f, "reason": w} for f, w in result.delete_failed.items()],
        "removed_pages": result.removed,
        "held_pages": result.held,
    }


def exit_code(summary: dict[str, Any]) -> int:
    """0 when everything synced; 1 when the run finished with problems worth a look."""
    problems = (
        summary["failed"] + summary["upload_failed"] + summary["delete_failed"] + summary["held"]
    )
    return 1 if problems or summary["prune_needed"] else 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]
