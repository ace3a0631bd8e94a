"""`docschat report`: the console's coverage gaps on the command line, for a weekly job."""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta

from proxy.answers.insights import day_start, gaps
from proxy.answers.reports import gaps_markdown
from proxy.config import Settings
from proxy.storage.db import Database
from proxy.storage.models import utcnow

_SPAN = re.compile(r"^(\d{1,4})([dw])$")


def span(value: str) -> int:
    """A period such as 7d or 2w, in days (an argparse type)."""
    found = _SPAN.match(value.strip().lower())
    days = int(found.group(1)) * (7 if found.group(2) == "w" else 1) if found else 0
    if not 1 <= days <= 3660:
        raise argparse.ArgumentTypeError(f"expected a period such as 7d or 2w, got {value!r}")
    return days


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `docschat report`."""
    p.add_argument(
        "--since", type=span, default="7d", help="how far back to look: Nd (days) or Nw (weeks)"
    )
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print the groups as JSON")
    form.add_argument(
        "--markdown", action="store_true", help="print Markdown to paste into a docs issue"
    )


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    """Print the open gap groups of the period."""
    db = Database(settings.database_url)
    try:
        db.upgrade()
        now = utcnow()
        since = day_start(now) - timedelta(days=args.since - 1)
        groups = gaps(db, since)
    finally:
        db.dispose()
    if args.json:
        body = {"since": since.isoformat(), "groups": [g.shown() for g in groups]}
        print(json.dumps(body, indent=2, ensure_ascii=False))
    elif args.markdown:
        print(gaps_markdown(groups, since, now), end="")
    else:
        print(f"{len(groups)} open gap topics since {since.date().isoformat()}")
        for g in groups:
            # Readers wrote these: no terminal escapes or control characters reach the screen.
            label = "".join(c for c in " ".join(g.label.split()) if c.isprintable())
            label = label if len(label) <= 70 else label[:69] + "…"
            print(f"{len(g.questions):5}  {g.last_asked.date().isoformat()}  {label}")
    return 0
