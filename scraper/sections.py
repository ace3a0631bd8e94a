"""Headings and their anchors in the Markdown a page is stored as (pure functions).

Crawled pages carry each heading's anchor as `## Title {#anchor}` (scraper.extract writes it);
Markdown from a local folder gets the slug documentation generators give its headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
ATX = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
ANCHORED = re.compile(r"^(.*?)[ \t]*\{#([^\s{}]+)\}$")
INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# What a slug keeps: letters and digits of any script, spaces, hyphens and underscores.
NOT_SLUG = re.compile(r"[^\w\- ]", re.UNICODE)


@dataclass(frozen=True)
class Heading:
    """One heading of a stored page: where its line starts, its level, text and anchor."""

    offset: int
    level: int
    title: str
    anchor: str


def slug(title: str) -> str:
    """The anchor generators make of a heading: lower case, spaces to hyphens, punctuation gone."""
    text = INLINE_LINK.sub(r"\1", title).strip().lower()
    return NOT_SLUG.sub("", text).replace(" ", "-")


def _lines(markdown: str) -> list[tuple[int, str, bool]]:
    """Each line with its offset, and whether it lies outside a fenced code block."""
    out: list[tuple[int, str, bool]] = []
    fence = ""
    at = 0
    for line in markdown.split("\n"):
        opened = FENCE.match(line)
        if fence:
            out.append((at, line, False))
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
        elif opened:
            fence = opened.group(1)
            out.append((at, line, False))
        else:
            out.append((at, line, True))
        at += len(line) + 1
    return out


def add_anchors(markdown: str) -> str:
    """Give every ATX heading outside code its generator slug as `{#anchor}`, numbering repeats
    `-1`, `-2` as generators do; headings that name their own anchor keep it."""
    seen: dict[str, int] = {}
    lines: list[str] = []
    for _, line, prose in _lines(markdown):
        match = ATX.match(line) if prose else None
        if match is None:
            lines.append(line)
            continue
        own = ANCHORED.match(match.group(2))
        if own:
            seen[own.group(2)] = seen.get(own.group(2), 0) + 1
            lines.append(line)
            continue
        base = slug(match.group(2))
        if not base:
            lines.append(line)
            continue
        anchor = base
        while anchor in seen:
            anchor = f"{base}-{seen[base]}"
            seen[base] += 1
        seen[anchor] = seen.get(anchor, 0) + 1
        seen.setdefault(base, 1)
        lines.append(f"{match.group(1)} {match.group(2)} {{#{anchor}}}")
    return "\n".join(lines)


def headings(markdown: str) -> list[Heading]:
    """The headings of stored Markdown that carry an anchor, in order."""
    found: list[Heading] = []
    for at, line, prose in _lines(markdown):
        match = ATX.match(line) if prose else None
        own = ANCHORED.match(match.group(2)) if match else None
        if match and own and own.group(1).strip():
            title = INLINE_LINK.sub(r"\1", own.group(1)).replace("`", "").replace("**", "")
            found.append(Heading(at, len(match.group(1)), title.strip(), own.group(2)))
    return found


def without_anchor(title: str) -> str:
    """A heading's text without a trailing `{#anchor}`."""
    own = ANCHORED.match(title.strip())
    return own.group(1).strip() if own else title.strip()
