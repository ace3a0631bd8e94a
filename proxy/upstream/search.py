"""Search the docs' vector store directly: the best chunks for a query, no model, no tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from openai import OpenAI

from proxy.upstream.errors import translated

MAX_RESULTS = 50  # the API's ceiling for max_num_results


@dataclass(frozen=True)
class Found:
    """One chunk the vector store ranked for a query."""

    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, str | float | bool] = field(default_factory=dict)


class DocsSearch:
    """The vector store's own search endpoint, for one store."""

    def __init__(self, client: OpenAI, vector_store_id: str) -> None:
        self.client = client
        self.vector_store_id = vector_store_id

    def search(self, query: str, limit: int) -> list[Found]:
        """The best chunks for `query`, best first (one request)."""
        with translated("search docs"):
            page = self.client.vector_stores.search(
                self.vector_store_id,
                query=query,
                max_num_results=max(1, min(limit, MAX_RESULTS)),
            )
        return [
            Found(
                r.file_id,
                r.filename,
                r.score,
                "\n".join(c.text for c in r.content if c.type == "text"),
                dict(r.attributes or {}),
            )
            for r in page.data
        ]
