"""Retrieval for the emulator's answers: passages, BM25 ranking and a short cited answer."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NOT_FOUND = "I could not find that in the documentation."

STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each either else
    every few for from further get gets got had has have having he her here hers him his how i
    if in into is it its itself just let like may me might more most much must my no nor not
    now of off on once one only or other our ours out over own please same she should so some
    such tell than thank thanks that the their theirs them then there these they this those
    through to too under until up us very want was way we were what when where which while who
    whom why will with would yes yet you your yours""".split()  # noqa: SIM905
)

_WORD = re.compile(r"[a-z0-9]+(?:[_'][a-z0-9]+)*")
_TOKEN = re.compile(r"\s*(?:[\w'\u2019]+|[^\w\s])|\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)")


def stem(word: str) -> str:
    """A crude, consistent suffix stripper so 'installing', 'installs' and 'install' meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(suffix)]
            break
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


def _clean(line: str) -> str:
    """A line without markdown block markup and inline code ticks or emphasis."""
    line = _MARKUP.sub("", line)
    return line.replace("`", "").replace("**", "").replace("__", "").strip()


@dataclass(frozen=True)
class Passage:
    """A piece of one file, ranked as a unit."""

    file_id: str
    filename: str
    heading: str
    text: str
    counts: Mapping[str, int]
    length: int


def split_passages(file_id: str, filename: str, text: str, target: int = 700) -> list[Passage]:
    """Cut a file into passages: paragraphs under one heading, up to about `target` characters."""
    passages: list[Passage] = []
    heading = ""
    name_terms = terms(re.sub(r"\.\w+$", "", filename).replace("-", " ").replace("_", " "))
    buffer: list[str] = []

    def flush() -> None:
        body = "\n\n".join(buffer).strip()
        buffer.clear()
        if not body:
            return
        # The heading and file name count for ranking, so "configuration" finds config.md.
        found = terms(body) + terms(heading) + name_terms
        passages.append(
            Passage(file_id, filename, heading, body, Counter(found), max(len(found), 1))
        )

    in_code = False
    paragraph: list[str] = []
    blocks: list[tuple[str, str]] = []  # (kind, text) with kind "heading" or "para"
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip().startswith("```"):
            in_code = not in_code
            paragraph.append(line)
            continue
        if not in_code and re.match(r"^#{1,6}\s", line):
            if paragraph:
                blocks.append(("para", "\n".join(paragraph)))
                paragraph = []
            blocks.append(("heading", line.lstrip("#").strip()))
        elif not in_code and not line.strip():
            if paragraph:
                blocks.append(("para", "\n".join(paragraph)))
                paragraph = []
        else:
            paragraph.append(line)
    if paragraph:
        blocks.append(("para", "\n".join(paragraph)))

    for kind, block in blocks:
        if kind == "heading":
            flush()
            heading = block
            continue
        if buffer and sum(len(b) for b in buffer) + len(block) > target:
            flush()
        buffer.append(block)
    flush()
    if not passages and (heading or name_terms):
        # A file with only headings still deserves to be found.
        found = terms(heading) + name_terms
        passages.append(Passage(file_id, filename, heading, heading, Counter(found), len(found)))
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

    def search(self, query: Iterable[str] | Mapping[str, float], limit: int = 5) -> list[Hit]:
        """Passages sharing at least one term with the query, best first (ties by position).

        A mapping query weighs its terms (e.g. an earlier question counts for less).
        """
        wanted = dict(query) if isinstance(query, Mapping) else dict.fromkeys(query, 1.0)
        hits: list[Hit] = []
        for p in self.passages:
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * p.length / self.avg_length)
            for t, weight in wanted.items():
                tf = p.counts.get(t, 0)
                if tf:
                    score += weight * self.idf[t] * tf * (self.k1 + 1) / (tf + norm)
            if score > 0:
                hits.append(Hit(p, score))
        hits.sort(key=lambda h: -h.score)
        return hits[:limit]


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


def _sentences(passage: Passage) -> list[str]:
    """The passage's prose as sentences (code fences dropped, markup removed)."""
    prose = re.sub(r"```.*?(```|$)", " ", passage.text, flags=re.S)
    lines = [_clean(line) for line in prose.split("\n")]
    joined = "\n".join(line for line in lines if line)
    out: list[str] = []
    for block in joined.split("\n"):
        out.extend(s.strip() for s in _SENTENCE_END.split(block) if s.strip())
    return out


def _best_sentences(
    passage: Passage, query: Sequence[str], idf: Mapping[str, float], limit: int = 2
) -> str:
    """The one or two sentences of a passage that share most with the query, in their order."""
    sentences = _sentences(passage) or [passage.heading]
    wanted = set(query)
    scored = []
    for i, s in enumerate(sentences):
        score = sum(idf.get(t, 0.0) for t in set(terms(s)) & wanted)
        scored.append((score, i))
    scored.sort(key=lambda x: (-x[0], x[1]))
    keep = sorted(i for score, i in scored[:limit] if score > 0) or [scored[0][1]]
    text = " ".join(sentences[i] for i in keep)
    if len(text) > 400:
        text = text[:400].rsplit(" ", 1)[0] + "…"
    if text and text[-1] not in ".!?…:":
        text += "."
    return text


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
    """Answer from the best one or two passages, each cited; a fixed sentence when none match."""
    query = terms(question)
    weights = dict.fromkeys(query, 1.0)
    # Short follow-ups ("and on Windows?") lean on the question before them, but less.
    if previous and len(set(query)) <= 3:
        for term in terms(previous):
            weights.setdefault(term, 0.3)
    hits = index.search(weights, limit=5)
    attributes = attributes or {}
    results = tuple(
        Citation(
            h.passage.file_id,
            h.passage.filename,
            h.passage.text,
            round(h.score / (h.score + 1.0), 4),
            dict(attributes.get(h.passage.file_id, {})),
        )
        for h in hits
    )
    if not hits:
        return Answer((Segment(NOT_FOUND),), (), question)
    chosen = [0]
    if len(hits) > 1 and hits[1].score >= 0.6 * hits[0].score:
        chosen.append(1)
    segments = []
    for n, i in enumerate(chosen):
        text = _best_sentences(hits[i].passage, list(weights), index.idf)
        segments.append(Segment(("" if n == 0 else " ") + text, results[i]))
    return Answer(tuple(segments), results, question)
