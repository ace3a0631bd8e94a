"""The stored pages as llms.txt (an index of Markdown links) and llms-full.txt (every page)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from proxy.storage.db import Database
from proxy.storage.models import Document

# A description is one sentence; longer ones are cut at a word near this many characters.
DESCRIPTION_CHARS = 160
# Emphasis and code marks, and links (their text kept); an underscore inside a word (a setting's
# name) is not markup.
_MARKUP = re.compile(r"[*`]+|(?<!\w)_+|_+(?!\w)|!?\[([^\]]*)\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class Page:
    """One stored page: its address, title and Markdown."""

    url: str
    title: str
    text: str


def stored_pages(db: Database) -> list[Page]:
    """Every page the last syncs stored, in the order of their addresses."""
    with db.read() as s:
        rows = s.execute(select(Document.url, Document.title, Document.text).order_by(Document.url))
        return [Page(url, title or url, text) for url, title, text in rows]


def stored_page(db: Database, url: str) -> Page | None:
    """The stored page at `url` (its #fragment ignored, a missing final slash forgiven)."""
    base = url.split("#", 1)[0].strip()
    if not base:
        return None
    wanted = [base, base + "/"] if not base.endswith("/") else [base, base.rstrip("/")]
    with db.read() as s:
        rows = s.execute(
            select(Document.url, Document.title, Document.text).where(Document.url.in_(wanted))
        ).all()
    found = {row[0]: row for row in rows}
    for candidate in wanted:
        if candidate in found:
            url_, title, text = found[candidate]
            return Page(url_, title or url_, text)
    return None


def site_title(pages: Sequence[Page], configured: str) -> str:
    """The configured site name, else the title of the shallowest page (the docs' front page)."""
    if configured:
        return configured
    if not pages:
        return "Documentation"
    front = min(pages, key=lambda p: (urlsplit(p.url).path.rstrip("/").count("/"), p.url))
    return front.title


def description(text: str) -> str:
    """The page's first sentence of prose, without Markdown markup, at most about a line long."""
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        # Headings, lists, tables, code and quotes do not describe a page in a sentence.
        if not block or block[0] in "#-*|>`<" or (block[0].isdigit() and ". " in block[:4]):
            continue
        prose = _MARKUP.sub(lambda m: m.group(1) or "", " ".join(block.split()))
        sentence = _SENTENCE_END.split(prose, maxsplit=1)[0]
        if len(sentence) > DESCRIPTION_CHARS:
            sentence = sentence[:DESCRIPTION_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
        return sentence
    return ""


def _link_text(title: str) -> str:
    """A title that cannot end the Markdown link it sits in."""
    return " ".join(title.replace("[", "(").replace("]", ")").split())


def llms_txt(pages: Iterable[Page], title: str, summary: str) -> str:
    """The llms.txt index: the site's title, its summary as a quote, a link per page."""
    lines = [f"# {_link_text(title)}", ""]
    if summary:
        lines += [f"> {' '.join(summary.split())}", ""]
    lines += ["## Docs", ""]
    for page in pages:
        about = description(page.text)
        link = f"- [{_link_text(page.title)}](<{page.url}>)"
        lines.append(f"{link}: {about}" if about else link)
    return "\n".join(lines) + "\n"


def llms_full_txt(pages: Iterable[Page], title: str, summary: str) -> str:
    """Every page's Markdown after the same header, each under its title and address."""
    parts = [f"# {_link_text(title)}\n"]
    if summary:
        parts.append(f"> {' '.join(summary.split())}\n")
    for page in pages:
        heading = f"## {_link_text(page.title)}\n\nSource: <{page.url}>"
        parts.append(f"{heading}\n\n{page.text.strip()}\n")
    return "\n".join(parts)
