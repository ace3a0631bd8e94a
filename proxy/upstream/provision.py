"""`docschat setup`: choose the upstream API, make sure the vector store (and assistant) exist."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from openai import NotFoundError, OpenAI
from sqlalchemy import select

from proxy.config import Settings
from proxy.storage.db import Database
from proxy.storage.models import Setting
from proxy.upstream.errors import translated
from proxy.upstream.factory import OPENAI_HOST

STORE_NAME = "docschat"


@dataclass(frozen=True)
class Recorded:
    """What setup chose and made upstream, as stored in the settings table."""

    api: str
    vector_store_id: str
    assistant_id: str = ""
    changes: tuple[str, ...] = ()


def recorded(db: Database) -> Recorded | None:
    """The ids setup recorded, or None before the first setup."""
    with db.read() as s:
        values = {k: v for k, v in s.execute(select(Setting.key, Setting.value))}
    if "vector_store_id" not in values:
        return None
    return Recorded(
        values.get("api", ""), values["vector_store_id"], values.get("assistant_id", "")
    )


def _record(db: Database, values: dict[str, str]) -> None:
    with db.session() as s:
        for key, value in values.items():
            s.merge(Setting(key=key, value=value))


def detect_api(settings: Settings, client: OpenAI) -> str:
    """`responses` or `assistants`: the setting if given, else what the upstream serves."""
    if settings.api:
        return settings.api
    if not settings.openai_base_url or OPENAI_HOST in settings.openai_base_url:
        return "responses"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            with translated("probe assistants"):
                try:
                    client.beta.assistants.list(limit=1)
                except NotFoundError:
                    return "responses"
        except Exception:
            return "responses"
    return "assistants"


def setup(settings: Settings, db: Database, client: OpenAI) -> Recorded:
    """Create or verify the upstream objects and record their ids; idempotent."""
    before = recorded(db)
    api = detect_api(settings, client)
    changes: list[str] = []
    store_id = _ensure_store(client, before.vector_store_id if before else "", changes)
    assistant_id = before.assistant_id if before else ""
    if api == "assistants":
        assistant_id = _ensure_assistant(settings, client, assistant_id, store_id, changes)
    if before is None or before.api != api:
        changes.append(f"api set to {api}")
    _record(db, {"api": api, "vector_store_id": store_id, "assistant_id": assistant_id})
    return Recorded(api, store_id, assistant_id, tuple(changes))


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
