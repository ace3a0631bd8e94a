"""Retrieval for the emulator's answers: BM25 over passages, the silence rule, cited sentences."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.passages import (
    Passage,
    Unit,
    block_markdown,
    block_units,
    pieces,
    sections,
    split_header,
)

NOT_FOUND = "I could not find that in the documentation."

STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each either else
    every few for from further get gets got had has have having he her here hers him his how i
    if in into is it its itself just let like may me might more most much must my no nor not
    now of off on once one only or other our ours out over own please put puts same she should
    so some
    such tell than thank thanks that the their theirs them then there these they this those
    through to too under until up us very want was way we were what when where which while who
    whom why will with would yes yet you your yours""".split()  # noqa: SIM905
) | frozenset(
    # Words that ask about the conversation, not the docs ("can you repeat that?").
    "repeat explain elaborate mean meant say said show give clarify summarize".split()  # noqa: SIM905
)

_WORD = re.compile(r"[a-z0-9]+(?:[_'][a-z0-9]+)*")
_TOKEN = re.compile(r"\s*(?:[\w'\u2019]+|[^\w\s])|\s+")

# The silence rule: a passage may answer only if it holds at least this share of the question's
# IDF weight (words the documents never use weigh the most), so "a short poem about cats" is not
# answered from a page that happens to say "short".
COVERAGE = 0.5
MAX_UNITS = 3  # sentences or table rows in one answer (a code block comes with its lead sentence)
MAX_CHARS = 700  # ... and about this much prose at most
FOLLOW_UP_WEIGHT = 0.5  # the earlier question's words, when the new one is a follow-up
_FOLLOW_UP = re.compile(r"^\W*(and|also|but|or|so|then|what about|how about|same)\b", re.I)
_BACK_REFERENCES = frozenset(
    ["it", "its", "that", "this", "these", "those", "they", "them", "there", "one"]
)
_LEANS_BACK = re.compile(r"^(it|its|this|that|these|those|they|then|there|so|also)\b", re.I)


def stem(word: str) -> str:
    """A crude, consistent suffix stripper so 'installing', 'installs' and 'install' meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(suffix)]
            break
    if len(word) >= 6 and word.endswith("er"):
        word = word[:-2]  # "crawler" meets "crawl"
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]  # "embedding" meets "embed"
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The searchable terms of a text: lowercased words without stop words, stemmed."""
    return [
        stem(w)
        for w in _WORD.findall(text.lower())
        if w not in STOPWORDS and (len(w) > 1 or w.isdigit())
    ]


def split_tokens(text: str) -> list[str]:
    """Stream 'tokens': each word or punctuation mark with its leading space; they join to text."""
    return _TOKEN.findall(text)


HEADING_WEIGHT = 3  # a section's heading words count this many times in its passage


def _passage(
    file_id: str,
    filename: str,
    heading: str,
    lines: list[str],
    units: tuple[Unit, ...],
    extra: list[str],
    position: int,
    meta: Mapping[str, str],
) -> Passage:
    body = terms(" ".join(u.text + " " + u.context for u in units))
    return Passage(
        file_id,
        filename,
        heading,
        "\n\n".join(lines),
        Counter(body + extra),
        max(len(body), 1),
        units,
        meta.get("title", ""),
        position,
        meta,
        Counter(extra),
    )


def split_passages(file_id: str, filename: str, text: str) -> list[Passage]:
    """Cut a file into section-sized passages; the uploader's header lines are not text.

    A section's prose makes one passage (several when long); each table row makes its own,
    so a one-row answer ("data-position") is found as easily as a paragraph.
    """
    meta, body = split_header(text)
    # The page title (or, without a header, the file name) counts for every passage's ranking,
    # so "deploy" finds the sections of "Deploying docschat".
    name = meta.get("title") or re.sub(r"\.\w+$", "", filename).replace("-", " ")
    name_terms = terms(name.replace("_", " "))
    passages: list[Passage] = []
    found_sections = sections(body)
    for heading, level, section_blocks in found_sections:
        head = [f"{'#' * max(level, 1)} {heading}"] if heading else []
        extra = terms(heading) * HEADING_WEIGHT + name_terms
        prose = [b for b in section_blocks if b.kind != "table"]
        if prose or len(found_sections) == 1:
            for run in pieces(prose):
                units = tuple(u for b in run for u in block_units(b))
                lines = head + [block_markdown(b) for b in run]
                passages.append(
                    _passage(file_id, filename, heading, lines, units, extra, len(passages), meta)
                )
        # A row's heading counts once: a table's many rows should not crowd out its section.
        row_extra = terms(heading) + name_terms
        for table in (b for b in section_blocks if b.kind == "table"):
            for row in block_units(table):
                lines = [*head, row.markdown]
                passages.append(
                    _passage(
                        file_id, filename, heading, lines, (row,), row_extra, len(passages), meta
                    )
                )
    return passages


@dataclass(frozen=True)
class Hit:
    """A passage and its BM25 score for one query."""

    passage: Passage
    score: float


