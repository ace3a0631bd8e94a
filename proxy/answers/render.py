"""Answer text -> numbered source links, sanitized HTML and the list of sources."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import nh3
from markdown_it import MarkdownIt

from proxy.upstream.base import Answer

# Citation markers the Assistants API leaves in text, e.g. 【4:0†source】.
MARKER = re.compile(r"【[^】]*】")
OPEN_MARKER = re.compile(r"【[^】]*$")

# What answer HTML may keep is data in the widget's folder: the chat page sanitises again with the
# same file (the server inlines it into the page), so the two can never allow different markup.
# Package data: static/widget/ of the repository, linked into the package as proxy/web/widget.
ALLOWLIST = Path(str(resources.files("proxy") / "web" / "widget" / "allowlist.json"))


@dataclass(frozen=True)
class Allowlist:
    """The elements, attributes (per element) and link schemes answer HTML may keep."""

    tags: frozenset[str]
    attributes: dict[str, frozenset[str]]
    url_schemes: frozenset[str]


@functools.cache
def allowlist() -> Allowlist:
    """The allow-list of answer HTML, read from its file on first use."""
    data = json.loads(ALLOWLIST.read_text(encoding="utf-8"))
    return Allowlist(
        tags=frozenset(data["tags"]),
        attributes={tag: frozenset(names) for tag, names in data["attributes"].items()},
        url_schemes=frozenset(data["url_schemes"]),
    )


@dataclass(frozen=True)
class Rendered:
    """An answer ready to store: markdown with numbered links, safe HTML, sources in order."""

    text: str
    html: str
    sources: list[dict[str, str]]


def _markdown() -> MarkdownIt:
    # Raw HTML in answers is never passed through: the model's text is data, not markup.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def to_html(text: str) -> str:
    """Markdown to HTML that can neither run script nor load remote content."""
    raw = _markdown().render(text)
    allowed = allowlist()
    return nh3.clean(
        raw,
        tags=allowed.tags,
        attributes=allowed.attributes,
        url_schemes=allowed.url_schemes,
        link_rel="noopener noreferrer",
    )


def visible(text: str) -> str:
    """Streaming text as a reader should see it: markers removed, a half-written one held back."""
    return OPEN_MARKER.sub("", MARKER.sub("", text))


def cited_files(answer: Answer) -> list[str]:
    """The ids of the files an answer cites, each once."""
    return sorted({c.file_id for c in answer.citations})


def render_answer(answer: Answer, known: Mapping[str, tuple[str, str, str]]) -> Rendered:
    """Turn citations into numbered links to their pages (`known`: file id -> (title, url,
    section) of the stored pages, the url ending in the section's `#anchor` when one is known;
    the upstream's own names stand in for pages not stored here)."""
    pages = {fid: (title, url, "") for fid, (title, url) in answer.pages.items()}
    pages.update(known)
    sources: list[dict[str, str]] = []
    numbers: dict[str, int] = {}
    pieces: list[str] = []
    at = 0
    for cite in sorted(answer.citations, key=lambda c: (c.start, c.end)):
        if cite.start < at:
            continue
        title, url, section = pages.get(cite.file_id, (cite.filename or "Source", "", ""))
        key = url or cite.file_id
        if key not in numbers:
            numbers[key] = len(sources) + 1
            source = {"title": title, "url": url}
            if section:
                source["section"] = section
            sources.append(source)
        n = numbers[key]
        pieces.append(answer.text[at : cite.start].rstrip(" "))
        pieces.append(f" [\\[{n}\\]]({url})" if url else f" \\[{n}\\]")
        at = cite.end
    pieces.append(answer.text[at:])
    text = MARKER.sub("", "".join(pieces)).strip()
    return Rendered(text, to_html(text), sources)


def plain(text: str) -> Rendered:
    """Render text that carries no citations (a stopped answer's partial text)."""
    return Rendered(text, to_html(text), [])
