"""Upstream failures as a small hierarchy, translated from the openai SDK at the adapter boundary.

    UpstreamError                 any failed upstream request (.detail: what failed, no secrets)
    ├── RateLimited               429: the account must slow down (.retry_after, when sent)
    ├── Unavailable               5xx, 408, 409, timeouts, refused connections: try again later
    │   └── StreamBroken          a stream ended or stalled before its run did; poll the run
    ├── Rejected                  any other 4xx: this request will never succeed as it is
    │   └── Unauthorized          401 or 403: the API key (or its project) is not accepted
    └── NotFound                  404: the thread, run, store or endpoint does not exist

Callers catch the class that matters to them; nothing outside this package tests status codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai


class UpstreamError(Exception):
    """An upstream request failed."""

    retryable = False

    def __init__(self, detail: str, *, status: int = 0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status

    @property
    def kind(self) -> str:
        """A short label for metrics and logs: the HTTP status, or "network"."""
        return str(self.status) if self.status else "network"


class RateLimited(UpstreamError):
    """The upstream asked us to slow down; `retry_after` seconds when it said so."""

    retryable = True

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail, status=429)
        self.retry_after = retry_after


class Unavailable(UpstreamError):
    """The upstream could not serve the request now; the same request may succeed later."""

    retryable = True


class StreamBroken(Unavailable):
    """A stream ended before the run did; the run is still going and can be polled."""


class Rejected(UpstreamError):
    """The upstream refused the request itself; repeating it will not help."""


class Unauthorized(Rejected):
    """The upstream does not accept the API key."""


class NotFound(UpstreamError):
    """The upstream object (or endpoint) does not exist."""


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """The server's Retry-After in seconds, when it sent one."""
    raw = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _from_status(exc: openai.APIStatusError, what: str) -> UpstreamError:
    status = exc.status_code
    detail = f"{what}: upstream answered {status}"
    if status == 429:
        return RateLimited(detail, retry_after=_retry_after(exc))
    if status == 404:
        return NotFound(detail, status=status)
    if status in (401, 403):
        return Unauthorized(detail, status=status)
    if status >= 500 or status in (408, 409):
        return Unavailable(detail, status=status)
    return Rejected(detail, status=status)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run an upstream call, turning SDK errors into UpstreamErrors (no key, no body echoed)."""
    try:
        yield
    except openai.APIStatusError as exc:
        raise _from_status(exc, what) from exc
    except openai.APITimeoutError as exc:
        raise Unavailable(f"{what}: upstream timed out") from exc
    except openai.APIConnectionError as exc:
        raise Unavailable(f"{what}: upstream unreachable") from exc
    except openai.OpenAIError as exc:
        raise Rejected(f"{what}: {type(exc).__name__}") from exc
    except httpx.TimeoutException as exc:  # reading a streamed body: the SDK does not wrap it
        raise StreamBroken(f"{what}: the stream stalled") from exc
    except httpx.TransportError as exc:
        raise StreamBroken(f"{what}: the stream broke off") from exc
