"""What the domain refuses, in its own words; the web edge maps each class to a status.

Every refusal carries a stable `code` and a `message` a reader can act on.
"""

from __future__ import annotations


class Refused(Exception):
    """A request the domain will not carry out."""

    code = "refused"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(Refused):
    """An unknown (or someone else's) session or message."""

    def __init__(self, what: str = "session") -> None:
        super().__init__(f"No such {what}.", code=f"{what}_not_found")


class Invalid(Refused):
    """Input that can never be accepted as it is."""


class TooLong(Invalid):
    """A question over the length limit."""

    code = "too_long"


class Conflict(Refused):
    """Valid input that does not fit the current state (a busy session, an answer not failed)."""


class RateLimited(Refused):
    """Too many requests; `retry_after` seconds until one is counted again."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Resting(RateLimited):
    """The day's answer or token budget is spent until `retry_after` seconds from now."""

    code = "resting"


class NotSetUp(Refused):
    """The upstream objects have not been provisioned (or not for the configured API)."""

    code = "not_set_up"