class Bm25Index:
    """Okapi BM25 over a fixed set of passages."""

    def __init__(self, passages: Sequence[Passage], k1: float = 1.2, b: float = 0.75) -> None:
        self.passages = list(passages)
        self.k1 = k1
        self.b = b
        total = sum(p.length for p in self.passages)
        self.avg_length = total / len(self.passages) if self.passages else 1.0
        df: Counter[str] = Counter()
        for p in self.passages:
            df.update(p.counts.keys())
        n = len(self.passages)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        # What a word no passage holds weighs: the most a word can (document frequency 0).
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)

    def weight(self, term: str) -> float:
        """A term's IDF; the largest possible for a term no passage holds."""
        return self.idf.get(term, self.unknown_idf)

    def search(self, query: Iterable[str] | Mapping[str, float], limit: int = 5) -> list[Hit]:
        """Passages sharing at least one term with the query, best first (ties by position).

        A mapping query weighs its terms (e.g. an earlier question counts for less).
        """
        wanted = dict(query) if isinstance(query, Mapping) else dict.fromkeys(query, 1.0)
        hits: list[Hit] = []
        for p in self.passages:
            score = 0.0
            # Passages shorter than average are weighed as average: a table row or a one-line
            # section should not outrank a section that discusses the question at length.
            length = max(p.length, self.avg_length)
            norm = 1 - self.b + self.b * length / self.avg_length
            for t, weight in wanted.items():
                # BM25F: the body's count is normalised for length, the heading's and title's
                # are not (a long section named for a word is still about it); then saturate.
                boost = p.boosts.get(t, 0)
                tf = (p.counts.get(t, 0) - boost) / norm + boost
                if tf:
                    score += weight * self.idf[t] * tf * (self.k1 + 1) / (tf + self.k1)
            if score > 0:
                hits.append(Hit(p, score))
        hits.sort(key=lambda h: -h.score)
        return hits[:limit]

    def coverage(self, passage: Passage, wanted: Iterable[str]) -> float:
        """The share of the wanted terms' IDF weight that the passage holds (0 to 1)."""
        unique = set(wanted)
        total = sum(self.weight(t) for t in unique)
        held = sum(self.weight(t) for t in unique if t in passage.counts)
        return held / total if total else 0.0


@dataclass(frozen=True)
class Citation:
    """A cited (or retrieved) passage of a file."""

    file_id: str
    filename: str
    text: str
    score: float
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Segment:
    """A piece of answer text; when cited, the citation belongs at its end."""

    text: str
    citation: Citation | None = None


@dataclass(frozen=True)
class Answer:
    """What the model 'says', and what its file search found."""

    segments: tuple[Segment, ...]
    results: tuple[Citation, ...] = ()
    query: str = ""

    @property
    def text(self) -> str:
        """The plain answer text, without citation markers."""
        return "".join(s.text for s in self.segments)

    @property
    def found(self) -> bool:
        """Whether the answer is grounded in at least one passage."""
        return any(s.citation for s in self.segments)


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the one before it ("and on Windows?", "does it scale?")."""
    own = set(terms(question))
    if not own:
        return True
    words = set(_WORD.findall(question.lower()))
    return len(own) <= 2 and bool(_FOLLOW_UP.match(question) or words & _BACK_REFERENCES)


@dataclass(frozen=True)
class Query:
    """What to search for, and the words a passage must mostly hold to answer."""

    weights: dict[str, float]  # term -> weight: 1 for the question's own words
    checked: frozenset[str]  # the words the silence rule checks


def make_query(question: str, previous: str | None) -> Query:
    """The latest question's terms; a follow-up's also the earlier question's, weighing less."""
    own = terms(question)
    weights = dict.fromkeys(own, 1.0)
    if previous and is_follow_up(question):
        for term in terms(previous):
            weights.setdefault(term, FOLLOW_UP_WEIGHT)
    # A follow-up without words of its own ("tell me more") is checked on the earlier question.
    return Query(weights, frozenset(own or weights))


def qualifies(passage: Passage, query: Query, index: Bm25Index) -> bool:
    """The silence rule: the passage holds at least COVERAGE of the question's IDF weight.

    Numbers the documents never contain are left out: a ticket number or a counter in a
    question ("(12)") says nothing about its topic, yet would weigh as much as any word."""
    checked = {t for t in query.checked if not (t.isdigit() and t not in index.idf)}
    checked = checked or set(query.checked)
    return bool(checked) and index.coverage(passage, checked) >= COVERAGE


def _unit_score(unit: Unit, weights: Mapping[str, float], index: Bm25Index) -> float:
    said = set(terms(unit.text + " " + unit.context))
    return sum(weights[t] * index.weight(t) for t in said & weights.keys())


