"""Which section of a stored page a retrieved chunk came from (for source deep links)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from scraper.sections import Heading, headings

SPACE = re.compile(r"\s+")
# A line this long or longer is specific enough to place a chunk by itself.
SPECIFIC_LINE = 24


# One search or answer places several chunks in the same few pages: squeeze and parse each page
# once (a str caches its hash, so a repeated page costs a lookup, not another pass over it).
@functools.lru_cache(maxsize=32)
def _squeezed(text: str) -> tuple[str, list[int]]:
    """The text with every run of whitespace as one space, and each kept character's offset."""
    out: list[str] = []
    where: list[int] = []
    space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if not space and out:
                out.append(" ")
                where.append(i)
            space = True
            continue
        space = False
        out.append(ch)
        where.append(i)
    return "".join(out), where


def locate(text: str, chunk: str) -> int | None:
    """Where `chunk` starts in `text` (whitespace may differ), or None when it cannot tell.

    Upstream chunkers cut files their own way and the uploaded file has a header the stored
    text lacks, so a chunk not found whole is placed by its first specific line found once.
    """
    body, where = _squeezed(text)
    whole = SPACE.sub(" ", chunk).strip()
    if not whole:
        return None
    at = body.find(whole)
    if at >= 0:
        return where[at]
    for line in chunk.split("\n"):
        line = SPACE.sub(" ", line).strip()
        if len(line) < SPECIFIC_LINE:
            continue
        at = body.find(line)
        if at >= 0 and body.find(line, at + 1) < 0:
            return where[at]
    return None


@functools.lru_cache(maxsize=32)
def _headings(text: str) -> tuple[Heading, ...]:
    return tuple(headings(text))


def section_of(text: str, chunk: str) -> Heading | None:
    """The heading before the chunk's place in the page (not the page's own title), if any."""
    at = locate(text, chunk)
    if at is None:
        return None
    before = [h for h in _headings(text) if h.offset <= at and h.level > 1]
    return before[-1] if before else None


def first_section(text: str, chunks: Iterable[str]) -> Heading | None:
    """The section of the best-ranked chunk that can be placed in the page."""
    for chunk in chunks:
        if locate(text, chunk) is not None:
            return section_of(text, chunk)
    return None
