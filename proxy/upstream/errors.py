"""Translate the openai SDK's exceptions into UpstreamError at the adapter boundary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import openai

from proxy.upstream.base import UpstreamError

T = TypeVar("T")


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """The server's Retry-After in seconds, when it sent one."""
    raw = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run an upstream call, turning SDK errors into UpstreamError (no key, no body echoed)."""
    try:
        yield
    except openai.APIStatusError as exc:
        status = exc.status_code
        retryable = status == 429 or status >= 500 or status == 408 or status == 409
        raise UpstreamError(
            f"{what}: upstream answered {status}",
            retryable=retryable,
            retry_after=_retry_after(exc),
            status=status,
        ) from exc
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        raise UpstreamError(f"{what}: upstream unreachable", retryable=True) from exc
    except openai.OpenAIError as exc:
        raise UpstreamError(f"{what}: {type(exc).__name__}", retryable=False) from exc


def call(what: str, fn: Callable[[], T]) -> T:
    """Call `fn` inside `translated(what)`."""
    with translated(what):
        return fn()
