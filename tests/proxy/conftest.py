"""Fixtures of the proxy tests: docschat's parts built inside the test process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import Live, live_env, provision


@pytest.fixture
def start_live(start_emulator: Callable[..., Any]) -> Iterator[Callable[..., Live]]:
    """Build in-process docschats: `start_live(db_url, emulator={...}, with_worker=True,
    readers=True, like=None, **env)`. The first on a database runs setup and uploads the
    sample pages; `like=` another one shares its emulator and its (already set up) database."""
    built: list[Live] = []

    def start(
        db_url: str,
        *,
        emulator: dict[str, Any] | None = None,
        with_worker: bool = True,
        readers: bool = True,
        like: Live | None = None,
        **env: str,
    ) -> Live:
        emu = like.emulator if like is not None else start_emulator(**(emulator or {}))
        settings = live_env(db_url, emu, **env)
        if like is None:
            provision(settings)
        live = Live(settings, emu, with_worker=with_worker, readers=readers)
        built.append(live)
        return live

    yield start
    for live in reversed(built):
        live.close()