def pick_units(passage: Passage, weights: Mapping[str, float], index: Bm25Index) -> list[int]:
    """The positions of the passage's units that answer: the best one, close seconds, context."""
    units = passage.units
    if not units:
        return []
    scores = [_unit_score(u, weights, index) for u in units]
    prose = [i for i, u in enumerate(units) if u.kind != "code"]
    top = max(range(len(units)), key=lambda i: (scores[i], -i))
    if scores[top] <= 0:
        # Found by its heading or page title alone: the section's opening says what it is about.
        top = prose[0] if prose else 0
    keep = {top}
    if units[top].kind == "code" and top > 0 and units[top - 1].kind != "code":
        keep.add(top - 1)  # a code block comes with the sentence that introduces it
    said = set(terms(units[top].text)) & weights.keys()
    for i in sorted(prose, key=lambda i: (-scores[i], i)):
        if len([k for k in keep if units[k].kind != "code"]) >= MAX_UNITS:
            break
        size = sum(len(units[k].text) for k in keep if units[k].kind != "code")
        news = set(terms(units[i].text)) & weights.keys() - said
        # A second sentence must score close to the best and say something about the question
        # the kept ones do not.
        fits = size + len(units[i].text) <= MAX_CHARS and not units[i].text.endswith(":")
        if news and fits and scores[i] >= 0.5 * scores[top] > 0:
            keep.add(i)
            said |= news
    for i in sorted(keep):
        # "It adds ..." needs the sentence before it; "... release command:" the block after it.
        leans_back = _LEANS_BACK.match(units[i].text) and i > 0 and len(keep) < MAX_UNITS
        if leans_back and units[i - 1].kind == "sentence" and not units[i - 1].ends_block:
            keep.add(i - 1)
        if i == top and units[i].text.endswith(":") and i + 1 < len(units):
            follower = units[i + 1]
            short_code = follower.kind == "code" and follower.text.count("\n") <= 15
            if short_code or (follower.kind == "row" and len(keep) < MAX_UNITS):
                keep.add(i + 1)
    return sorted(keep)


def _segments(
    passage: Passage, chosen: list[int], citation: Citation, first: bool
) -> list[Segment]:
    """The chosen units as answer text, the citation at the end of the last prose unit."""
    units = [passage.units[i] for i in chosen]
    cited_at = max((n for n, u in enumerate(units) if u.kind != "code"), default=-1)
    out: list[Segment] = []
    if cited_at < 0:
        # Only code: the section's name introduces it and carries the citation.
        out.append(
            Segment(("" if first else " ") + f"{passage.heading or passage.title}:", citation)
        )
    for n, unit in enumerate(units):
        if unit.kind == "code":
            text = f"\n\n{unit.text}"
        else:
            text = unit.text if first and n == 0 and not out else f" {unit.text}"
        out.append(Segment(text, citation if n == cited_at else None))
    return out


def _paragraphs(segments: list[Segment]) -> tuple[Segment, ...]:
    """Text after a code block starts a new paragraph (a code fence ends its own line)."""
    out: list[Segment] = []
    for segment in segments:
        if out and out[-1].text.endswith("```") and segment.text.startswith(" "):
            segment = Segment("\n\n" + segment.text[1:], segment.citation)
        out.append(segment)
    return tuple(out)


def _citation(hit: Hit, attributes: Mapping[str, Mapping[str, Any]]) -> Citation:
    return Citation(
        hit.passage.file_id,
        hit.passage.filename,
        hit.passage.text,
        round(hit.score / (hit.score + 1.0), 4),
        dict(attributes.get(hit.passage.file_id, {})),
    )


def scripted(question: str, scripts: list[tuple[str, str]]) -> Answer | None:
    """The verbatim answer a test asked for, when the question contains its match."""
    for match, text in scripts:
        if match and match in question:
            return Answer((Segment(text),), (), question)
    return None


def answer(
    question: str,
    index: Bm25Index,
    previous: str | None = None,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
) -> Answer:
    """Answer the latest question from its best passages, cited; say so when the docs are silent.

    `previous` (the question before) is used only when this one is a follow-up.
    """
    query = make_query(question, previous)
    weights = query.weights
    hits = [h for h in index.search(weights, limit=10) if qualifies(h.passage, query, index)][:5]
    if not hits:
        return Answer((Segment(NOT_FOUND),), (), question)
    attributes = attributes or {}
    results = tuple(_citation(h, attributes) for h in hits)
    chosen = pick_units(hits[0].passage, weights, index)
    segments = _segments(hits[0].passage, chosen, results[0], True)
    prose = sum(1 for i in chosen if hits[0].passage.units[i].kind != "code")
    if len(hits) > 1 and prose < MAX_UNITS and hits[1].score >= 0.75 * hits[0].score:
        # A close second passage adds its best sentence when it holds question words the
        # first answer lacks (e.g. the other half of "install and upgrade").
        said = set(terms(" ".join(s.text for s in segments)))
        second = hits[1].passage
        best = pick_units(second, weights, index)[:1]
        adds = best and (set(terms(second.units[best[0]].text)) & query.checked) - said
        if adds and second.units[best[0]].kind != "code":
            segments += _segments(second, best, results[1], False)
    return Answer(_paragraphs(segments), results, question)
