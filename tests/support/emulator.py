"""The emulator's own test endpoints: request counts by method and path template, and faults."""

from __future__ import annotations

from typing import Any

import httpx


def emulator_stats(url: str) -> dict[str, int]:
    """Upstream requests an emulator at `url` counted, by method and path template."""
    return httpx.get(f"{url}/_emulator/stats", timeout=10).json()["requests"]


def emulator_requests(url: str) -> int:
    """How many upstream requests the emulator at `url` counted in all."""
    return int(httpx.get(f"{url}/_emulator/stats", timeout=10).json()["total"])


def reset_emulator_stats(url: str) -> None:
    """Zero the request counters of the emulator at `url`."""
    httpx.post(f"{url}/_emulator/stats/reset", timeout=10).raise_for_status()


def add_faults(url: str, *faults: dict[str, Any]) -> None:
    """Queue faults on the emulator at `url` for its next matching requests."""
    r = httpx.post(f"{url}/_emulator/faults", json={"faults": list(faults)}, timeout=10)
    assert r.status_code < 300, r.text
