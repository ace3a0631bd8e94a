"""Provisioning: choose the upstream API and make sure the vector store (and assistant) exist.

Pure upstream work: what was made before comes in and what exists now goes out as a
`Provisioned`; recording it is the caller's business.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from openai import NotFoundError, OpenAI

from proxy.config import Settings
from proxy.upstream.errors import translated
from proxy.upstream.factory import OPENAI_HOST

STORE_NAME = "docschat"


@dataclass(frozen=True)
class Provisioned:
    """The chosen API and the ids of the upstream objects made for it."""

    api: str
    vector_store_id: str
    assistant_id: str = ""
    changes: tuple[str, ...] = ()

    def values(self) -> dict[str, str]:
        """As key/value pairs, for storing."""
        return {
            "api": self.api,
            "vector_store_id": self.vector_store_id,
            "assistant_id": self.assistant_id,
        }

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> Provisioned | None:
        """Read back what `values()` gave; None when nothing was provisioned yet."""
        if not values.get("vector_store_id"):
            return None
        return cls(values.get("api", ""), values["vector_store_id"], values.get("assistant_id", ""))


def detect_api(settings: Settings, client: OpenAI) -> str:
    """`responses` or `assistants`: the setting if given, else what the upstream serves.

    Only a 404 from /assistants means "no Assistants API here"; any other failure (a wrong key,
    an unreachable server) is raised, not taken for an answer.
    """
    if settings.api:
        return settings.api
    if not settings.openai_base_url or OPENAI_HOST in settings.openai_base_url:
        return "responses"
    with warnings.catch_warnings(), translated("probe assistants"):
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            client.beta.assistants.list(limit=1)
        except NotFoundError:
            return "responses"
    return "assistants"


def provision(settings: Settings, client: OpenAI, before: Provisioned | None) -> Provisioned:
    """Create or verify the upstream objects; idempotent."""
    api = detect_api(settings, client)
    changes: list[str] = []
    store_id = _ensure_store(client, before.vector_store_id if before else "", changes)
    assistant_id = before.assistant_id if before else ""
    if api == "assistants":
        assistant_id = _ensure_assistant(settings, client, assistant_id, store_id, changes)
    if before is None or before.api != api:
        changes.append(f"api set to {api}")
    return Provisioned(api, store_id, assistant_id, tuple(changes))


def _ensure_store(client: OpenAI, store_id: str, changes: list[str]) -> str:
    """The recorded vector store if it still exists, else a new one."""
    with translated("vector store"):
        if store_id:
            try:
                return client.vector_stores.retrieve(store_id).id
            except NotFoundError:
                changes.append(f"vector store {store_id} was gone")
        store = client.vector_stores.create(name=STORE_NAME)
    changes.append(f"created vector store {store.id}")
    return store.id


def _ensure_assistant(
    settings: Settings, client: OpenAI, assistant_id: str, store_id: str, changes: list[str]
) -> str:
    """The recorded assistant (updated when model, instructions or store differ), else a new one."""
    wanted = {
        "model": settings.model,
        "instructions": settings.instructions,
        "tools": [{"type": "file_search"}],
        "tool_resources": {"file_search": {"vector_store_ids": [store_id]}},
    }
    with warnings.catch_warnings(), translated("assistant"):
        warnings.simplefilter("ignore", DeprecationWarning)
        if assistant_id:
            try:
                current = client.beta.assistants.retrieve(assistant_id)
            except NotFoundError:
                current = None
            if current is not None:
                stores = []
                if current.tool_resources and current.tool_resources.file_search:
                    stores = current.tool_resources.file_search.vector_store_ids or []
                same = (
                    current.model == settings.model
                    and current.instructions == settings.instructions
                    and stores == [store_id]
                    and any(t.type == "file_search" for t in current.tools)
                )
                if not same:
                    client.beta.assistants.update(assistant_id, **wanted)
                    changes.append(f"updated assistant {assistant_id}")
                return assistant_id
        created = client.beta.assistants.create(name=STORE_NAME, **wanted)
    changes.append(f"created assistant {created.id}")
    return created.id
