"""The docs' knowledge upstream: page files in the vector store (upload, batch-attach, delete)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from openai import NotFoundError, OpenAI

from proxy.upstream.errors import RateLimited, UpstreamError, translated

T = TypeVar("T")

# The API's limits on vector store file attributes.
ATTRIBUTE_CHARS = 512
BATCH_FILES = 500  # the API allows 2,000; smaller batches finish and retry sooner
DONE = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class PageFile:
    """One documentation page as it goes upstream."""

    url: str
    title: str
    text: str


@dataclass
class UploadOutcome:
    """Which pages are in the vector store now (url -> file id), which failed and why."""

    file_ids: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    retries: int = 0


def file_name(url: str) -> str:
    """A readable file name that carries the page's URL (citations show it)."""
    bare = re.sub(r"^https?://", "", url).rstrip("/")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", bare).strip("_.") or "page"
    if slug.endswith((".html", ".htm")):
        slug = slug.rsplit(".", 1)[0]
    return slug[:180] + ".md"


def file_content(page: PageFile) -> bytes:
    """The uploaded text: a short header naming the page, then its Markdown."""
    return f"Title: {page.title}\nURL: {page.url}\n\n{page.text}".encode()


def attributes(page: PageFile) -> dict[str, str | float | bool]:
    """Vector store file attributes: the page's URL and title (within the API's limits)."""
    return {
        "url": page.url[:ATTRIBUTE_CHARS],
        "title": page.title[:ATTRIBUTE_CHARS],
        "source": "docschat",
    }


