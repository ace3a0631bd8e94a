"""Build the openai client and the upstream adapter from settings and what setup recorded."""

from __future__ import annotations

import httpx
from openai import OpenAI

from proxy.config import Settings
from proxy.upstream.assistants import AssistantsUpstream
from proxy.upstream.base import Upstream
from proxy.upstream.responses import ResponsesUpstream

OPENAI_HOST = "api.openai.com"


def make_client(settings: Settings, *, retries: int = 2) -> OpenAI:
    """An openai client for the configured upstream (the key never leaves this object)."""
    return OpenAI(
        api_key=settings.openai_api_key or "docschat-local",
        base_url=settings.openai_base_url or None,
        max_retries=retries,
        timeout=settings.upstream_timeout,
    )


def warm_sdk(settings: Settings) -> None:
    """Load the SDK resources (and their types) that answers use; no request is made."""
    client = make_client(settings, retries=0)
    api = settings.api or ""
    if api in ("", "assistants"):
        _ = (client.beta.threads.runs, client.beta.threads.messages)
    if api in ("", "responses"):
        _ = (client.responses, client.conversations.items)


def default_api(settings: Settings) -> str:
    """The mode to use when neither settings nor setup chose one."""
    if settings.api:
        return settings.api
    base = settings.openai_base_url
    return "responses" if not base or OPENAI_HOST in base else "assistants"


def make_upstream(
    settings: Settings, client: OpenAI, api: str, vector_store_id: str, assistant_id: str
) -> Upstream:
    """The adapter for `api`, wired to the recorded vector store (and assistant)."""
    # A stream that sends nothing for DOCSCHAT_STREAM_STALL seconds gives up reading, so its
    # answer falls back to polling instead of waiting on a stalled connection.
    streams = client.with_options(
        timeout=httpx.Timeout(settings.upstream_timeout, read=settings.stream_stall)
    )
    if api == "assistants":
        return AssistantsUpstream(
            client,
            streams,
            assistant_id,
            context_turns=settings.context_turns,
            max_tokens=settings.max_answer_tokens,
        )
    return ResponsesUpstream(
        client,
        streams,
        settings.model,
        settings.instructions,
        vector_store_id,
        max_tokens=settings.max_answer_tokens,
    )
