"""Errors as clients see them: a status, a stable code and a readable message.

`ApiError` is the web edge's own refusal (bad JSON, a forbidden origin, a missing token);
`STATUS` maps each domain refusal to the status it answers with.
"""

from __future__ import annotations

from proxy.answers.errors import (
    Conflict,
    Invalid,
    NotFound,
    NotSetUp,
    RateLimited,
    Refused,
    Resting,
    TooLong,
)

# The most specific class a refusal is an instance of decides (TooLong before Invalid).
STATUS: dict[type[Refused], int] = {
    NotFound: 404,
    Invalid: 400,
    TooLong: 413,
    Conflict: 409,
    RateLimited: 429,
    Resting: 503,  # the service, not the client, has run out: come back tomorrow
    NotSetUp: 503,
}


class ApiError(Exception):
    """A refusal a client can act on; rendered as {"error": {"code", "message"}}."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def of(cls, refusal: Refused) -> ApiError:
        """The answer to a domain refusal, by the STATUS table."""
        status = next(STATUS[c] for c in type(refusal).__mro__ if c in STATUS)
        retry_after = refusal.retry_after if isinstance(refusal, RateLimited) else None
        return cls(status, refusal.code, refusal.message, retry_after=retry_after)

    def body(self) -> dict[str, dict[str, str]]:
        """The JSON body of this error."""
        return {"error": {"code": self.code, "message": self.message}}