class Knowledge:
    """Uploads page files into one vector store and removes them; retries what fails."""

    def __init__(
        self,
        client: OpenAI,
        vector_store_id: str,
        *,
        workers: int = 8,
        batch_size: int = BATCH_FILES,
        attempts: int = 3,
        backoff: float = 0.5,
        poll_interval: float = 0.5,
        batch_timeout: float = 900.0,
    ) -> None:
        self.client = client
        self.vector_store_id = vector_store_id
        self.workers = max(1, workers)
        self.batch_size = max(1, min(batch_size, 2000))
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.poll_interval = poll_interval
        self.batch_timeout = batch_timeout
        self._lock = threading.Lock()
        self._retries = 0

    # --- retries ----------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Call the SDK, retrying retryable upstream errors with backoff (Retry-After wins)."""
        for attempt in range(self.attempts):
            try:
                with translated(what):
                    return fn()
            except UpstreamError as exc:
                if not exc.retryable or attempt + 1 >= self.attempts:
                    raise
                with self._lock:
                    self._retries += 1
                wait = self._delay(attempt)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    wait = exc.retry_after
                time.sleep(min(wait, 30.0))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int) -> float:
        return self.backoff * (2**attempt)

    # --- upload -----------------------------------------------------------------------------

    def upload(
        self, pages: Sequence[PageFile], progress: Callable[[int, int], None] | None = None
    ) -> UploadOutcome:
        """Upload pages as files and attach them to the vector store in concurrent batches."""
        self._retries = 0
        outcome = UploadOutcome()
        if not pages:
            return outcome
        uploaded: dict[str, str] = {}
        done = 0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="upload") as pool:
            futures = {pool.submit(self._upload_one, page): page for page in pages}
            for future, page in futures.items():
                try:
                    uploaded[page.url] = future.result()
                except UpstreamError as exc:
                    outcome.failed[page.url] = exc.detail
                done += 1
                if progress is not None:
                    progress(done, len(pages))
            by_url = {p.url: p for p in pages if p.url in uploaded}
            chunks = list(_chunks(list(by_url.values()), self.batch_size))
            results = pool.map(lambda chunk: self._attach(chunk, uploaded), chunks)
            for attached, failed in results:
                outcome.file_ids.update(attached)
                outcome.failed.update(failed)
        outcome.retries = self._retries
        return outcome

    def _upload_one(self, page: PageFile) -> str:
        """Upload one page's file; returns its file id."""
        payload = (file_name(page.url), file_content(page), "text/markdown")
        created = self._call(
            "upload file", lambda: self.client.files.create(file=payload, purpose="assistants")
        )
        return created.id

    def _attach(
        self, pages: list[PageFile], uploaded: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Attach one batch, retrying the files the batch reports as failed."""
        waiting = {uploaded[p.url]: p for p in pages}
        attached: dict[str, str] = {}
        reason = ""
        for attempt in range(self.attempts):
            try:
                failed_ids = self._run_batch(waiting)
            except UpstreamError as exc:
                reason = exc.detail
                if not exc.retryable:
                    break
                failed_ids = set(waiting)
            else:
                reason = "the vector store could not index the file"
            for file_id, page in waiting.items():
                if file_id not in failed_ids:
                    attached[page.url] = file_id
            waiting = {f: p for f, p in waiting.items() if f in failed_ids}
            if not waiting or attempt + 1 >= self.attempts:
                break
            with self._lock:
                self._retries += 1
            time.sleep(self._delay(attempt))
        # Files that never made it into the store would only cost storage: delete them.
        for file_id in waiting:
            self._forget_file(file_id)
        return attached, {p.url: reason for p in waiting.values()}

    def _run_batch(self, files: dict[str, PageFile]) -> set[str]:
        """Create one file batch, wait until it ends, and return the ids that failed."""
        entries: list[Any] = [
            {"file_id": file_id, "attributes": attributes(page)} for file_id, page in files.items()
        ]
        batch = self._call(
            "add files to the vector store",
            lambda: self.client.vector_stores.file_batches.create(
                self.vector_store_id, files=entries
            ),
        )
        deadline = time.monotonic() + self.batch_timeout
        while batch.status not in DONE:
            if time.monotonic() > deadline:
                raise UpstreamError("file batch did not finish in time", retryable=False)
            time.sleep(self.poll_interval)
            batch = self._call("check file batch", partial(self._retrieve_batch, batch.id))
        counts = batch.file_counts
        if batch.status == "completed" and not counts.failed and not counts.cancelled:
            return set()
        finished = {f.id for f in self._batch_files(batch.id) if f.status == "completed"}
        return {file_id for file_id in files if file_id not in finished}

    def _retrieve_batch(self, batch_id: str) -> Any:
        return self.client.vector_stores.file_batches.retrieve(
            batch_id, vector_store_id=self.vector_store_id
        )

    def _batch_files(self, batch_id: str) -> Iterator[Any]:
        """Every file of a batch with its status (paged)."""
        page = self._call(
            "list file batch",
            lambda: self.client.vector_stores.file_batches.list_files(
                batch_id, vector_store_id=self.vector_store_id, limit=100
            ),
        )
        while True:
            yield from page.data
            if not page.has_next_page():
                return
            page = self._call("list file batch", page.get_next_page)

    # --- removal ----------------------------------------------------------------------------

    def remove(self, file_ids: Sequence[str]) -> dict[str, str]:
        """Take files out of the vector store and delete them; returns the failures by id."""
        failures: dict[str, str] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="remove") as pool:
            futures = {pool.submit(self._remove_one, f): f for f in file_ids}
            for future, file_id in futures.items():
                try:
                    future.result()
                except UpstreamError as exc:
                    failures[file_id] = exc.detail
        return failures

    def _remove_one(self, file_id: str) -> None:
        def detach() -> None:
            with suppress(NotFoundError):  # already gone is what we wanted
                self.client.vector_stores.files.delete(
                    file_id, vector_store_id=self.vector_store_id
                )

        self._call("remove file from the vector store", detach)
        self._forget_file(file_id, strict=True)

    def _forget_file(self, file_id: str, *, strict: bool = False) -> None:
        """Delete a file object (a missing one counts as deleted)."""

        def delete() -> None:
            with suppress(NotFoundError):
                self.client.files.delete(file_id)

        try:
            self._call("delete file", delete)
        except UpstreamError:
            if strict:
                raise


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
