"""Uploaded files as section-sized passages of whole sentences, table rows and code blocks."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# The uploader's header: "Title: ...", "URL: ..." (and any attribute lines) before a blank line.
_HEADER_LINE = re.compile(r"^(title|url|source|attributes?|description|path)\s*:\s?(.*)$", re.I)
# A heading, without closing hashes or the `{#anchor}` the crawler keeps after its text.
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(?:\{#[^}\s]*\})?\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```+|~~~+)")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
# A sentence ends at . ! or ? followed by space and something that can start a sentence.
_BOUNDARY = re.compile(r"[.!?][)\"']?\s+(?=[A-Z0-9`\"'(\[*_])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "no.", "fig.")

SECTION_CHARS = 1500  # a section longer than this is cut, at block boundaries, into passages


@dataclass(frozen=True)
class Unit:
    """The smallest thing an answer quotes: a sentence, a table row or a code block."""

    kind: str  # "sentence", "row" or "code"
    text: str
    ends_block: bool = True  # the last sentence of its paragraph or list item
    context: str = ""  # words that count for ranking but are not quoted (a row's column names)
    markdown: str = ""  # a table row as Markdown, with its header (for the passage's text)


@dataclass(frozen=True)
class Passage:
    """A section (or a part of a long one) of one file, ranked as a unit."""

    file_id: str
    filename: str
    heading: str
    text: str
    counts: Mapping[str, int]
    length: int
    units: tuple[Unit, ...] = ()
    title: str = ""
    position: int = 0
    meta: Mapping[str, str] = field(default_factory=dict)
    boosts: Mapping[str, int] = field(default_factory=dict)  # heading and title terms


def split_header(text: str) -> tuple[dict[str, str], str]:
    """The uploader's header lines (title, URL, attributes) as a dict, and the text after them."""
    lines = text.replace("\r\n", "\n").split("\n")
    meta: dict[str, str] = {}
    i = 0
    while i < len(lines) and i < 12:
        match = _HEADER_LINE.match(lines[i])
        if not match:
            break
        meta[match.group(1).lower()] = match.group(2).strip()
        i += 1
    # Only a run of header lines closed by a blank line (or the end) is a header, so a page
    # whose first sentence happens to start with "Source:" keeps it.
    if meta and (i == len(lines) or not lines[i].strip()):
        return meta, "\n".join(lines[i:]).strip("\n")
    return {}, text.replace("\r\n", "\n")


def _join(lines: list[str]) -> str:
    """Wrapped source lines as one line: hard breaks and indentation dropped."""
    parts = [re.sub(r"(\s{2,}|\\)$", "", line.strip()) for line in lines]
    return re.sub(r"\s+", " ", " ".join(p for p in parts if p)).strip()


def inline(text: str) -> str:
    """Markdown inline text for an answer: images dropped, links as their words."""
    return _LINK.sub(r"\1", _IMAGE.sub("", text)).strip()


@dataclass(frozen=True)
class Block:
    """A block of a Markdown document: heading, paragraph, item, table or code."""

    kind: str
    text: str  # paragraphs and items joined to one line; tables and code as written
    level: int = 0


def blocks(text: str) -> list[Block]:
    """The document's blocks, with wrapped lines of paragraphs and list items joined."""
    out: list[Block] = []
    lines = text.split("\n")
    i = 0
    pending: list[str] = []
    pending_kind = ""

    def flush() -> None:
        nonlocal pending_kind
        if pending:
            joined = _join(pending)
            if joined:
                out.append(Block(pending_kind, joined))
        pending.clear()
        pending_kind = ""

    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            mark = fence.group(1)[0] * 3
            code = [line.strip()]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(mark):
                code.append(lines[i])
                i += 1
            code.append(mark)
            out.append(Block("code", "\n".join(code)))
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            out.append(Block("heading", heading.group(2), len(heading.group(1))))
        elif not line.strip():
            flush()
        elif line.lstrip().startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i].strip())
                i += 1
            out.append(Block("table", "\n".join(rows)))
            continue
        elif _ITEM.match(line):
            flush()
            pending_kind = "item"
            pending.append(_ITEM.sub("", line, count=1))
        else:
            if not pending:
                pending_kind = "para"
            pending.append(re.sub(r"^\s*>\s?", "", line))
        i += 1
    flush()
    return out


def sentences(text: str) -> list[str]:
    """A joined paragraph cut into whole sentences (not inside code spans or after e.g.)."""
    protected = [m.span() for m in _CODE_SPAN.finditer(text)]
    cuts = [0]
    for m in _BOUNDARY.finditer(text):
        if any(a <= m.start() < b for a, b in protected):
            continue
        before = text[: m.start() + 1].rsplit(" ", 1)[-1].lower()
        if before.endswith(_ABBREVIATIONS) or re.fullmatch(r"\(?[a-z]\.", before):
            continue
        cuts.append(m.end())
    cuts.append(len(text))
    return [text[a:b].strip() for a, b in itertools.pairwise(cuts) if text[a:b].strip()]


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def table_units(table: str) -> list[Unit]:
    """Each body row of a table, whole, as one line naming its columns."""
    rows = table.split("\n")
    if len(rows) < 3 or not _TABLE_SEPARATOR.match(rows[1]):
        found = [Unit("row", inline(" ".join(_cells(r))), markdown=r) for r in rows]
        return [u for u in found if u.text]
    header = _cells(rows[0])
    units = []
    for row in rows[2:]:
        cells = _cells(row)
        named = [
            f"{header[n]}: {cell}" if n < len(header) and header[n] else cell
            for n, cell in enumerate(cells[1:], start=1)
            if cell
        ]
        text = inline(cells[0] + (" — " + "; ".join(named) if named else ""))
        if not text.strip(" —"):
            continue  # a row of images only
        text = text[0].upper() + text[1:]  # "gone (404/410 ...)" starts an answer
        if text[-1] not in ".!?":
            text += "."
        units.append(
            Unit("row", text, context=" ".join(header), markdown="\n".join([*rows[:2], row]))
        )
    return units


def block_units(block: Block) -> list[Unit]:
    """The quotable units of one block."""
    if block.kind == "code":
        return [Unit("code", block.text)]
    if block.kind == "table":
        return table_units(block.text)
    found = sentences(inline(block.text))
    return [Unit("sentence", s, n == len(found) - 1) for n, s in enumerate(found)]


def block_markdown(block: Block) -> str:
    """A block as Markdown again (wrapped lines joined), for a passage's text."""
    if block.kind == "item":
        return f"- {block.text}"
    return block.text


def sections(text: str) -> list[tuple[str, int, list[Block]]]:
    """The document cut at its headings: (heading, level, blocks under it)."""
    out: list[tuple[str, int, list[Block]]] = [("", 0, [])]
    for block in blocks(text):
        if block.kind == "heading":
            out.append((block.text, block.level, []))
        else:
            out[-1][2].append(block)
    return [s for s in out if s[2] or s[0]]


def pieces(body: list[Block], limit: int = SECTION_CHARS) -> list[list[Block]]:
    """A section's blocks in runs of about `limit` characters (a long section makes several)."""
    runs: list[list[Block]] = [[]]
    size = 0
    for block in body:
        if runs[-1] and size + len(block.text) > limit:
            runs.append([])
            size = 0
        runs[-1].append(block)
        size += len(block.text)
    return runs
