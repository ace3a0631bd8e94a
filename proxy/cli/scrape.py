"""`docschat scrape` and `docschat docs`: crawl, store and upload a site; list what is stored."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from proxy.config import Settings
from proxy.documents.scrape import (
    ScrapeError,
    _first_line,
    exit_code,
    scrape,
)
from proxy.documents.sources import (
    SourceSpec,
    listing,
    problems,
    record,
    record_failure,
    spec_of,
)
from proxy.storage.db import Database
from proxy.storage.models import Document
from scraper.crawl import CrawlOptions, CrawlStats
from scraper.folder import URL_STYLES, FolderOptions

DEFAULT_MAX_PAGES = 5000
DEFAULT_CONCURRENCY = 8


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _concurrency(value: str) -> int:
    number = _positive(value)
    if number > 128:
        raise argparse.ArgumentTypeError("at most 128 requests at once")
    return number


def _web_url(value: str) -> str | None:
    """`value` as an http(s) URL with a host (and a valid port), or None."""
    parts = urlsplit(value.strip())
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != -1
    except ValueError:  # a port that is no number, or out of range
        valid = False
    return value.strip() if valid else None


def _start(value: str) -> str:
    """Where to start: checked before anything is written or asked upstream."""
    if _web_url(value) or Path(value).is_dir():
        return _web_url(value) or value
    raise argparse.ArgumentTypeError(
        f"not an http(s) URL or a folder: {value!r}; give the docs' start page, e.g. "
        "https://docs.example.com/guide/, or a folder with --base-url"
    )


def _base_url(value: str) -> str:
    """The URL a folder is published at."""
    url = _web_url(value)
    if url is None:
        raise argparse.ArgumentTypeError(
            f"not an http(s) URL: {value!r}, e.g. https://docs.example.com/"
        )
    return url


def _mapping(value: str) -> tuple[str, str]:
    source, sep, target = value.partition("=")
    if (
        not sep
        or not source.startswith(("http://", "https://"))
        or not target.startswith(("http://", "https://"))
    ):
        raise argparse.ArgumentTypeError(
            "expected FROM=TO with two base URLs, e.g. https://docs.example.com=http://localhost:8000"
        )
    return source, target


def add_scrape_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the flags of `docschat scrape`."""
    parser.add_argument(
        "url",
        metavar="URL",
        type=_start,
        help="start page (http or https; the crawl stays under its folder), or a local folder "
        "with --base-url",
    )
    parser.add_argument(
        "--max-pages",
        type=_positive,
        default=DEFAULT_MAX_PAGES,
        metavar="N",
        help="fetch at most N pages",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only pages whose path (or full URL, if the glob has ://) matches; repeatable",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip pages whose path (or full URL) matches; repeatable",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="requests in flight at once (at most 128)",
    )
    parser.add_argument(
        "--map-sitemap",
        type=_mapping,
        metavar="FROM=TO",
        help="read sitemap URLs starting with FROM as starting with TO (a staging or local copy)",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        type=_base_url,
        help="read a local folder of .md/.mdx/.html as the site published at URL",
    )
    parser.add_argument(
        "--url-style",
        choices=URL_STYLES,
        default="dir",
        help="a folder's guide/install.md is published as guide/install/ (dir, the default) "
        "or guide/install.html (html)",
    )
    parser.add_argument(
        "--no-upload", action="store_true", help="store pages locally, do not touch the upstream"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="fetch and extract, report, but write nothing"
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="remove vanished pages even when the crawl found far fewer pages than last time",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def add_docs_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the flags of `docschat docs`."""
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


# --- the scrape -----------------------------------------------------------------------------


# --- output ---------------------------------------------------------------------------------


class _Progress:
    """A one-line progress display on a terminal (stderr), redrawn at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def _draw(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self.shown = True

    def crawl(self, stats: CrawlStats) -> None:
        """Show crawl counts."""
        done = stats.fetched + stats.unchanged + stats.skipped + stats.failed
        width = 24
        filled = int(width * done / stats.found) if stats.found else 0
        bar = "#" * filled + "-" * (width - filled)
        self._draw(
            f"crawling [{bar}] {done}/{stats.found}  fetched {stats.fetched}  "
            f"unchanged {stats.unchanged}  skipped {stats.skipped}  failed {stats.failed}"
        )

    def upload(self, done: int, total: int) -> None:
        """Show upload counts."""
        self._draw(f"uploading {done}/{total} files", force=done == total)

    def done(self) -> None:
        """Clear the line."""
        if self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def format_summary(s: dict[str, Any], limit: int = 8) -> str:
    """A one-screen, human summary of a scrape."""
    verb = "would be" if s["dry_run"] else ""
    lines = [f"scraped {s['scope']} in {s['seconds']:.1f}s" + (" (dry run)" if verb else "")]
    lines.append(
        f"  pages      {s['found']} found: {s['fetched']} fetched, "
        f"{s['not_modified']} not modified, {s['skipped']} skipped, {s['failed']} failed"
    )
    lines.append(
        f"  documents  {s['new']} new, {s['changed']} changed, {s['unchanged']} unchanged, "
        f"{s['removed']} removed" + (f" {verb}" if verb else "")
    )
    if s["upload"]:
        retries = f" ({_plural(s['upload_retries'], 'retry')})" if s["upload_retries"] else ""
        fails = f", {s['upload_failed']} failed" if s["upload_failed"] else ""
        lines.append(
            f"  upstream   {_plural(s['uploaded'], 'file')} uploaded{retries}{fails}, "
            f"{s['deleted_files']} deleted"
        )
    elif s["dry_run"]:
        lines.append(f"  upstream   {_plural(s['uploaded'], 'file')} would be uploaded")
    else:
        lines.append("  upstream   not touched (--no-upload)")
    lines.append(
        f"  traffic    {s['requests']} requests, {_size(s['bytes'])} downloaded"
        + (f", {s['retries']} retried" if s["retries"] else "")
    )
    if s["skipped_pages"]:
        reasons = Counter(_reason_kind(p["reason"]) for p in s["skipped_pages"])
        lines.append("  skipped    " + "; ".join(f"{r}: {n}" for r, n in reasons.most_common(4)))
        lines += [f"    {p['url']}  ({p['reason']})" for p in s["skipped_pages"][:limit]]
        if len(s["skipped_pages"]) > limit:
            lines.append(f"    ... and {len(s['skipped_pages']) - limit} more (see --json)")
    for title, key in (("failed", "failed_pages"), ("not uploaded", "upload_failures")):
        if s[key]:
            lines.append(f"  {title}")
            lines += [f"    {p['url']}  ({p['reason']})" for p in s[key][:limit]]
            if len(s[key]) > limit:
                lines.append(f"    ... and {len(s[key]) - limit} more (see --json)")
    if s["truncated"]:
        lines.append("  note       stopped at --max-pages; more pages exist")
    lines += [f"  note       {note}" for note in s["notes"][:3]]
    if s["prune_needed"]:
        lines.append(
            f"  warning    {len(s['held_pages'])} vanished pages kept: removing them would delete "
            f"more than half of the {s['stored_before']} stored pages (this crawl found "
            f"{s['pages']}). If the site really shrank, run again with --prune."
        )
    elif s["held"]:
        lines.append(
            f"  note       {s['held']} vanished pages kept until a run with upload removes "
            "their files"
        )
    return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary ('duplicate of X' and 'duplicate of Y' are one kind)."""
    for marker in (" of ", " to ", " ("):
        if marker in reason and not reason.startswith(("not HTML", "not found")):
            return reason.split(marker, 1)[0]
    return reason


def run_scrape(args: argparse.Namespace, settings: Settings) -> int:
    """Run `docschat scrape`; every failure ends as one line on stderr and a non-zero exit."""
    options = CrawlOptions(
        max_pages=args.max_pages,
        include=tuple(args.include or ()),
        exclude=tuple(args.exclude or ()),
        concurrency=args.concurrency,
        map_sitemap=args.map_sitemap,
    )
    progress = _Progress(sys.stderr) if sys.stderr.isatty() and not args.json else None
    folder = None
    if args.base_url or not args.url.startswith(("http://", "https://")):
        if not Path(args.url).is_dir():
            return _fail(f"not an http(s) URL or a folder: {args.url!r}", args.json)
        if not args.base_url:
            message = f"{args.url} is a folder: give --base-url, the URL it is published at"
            return _fail(message, args.json)
        folder = FolderOptions(
            args.base_url, args.url_style, options.include, options.exclude, options.max_pages
        )
    spec = spec_of(args.url, options, folder, upload=not args.no_upload)
    db: Database | None = None
    try:
        try:
            db = Database(settings.database_url)
            _upgrade_quietly(db)
        except Exception as exc:
            raise ScrapeError(f"cannot open the database: {_first_line(exc)}") from exc
        summary = scrape(
            args.url,
            settings,
            db,
            options,
            upload=not args.no_upload,
            dry_run=args.dry_run,
            prune=args.prune,
            progress=progress,
            folder=folder,
        )
        if not args.dry_run:
            # Recorded for `docschat sources` and the worker's scheduled re-syncs.
            record(db, spec, problems(summary), summary["scope"])
    except ScrapeError as exc:
        if db is not None and not args.dry_run and not str(exc).startswith("cannot open"):
            _record_failure(db, spec, str(exc))
        return _fail(str(exc), args.json)
    finally:
        if db is not None:
            db.dispose()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return exit_code(summary)


def _record_failure(db: Database, spec: SourceSpec, error: str) -> None:
    """Note a failed scrape on its recorded source (a source that never synced is not recorded:
    a mistyped URL should not be retried on a schedule); a failing database loses only that."""
    with contextlib.suppress(SQLAlchemyError):
        record_failure(db, spec, error)


def _upgrade_quietly(db: Database) -> None:
    """Apply migrations without Alembic's INFO lines cluttering the command's output."""
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        db.upgrade()
    finally:
        logger.setLevel(level)


def _fail(message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message}))
    print(f"docschat scrape: {message}", file=sys.stderr)
    return 2


# --- docs -----------------------------------------------------------------------------------


def list_documents(db: Database) -> list[dict[str, Any]]:
    """Every stored page: url, title, characters, upstream file id, last update."""
    with db.read() as s:
        rows = s.execute(
            select(
                Document.url,
                Document.title,
                Document.text,
                Document.file_id,
                Document.updated_at,
            ).order_by(Document.url)
        ).all()
    return [
        {
            "url": url,
            "title": title,
            "characters": len(text or ""),
            "file_id": file_id,
            "updated": updated.isoformat() if updated else None,
        }
        for url, title, text, file_id, updated in rows
    ]


def _listed(
    args: argparse.Namespace,
    settings: Settings,
    command: str,
    read: Callable[[Database], list[dict[str, Any]]],
    shown: Callable[[list[dict[str, Any]]], str],
) -> int:
    """Read a list from the database and print it (as JSON with --json); 2 when it cannot."""
    try:
        db = Database(settings.database_url)
        try:
            _upgrade_quietly(db)
            found = read(db)
        finally:
            db.dispose()
    except Exception as exc:
        message = f"cannot read the database: {_first_line(exc)}"
        if args.json:
            print(json.dumps({"error": message}))
        print(f"docschat {command}: {message}", file=sys.stderr)
        return 2
    print(json.dumps(found, indent=2) if args.json else shown(found))
    return 0


def run_docs(args: argparse.Namespace, settings: Settings) -> int:
    """Run `docschat docs`: list the stored documents."""
    return _listed(args, settings, "docs", list_documents, format_documents)


def run_sources(args: argparse.Namespace, settings: Settings) -> int:
    """Run `docschat sources`: every recorded source with its last sync."""
    shown = partial(format_sources, interval=settings.sync_interval)
    return _listed(args, settings, "sources", listing, shown)


def format_sources(sources: list[dict[str, Any]], interval: float) -> str:
    """A plain table of recorded sources, then the schedule."""
    if not sources:
        return "no sources recorded yet; run `docschat scrape URL` (or PATH --base-url URL)"
    header = ("LAST SYNC", "PAGES", "SIZE", "SOURCE", "ERROR")
    rows = [
        (
            (s["last_sync"] or "never")[:16].replace("T", " "),
            str(s["pages"]),
            _size(s["bytes"]),
            s["location"] + (f" -> {s['base_url']}" if s["base_url"] else ""),
            s["error"] or "-",
        )
        for s in sources
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    out = []
    for row in [header, *rows]:
        cells = [
            row[i].rjust(widths[i]) if i in (1, 2) else row[i].ljust(widths[i]) for i in range(4)
        ]
        out.append("  ".join([*cells, row[4]]).rstrip())
    every = f"every {interval:g} s" if interval else "off (set DOCSCHAT_SYNC_INTERVAL)"
    out.append(f"{_plural(len(sources), 'source')}; scheduled re-sync: {every}")
    return "\n".join(out)


def format_documents(docs: list[dict[str, Any]], *, width: int = 48) -> str:
    """A plain table of stored documents."""
    if not docs:
        return "no documents stored yet; run `docschat scrape URL`"
    header = ("UPDATED", "CHARS", "FILE", "TITLE", "URL")
    rows = [
        (
            (d["updated"] or "")[:16].replace("T", " "),
            str(d["characters"]),
            d["file_id"] or "-",
            _cut(d["title"], 32),
            _cut(d["url"], width + 32),
        )
        for d in docs
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    out = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) if i != 1 else row[i].rjust(widths[i]) for i in range(4)]
        out.append("  ".join([*cells, row[4]]))
    uploaded = sum(1 for d in docs if d["file_id"])
    out.append(f"{_plural(len(docs), 'document')}, {uploaded} uploaded")
    return "\n".join(out)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
