"""Everything the emulator remembers, behind one lock, plus helpers the API modules share."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request

from emulator.errors import invalid
from emulator.faults import FaultQueue
from emulator.options import EmulatorOptions
from emulator.search import Bm25Index, Passage, split_passages
from emulator.timeline import Job
from emulator.validation import query_enum, query_int


def new_id(prefix: str) -> str:
    """An OpenAI-looking id such as `run_3f2a...`."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class StoredFile:
    """An uploaded file and its passages (cut once, on first use)."""

    id: str
    filename: str
    purpose: str
    created_at: int
    data: bytes
    _passages: list[Passage] | None = None

    def obj(self) -> dict[str, Any]:
        """The OpenAI file object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }

    def passages(self) -> list[Passage]:
        """The file's text cut into passages."""
        if self._passages is None:
            text = self.data.decode("utf-8", errors="replace")
            self._passages = split_passages(self.id, self.filename, text)
        return self._passages


@dataclass
class VectorStore:
    """A vector store: its object fields and its files (file id -> vector store file object)."""

    obj: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


class State:
    """The emulator's memory. Hold `lock` to read or change it; never sleep while holding it."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.rng = random.Random(options.seed)
        self.files: dict[str, StoredFile] = {}
        self.vector_stores: dict[str, VectorStore] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, Any] = {}
        self.runs: dict[str, Any] = {}
        self.conversations: dict[str, Any] = {}
        self.responses: dict[str, Any] = {}
        self.jobs: dict[str, Job] = {}
        self.faults = FaultQueue()
        # (substring of a question, markdown to answer it with verbatim), set by tests.
        self.scripts: list[tuple[str, str]] = []
        self.stats: Counter[str] = Counter()
        self.version = 0  # bumped whenever what a search can find changes
        self._indexes: dict[tuple[tuple[str, ...], int], tuple[Bm25Index, dict]] = {}

    @property
    def latency(self) -> float:
        """Seconds from creation to the first token."""
        return self.options.latency_ms / 1000.0

    def draws_failure(self) -> bool:
        """Whether a new run or response should fail, by the seeded fail_rate."""
        return self.options.fail_rate > 0 and self.rng.random() < self.options.fail_rate

    def changed(self) -> None:
        """Note that vector store contents changed (cached indexes are stale)."""
        self.version += 1
        self._indexes.clear()

    def index_for(self, store_ids: Sequence[str]) -> tuple[Bm25Index, dict[str, dict[str, Any]]]:
        """A BM25 index over the files of these vector stores, and each file's attributes."""
        key = (tuple(sorted(set(store_ids))), self.version)
        cached = self._indexes.get(key)
        if cached is not None:
            return cached
        passages: list[Passage] = []
        attributes: dict[str, dict[str, Any]] = {}
        for store_id in key[0]:
            store = self.vector_stores.get(store_id)
            if store is None:
                continue
            for file_id, vs_file in store.files.items():
                stored = self.files.get(file_id)
                if stored is None or file_id in attributes:
                    continue
                attributes[file_id] = dict(vs_file.get("attributes") or {})
                passages.extend(stored.passages())
        result = (Bm25Index(passages), attributes)
        self._indexes[key] = result
        return result


def state() -> State:
    """The State of the app serving this request."""
    return current_app.extensions["emulator"]


def now() -> float:
    """The current time (one place, so the clock is easy to reason about)."""
    return time.time()


def json_body() -> Any:
    """The request's JSON body (an empty body is {}); 400 when it is not JSON."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
        ) from None


def paginate(
    items: Sequence[Any],
    id_of: Callable[[Any], str],
    render: Callable[[Any], dict[str, Any]],
    args: Mapping[str, str],
    default_order: str = "desc",
) -> dict[str, Any]:
    """An OpenAI cursor page: items are given oldest first; order, after, before and limit apply."""
    limit = query_int(args, "limit", 20, 1, 100)
    order = query_enum(args, "order", default_order, "asc", "desc")
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [id_of(x) for x in ordered]
    after, before = args.get("after"), args.get("before")
    start, end = 0, len(ordered)
    if after:
        start = ids.index(after) + 1 if after in ids else len(ordered)
    if before:
        end = ids.index(before) if before in ids else 0
    window = ordered[start:end]
    if before and not after:
        # Paging backwards keeps the items nearest the cursor.
        chosen = window[-limit:]
        has_more = len(window) > limit
    else:
        chosen = window[:limit]
        has_more = len(window) > limit
    data = [render(x) for x in chosen]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def word_count(*texts: str) -> int:
    """A rough token count: words and punctuation marks."""
    return sum(len(re.findall(r"\w+|[^\w\s]", t or "")) for t in texts)
