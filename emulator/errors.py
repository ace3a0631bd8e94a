"""OpenAI-shaped API errors."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered as `{"error": {...}}` with an HTTP status, as OpenAI does."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 invalid_request_error."""
    return ApiError(400, message, param=param, code=code)


def not_found(kind: str, object_id: str, param: str | None = None) -> ApiError:
    """A 404 for an id nobody created (or that was deleted)."""
    return ApiError(404, f"No {kind} found with id '{object_id}'.", param=param)
