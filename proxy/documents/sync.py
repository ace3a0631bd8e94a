"""Store crawled pages in the documents table and keep the upstream vector store in step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from proxy.storage.db import Database
from proxy.storage.models import Document, SkippedUrl, utcnow
from scraper.crawl import CrawlReport, Known, PageResult
from scraper.extract import content_hash

if TYPE_CHECKING:  # the openai SDK is slow to import; only uploads need it
    from proxy.upstream.knowledge import Knowledge, PageFile

# Deleting more than this share of the stored pages at once needs --prune.
PRUNE_GUARD = 0.5
# A URL found not to be a page is asked for again after this long (a site may change it).
RECHECK_SKIPPED = timedelta(days=30)


@dataclass(frozen=True)
class Stored:
    """A snapshot of one documents row."""

    id: int
    url: str
    title: str
    text: str
    content_hash: str
    file_id: str | None
    etag: str | None
    last_modified: str | None

    @property
    def synced(self) -> bool:
        """Whether the upstream file holds the stored text (content_hash is what was uploaded)."""
        return self.file_id is not None and self.content_hash == content_hash(self.title, self.text)


@dataclass
class SyncReport:
    """What a sync changed (or, in a dry run, would change)."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    uploaded: int = 0
    upload_failed: dict[str, str] = field(default_factory=dict)
    deleted_files: int = 0
    delete_failed: dict[str, str] = field(default_factory=dict)
    upload_retries: int = 0
    stored_before: int = 0
    prune_needed: bool = False


def load_known(db: Database) -> dict[str, Known]:
    """Validators and text of every stored page, for conditional re-fetching."""
    with db.read() as s:
        rows = s.execute(
            select(Document.url, Document.etag, Document.last_modified, Document.text)
        ).all()
    return {url: Known(url, etag, modified, text or "") for url, etag, modified, text in rows}


def load_not_pages(db: Database) -> set[str]:
    """URLs a recent crawl found not to be pages, so a re-run does not ask for them again."""
    since = utcnow() - RECHECK_SKIPPED
    with db.read() as s:
        return set(s.scalars(select(SkippedUrl.url).where(SkippedUrl.checked_at >= since)))


def remember_not_pages(db: Database, report: CrawlReport) -> int:
    """Record (or refresh) the URLs this crawl found not to be pages; returns how many."""
    reasons = {r.requested or r.url: r.reason for r in report.results if r.status == "skipped"}
    urls = [u for u in dict.fromkeys(report.not_pages) if len(u) <= 2048]
    if not urls:
        return 0
    now = utcnow()
    with db.session() as s:
        for i in range(0, len(urls), 500):
            chunk = urls[i : i + 500]
            rows = {
                r.url: r for r in s.scalars(select(SkippedUrl).where(SkippedUrl.url.in_(chunk)))
            }
            for url in chunk:
                row = rows.get(url) or SkippedUrl(url=url)
                row.reason = reasons.get(url, "")[:256]
                row.checked_at = now
                s.add(row)
    return len(urls)


def _stored(db: Database, report: CrawlReport) -> dict[str, Stored]:
    """The stored pages that belong to this crawl's scope."""
    with db.read() as s:
        docs = s.scalars(select(Document)).all()
        return {
            d.url: Stored(
                d.id, d.url, d.title, d.text, d.content_hash, d.file_id, d.etag, d.last_modified
            )
            for d in docs
            if report.scope.contains(d.url)
        }


@dataclass
class _Plan:
    """Per-URL decisions before anything is written."""

    present: dict[str, PageResult] = field(default_factory=dict)
    upload: dict[str, PageFile] = field(default_factory=dict)
    vanished: set[str] = field(default_factory=set)


def _plan(report: CrawlReport, stored: dict[str, Stored], uploading: bool) -> _Plan:
    plan = _Plan()
    for result in report.results:
        if result.status in ("fetched", "unchanged"):
            plan.present[result.url] = result
            if result.requested and result.requested != result.url:
                # The page now lives at another address: the old one is gone.
                plan.vanished.add(result.requested)
        elif result.status == "skipped":
            plan.vanished.update(u for u in (result.url, result.requested) if u)
    plan.vanished = {u for u in plan.vanished if u in stored and u not in plan.present}
    if not uploading:
        return plan
    from proxy.upstream.knowledge import PageFile

    for url, result in plan.present.items():
        old = stored.get(url)
        if result.page is not None:
            page = result.page
            if old is None or not old.synced or old.content_hash != page.content_hash:
                plan.upload[url] = PageFile(url, page.title, page.text)
        elif old is not None and not old.synced:
            # Unchanged on the site, but an earlier run stored it without uploading.
            plan.upload[url] = PageFile(url, old.title, old.text)
    return plan


