"""Upstream answers read as plain JSON, without SDK models: whole bodies and streamed events.

The SDK builds a pydantic model for every response and every streamed event, and validates each
event; at 40 events a second per answer that was the largest part of a streaming worker's CPU.
The adapters only read a few fields, so they take the JSON as it comes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from proxy.upstream.errors import StreamBroken

Event = tuple[str, dict[str, Any]]


def opened(request: AbstractContextManager[Any]) -> Iterator[Event]:
    """Send a streaming request now (its errors raise here) and read its events lazily."""
    stack = ExitStack()
    response = stack.enter_context(request)
    return _events(response, stack)


def _events(response: Any, stack: ExitStack) -> Iterator[Event]:
    with stack:  # closes the response however the reader stops
        name, data = "", []
        for line in response.iter_lines():
            if line:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
                continue
            if data:
                payload = "\n".join(data)
                if payload.startswith("[DONE]"):
                    return
                event = json.loads(payload)
                if name == "error":  # the run or response may still be going: poll it
                    raise StreamBroken("the upstream sent an error event")
                yield name, event
            name, data = "", []


def body(raw: Any) -> dict[str, Any]:
    """The JSON object of a `with_raw_response` call, without building SDK models."""
    return raw.http_response.json()
