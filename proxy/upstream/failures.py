"""One line for the operator when the upstream fails a request of a command or a re-sync."""

from __future__ import annotations

from proxy.config import Settings
from proxy.upstream.errors import Unauthorized, UpstreamError

OPENAI_V1 = "https://api.openai.com/v1"


def upstream_failure(exc: UpstreamError, settings: Settings) -> str:
    """What failed and where; a refused key (401, 403) also says which settings to check."""
    where = settings.openai_base_url or OPENAI_V1
    line = f"{exc.detail} ({where})"
    if isinstance(exc, Unauthorized):
        line += (
            ": the upstream does not accept the API key; check OPENAI_API_KEY, and "
            "OPENAI_BASE_URL if the key belongs to another server"
        )
    return line