def sync(
    db: Database,
    report: CrawlReport,
    knowledge: Knowledge | None,
    *,
    dry_run: bool = False,
    prune: bool = False,
    uploading: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Upsert pages by URL, upload new and changed ones, remove vanished ones (guarded).

    `uploading` (default: whether `knowledge` is given) lets a dry run plan the uploads.
    """
    uploading = knowledge is not None if uploading is None else uploading
    stored = _stored(db, report)
    plan = _plan(report, stored, uploading)
    out = SyncReport(stored_before=len(stored))
    for url, result in plan.present.items():
        old = stored.get(url)
        if old is None:
            out.new.append(url)
        elif result.page is not None and result.page.content_hash != content_hash(
            old.title, old.text
        ):
            out.changed.append(url)
        else:
            out.unchanged += 1
    removing = sorted(plan.vanished)
    # Failed pages are neither found nor gone, so the guard counts what would be deleted.
    if removing and not prune and len(removing) > PRUNE_GUARD * len(stored):
        out.held, removing = removing, []
        out.prune_needed = True
    if not uploading:
        # Without the upstream, rows whose files are still up there must stay to be cleaned later.
        out.held += [u for u in removing if stored[u].file_id]
        removing = [u for u in removing if not stored[u].file_id]
    if dry_run:
        out.removed = removing
        out.uploaded = len(plan.upload)
        return out

    uploaded: dict[str, str] = {}
    if knowledge is not None and plan.upload:
        outcome = knowledge.upload(list(plan.upload.values()), progress)
        uploaded = outcome.file_ids
        out.upload_failed = outcome.failed
        out.upload_retries = outcome.retries
        out.uploaded = len(uploaded)

    replaced = _write(db, plan, uploaded)

    if knowledge is not None:
        doomed = [stored[u].file_id for u in removing if stored[u].file_id]
        failures = knowledge.remove([f for f in doomed if f]) if doomed else {}
        kept = {u for u in removing if stored[u].file_id in failures}
        gone = [u for u in removing if u not in kept]
        out.delete_failed.update(failures)
        out.deleted_files += len(doomed) - len(failures)
        removing = gone
        if replaced:
            old_failures = knowledge.remove(replaced)
            out.delete_failed.update(old_failures)
            out.deleted_files += len(replaced) - len(old_failures)
    if removing:
        with db.session() as s:
            # Chunks keep each statement under the databases' bound-parameter limits.
            for i in range(0, len(removing), 500):
                s.execute(delete(Document).where(Document.url.in_(removing[i : i + 500])))
    out.removed = removing
    return out


def _write(db: Database, plan: _Plan, uploaded: dict[str, str]) -> list[str]:
    """Write every present page; returns the upstream files its new uploads replaced."""
    replaced: list[str] = []
    with db.session() as s:
        rows = {d.url: d for d in s.scalars(select(Document)) if d.url in plan.present}
        for url, result in plan.present.items():
            row = rows.get(url)
            page = result.page
            wanted_upload = url in plan.upload
            new_file = uploaded.get(url)
            if row is None:
                assert page is not None
                row = Document(url=url, title=page.title[:512], text=page.text)
                row.content_hash = page.content_hash
                row.file_id = new_file
                s.add(row)
            elif wanted_upload and new_file is None and row.file_id:
                # Its new text did not reach the upstream: leave the row as it was so the next
                # run fetches it again rather than trusting a 304.
                continue
            else:
                if page is not None and (row.title, row.text) != (page.title[:512], page.text):
                    row.title = page.title[:512]
                    row.text = page.text
                if new_file is not None:
                    if row.file_id and row.file_id != new_file:
                        replaced.append(row.file_id)
                    row.file_id = new_file
                    row.content_hash = content_hash(row.title, row.text)
                elif row.file_id is None:
                    row.content_hash = content_hash(row.title, row.text)
                # else: the upstream file still holds the text content_hash describes.
            # Validators too long for their columns are not worth keeping.
            etag = result.etag if result.etag and len(result.etag) <= 512 else None
            modified = result.last_modified
            modified = modified if modified and len(modified) <= 128 else None
            if row.etag != etag:
                row.etag = etag
            if row.last_modified != modified:
                row.last_modified = modified
    return replaced
