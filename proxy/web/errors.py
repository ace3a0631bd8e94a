"""The one error type the service answers with: status, code and a readable message."""

from __future__ import annotations


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

    def body(self) -> dict[str, dict[str, str]]:
        """The JSON body of this error."""
        return {"error": {"code": self.code, "message": self.message}}


def not_found(what: str = "session") -> ApiError:
    """404 for an unknown (or someone else's) session or message."""
    return ApiError(404, f"{what}_not_found", f"No such {what}.")
