"""Request parsing shared by the routes: JSON bodies and whole-number query values."""

from __future__ import annotations

from typing import Any

from flask import request

from proxy.web.errors import ApiError

MAX_DIGITS = 18  # fits a 64-bit id


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a clear 400/415."""
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "Send JSON with Content-Type: application/json."
        )
    try:
        data = request.get_json(silent=True)
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "The JSON body is nested too deeply.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    return data


def whole(name: str, default: int, what: str = "a whole number") -> int:
    """A query value as a non-negative whole number (`default` when absent), or a clear 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_DIGITS:
        raise ApiError(400, f"invalid_{name}", f"`{name}` must be {what}.")
    return int(raw)
