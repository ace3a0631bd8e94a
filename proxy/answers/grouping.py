"""Similar questions grouped by topic, locally and deterministically (no upstream call).

A question becomes a set of content words: lowercased, stop words dropped, suffixes stripped so
"installing", "installation" and "install" meet. Words are weighed by how rare they are among
the questions grouped together (1 + ln(N / df)), so a product name that most questions carry
counts for little and the words that tell topics apart count for much.

The similarity of two questions is the larger of
- Dice: 2 * shared weight / (weight of one + weight of the other), and
- overlap: shared weight / weight of the smaller set, counted only when both have at least two
  content words (a question that adds a detail, "install docschat with pip", is still about
  installing docschat; a bare "docschat?" is not about everything that names it).

Questions are taken oldest first; each joins the group holding its most similar question when
that similarity reaches THRESHOLD, else starts a group. The same questions always give the same
groups, and a group's id (a digest of its first question's words) stays while that question is
kept.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

# Two questions at or above this similarity are about one topic. Chosen on the paraphrase and
# distinct-question sets of tests/proxy/test_grouping.py: paraphrases score 0.6 and more,
# distinct questions that share a product name score 0.4 and less.
THRESHOLD = 0.5

STOP_WORDS = frozenset(
    """a about after again all also am an and any are as at be been being but by can could
    did do does doing for from get got had has have how i if in into is it its just let me my
    no not of on or our please should so some than that the their them then there these they
    this those to too up us use using was way we were what when where which who why will with
    would you your yours there's what's it's i'm can't doesn't don't isn't won't""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
APOSTROPHE = "\u2019"  # a typographic apostrophe, as phones type it
# Longest first: the first suffix that leaves a stem of 3+ letters is stripped.
_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A small suffix stripper: enough to meet word forms, not a linguist's stemmer."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]  # configure -> configur, like configuring and configuration
    return word


def content_words(text: str) -> frozenset[str]:
    """The normalized content words of a question."""
    words = _WORD.findall(text.lower().replace(APOSTROPHE, "'"))
    return frozenset(
        stem(w.split("'")[0]) for w in words if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())
    )


def weights(questions: Sequence[frozenset[str]]) -> dict[str, float]:
    """Each word's weight among these questions: 1 + ln(N / how many contain it)."""
    n = max(len(questions), 1)
    df = Counter(w for q in questions for w in q)
    return {w: 1.0 + math.log(n / d) for w, d in df.items()}


def similarity(a: frozenset[str], b: frozenset[str], weight: dict[str, float]) -> float:
    """How alike two questions are, from 0 to 1 (see the module docstring)."""
    if not a or not b:
        return 0.0
    wa = sum(weight.get(w, 1.0) for w in a)
    wb = sum(weight.get(w, 1.0) for w in b)
    shared = sum(weight.get(w, 1.0) for w in a & b)
    dice = 2 * shared / (wa + wb)
    overlap = shared / min(wa, wb) if len(a) >= 2 and len(b) >= 2 else 0.0
    return max(dice, overlap)


@dataclass
class Group:
    """Questions about one topic: indexes into the texts grouped, in their order, and words."""

    id: str
    items: list[int] = field(default_factory=list)
    words: list[frozenset[str]] = field(default_factory=list)
    label: int = 0  # the index (into `items`) of the question that names the group


def group(texts: Sequence[str], threshold: float = THRESHOLD) -> list[Group]:
    """Group questions (given oldest first) by topic; each group holds indexes into `texts`."""
    words = [content_words(t) for t in texts]
    weight = weights(words)
    groups: list[Group] = []
    for i, w in enumerate(words):
        best, score = None, 0.0
        for g in groups:
            s = max(similarity(w, other, weight) for other in g.words)
            if s > score:
                best, score = g, s
        if best is None or score < threshold:
            best = Group(id=group_id(texts[i], w))
            groups.append(best)
        best.items.append(i)
        best.words.append(w)
    for g in groups:
        g.label = _medoid(g, weight)
    return groups


def group_id(text: str, words: frozenset[str]) -> str:
    """A stable id for a group started by this question."""
    key = " ".join(sorted(words)) or text.strip().lower()
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _medoid(g: Group, weight: dict[str, float]) -> int:
    """The position in the group of the question most similar to the rest (earliest on ties)."""
    if len(g.words) <= 2:
        return 0
    totals = [
        sum(similarity(a, b, weight) for j, b in enumerate(g.words) if j != i)
        for i, a in enumerate(g.words)
    ]
    return max(range(len(totals)), key=lambda i: (totals[i], -i))
