"""Instant search: the docs' best pages for a few words, straight from the vector store."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sqlalchemy import select

from proxy.answers.errors import Invalid
from proxy.answers.limits import Limits
from proxy.documents.sections import section_of
from proxy.storage.db import Database
from proxy.storage.models import Document
from proxy.upstream.search import DocsSearch, Found

MAX_QUERY_CHARS = 200
MAX_LIMIT = 10
SNIPPET_CHARS = 180
# The vector store ranks chunks, several of which may come from one page: ask for more than
# the reader sees, so that one long page does not push the others out.
CHUNKS_PER_RESULT = 3
# The lines docschat's uploader puts at the top of each file (proxy/upstream/knowledge.py).
_HEADER = re.compile(r"\A(?:(?:Title|URL): [^\n]*\n)+\n?")
# Headings are left out: the result's title already names the page.
_HEADINGS = re.compile(r"^#{1,6}\s.*$", re.MULTILINE)
_MARKS = re.compile(r"[*`]+|(?<!\w)_+|_+(?!\w)|!?\[([^\]]*)\]\([^)]*\)", re.MULTILINE)


@dataclass(frozen=True)
class Result:
    """One page (or section of one) that matches, with the words around the match."""

    title: str
    url: str
    snippet: str
    section: str = ""

    def as_dict(self) -> dict[str, str]:
        """The result as the API and the MCP tool return it (`section` only when known)."""
        found = asdict(self)
        if not self.section:
            del found["section"]
        return found


def query_text(query: str | None) -> str:
    """The query with its spaces collapsed, or Invalid when it is empty or too long."""
    text = " ".join((query or "").split())
    if not text:
        raise Invalid("Type a few words to search for.", code="empty_query")
    if len(text) > MAX_QUERY_CHARS:
        raise Invalid(
            f"A search is at most {MAX_QUERY_CHARS} characters; ask the assistant instead.",
            code="query_too_long",
        )
    return text


def snippet(chunk: str, query: str) -> str:
    """About a line of the chunk's plain text, starting at the sentence where a query word is."""
    text = _HEADINGS.sub("", _HEADER.sub("", chunk))
    plain = " ".join(_MARKS.sub(lambda m: m.group(1) or "", text).split())
    words = [w for w in re.findall(r"\w+", query.lower()) if len(w) > 2]
    lowered = plain.lower()
    hits = [i for i in (lowered.find(w) for w in words) if i >= 0]
    start = 0
    if hits:
        first = min(hits)
        # Back to the start of its sentence, unless that is far before the match.
        stop = plain.rfind(". ", 0, first)
        start = stop + 2 if stop >= 0 else 0
        if first - start > SNIPPET_CHARS // 2:
            start = plain.rfind(" ", 0, first - SNIPPET_CHARS // 3) + 1
    cut = plain[start : start + SNIPPET_CHARS]
    if start + SNIPPET_CHARS < len(plain):
        cut = cut.rsplit(" ", 1)[0] + "…"
    return ("…" if start > 0 else "") + cut


class Search:
    """Finds pages for the widget's search box and the MCP server's search tool."""

    def __init__(self, db: Database, searcher: Callable[[], DocsSearch], limits: Limits) -> None:
        self.db = db
        self.searcher = searcher
        self.limits = limits

    def find(self, query: str | None, limit: int, ip: str) -> list[Result]:
        """The best pages for `query` (at most `limit`), counted against the client's rate."""
        text = query_text(query)
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid(f"`limit` must be from 1 to {MAX_LIMIT}.", code="invalid_limit")
        self.limits.check_search(ip)
        found = self.searcher().search(text, limit * CHUNKS_PER_RESULT)
        pages = self._pages({f.file_id for f in found})
        results: list[Result] = []
        seen: set[str] = set()
        for chunk in found:
            title, url, page_text = pages.get(chunk.file_id) or _named_by_upstream(chunk)
            # Only web addresses reach a reader's page: a link is all a result is.
            if not url.startswith(("https://", "http://")):
                continue
            # The section the chunk came from, when it can be placed in the stored page.
            heading = section_of(page_text, chunk.text) if page_text else None
            if heading is not None:
                url = f"{url.split('#', 1)[0]}#{heading.anchor}"
            if url in seen:
                continue
            seen.add(url)
            section = heading.title if heading is not None else ""
            results.append(Result(title, url, snippet(chunk.text, text), section))
            if len(results) == limit:
                break
        return results

    def _pages(self, file_ids: set[str]) -> dict[str, tuple[str, str, str]]:
        """(title, url, Markdown) of the stored pages behind these uploaded files."""
        if not file_ids:
            return {}
        with self.db.read() as s:
            rows = s.execute(
                select(Document.file_id, Document.title, Document.url, Document.text).where(
                    Document.file_id.in_(file_ids)
                )
            )
            return {f: (title or url, url, text or "") for f, title, url, text in rows}


def _named_by_upstream(chunk: Found) -> tuple[str, str, str]:
    """A page this database does not hold (uploaded elsewhere): the file's own attributes."""
    url = str(chunk.attributes.get("url") or "")
    return str(chunk.attributes.get("title") or chunk.filename or url), url, ""
