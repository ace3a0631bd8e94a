"""Coverage gaps as CSV and as Markdown ready to paste into an issue of the docs repository."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime

from proxy.answers.insights import GapGroup

CSV_COLUMNS = ("group", "label", "question", "reason", "comment", "asked_at", "conversation")


def gaps_csv(groups: Sequence[GapGroup]) -> str:
    """One row per question, with its group; cells that a spreadsheet would run are defused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for g in groups:
        for q in g.questions:
            asked = q.asked_at.isoformat()
            row = (g.id, g.label, q.text, q.reason, q.comment, asked, q.conversation)
            writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def _cell(value: str) -> str:
    """A value a spreadsheet shows as text: readers wrote these, and "=..." would be a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def gaps_markdown(groups: Sequence[GapGroup], since: datetime, until: datetime) -> str:
    """The gaps as an issue body: one section per topic, readers' words quoted inertly."""
    lines = [
        f"## Documentation gaps: {since.date().isoformat()} to {until.date().isoformat()}",
        "",
        f"{len(groups)} topics that readers asked about and the docs did not answer "
        "(no source found) or answered badly (thumbs down).",
        "",
    ]
    for g in groups:
        uncovered = sum(1 for q in g.questions if q.reason == "uncovered")
        disliked = len(g.questions) - uncovered
        lines += [
            f"### {_inline(g.label)}",
            "",
            f"- asked {len(g.questions)} times, first {g.first_asked.date().isoformat()}, "
            f"last {g.last_asked.date().isoformat()}",
            f"- no source: {uncovered}, thumbs down: {disliked}",
            "",
        ]
        for q in g.questions:
            comment = f" — comment: {_inline(q.comment)}" if q.comment else ""
            lines.append(f"- `{q.reason}` {_inline(q.text)}{comment}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _inline(text: str) -> str:
    """Reader text on one line, with Markdown and HTML markup taken literally."""
    flat = " ".join(text.split())
    if len(flat) > 300:
        flat = flat[:299] + "…"
    out = []
    for ch in flat:
        if ch in "\\`*_{}[]()<>#+!|~":
            out.append("\\" + ch)
        elif ch == "@":
            out.append("@\u200b")  # no mention of anyone on the issue tracker
        else:
            out.append(ch)
    return "".join(out)
