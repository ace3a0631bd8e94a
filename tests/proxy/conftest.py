"""Fixtures of the proxy tests: docschat's parts built inside the test process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from proxy.config import Settings
from proxy.services import Services
from proxy.web.app import create_app
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


@pytest.fixture
def serve_app() -> Iterator[Callable[..., tuple[str, Services]]]:
    """Serve the real Flask app, built in this process with `create_app(settings, ...)`, on a
    loopback port from a server thread; returns its base URL and its services."""
    running: list[tuple[BaseWSGIServer, Services]] = []

    def serve(settings: Settings, *, with_worker: bool = False) -> tuple[str, Services]:
        app = create_app(settings, with_worker=with_worker)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        server.daemon_threads = True  # open WebSockets must not hold the shutdown
        services: Services = app.extensions["docschat"]
        running.append((server, services))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}", services

    yield serve
    for server, services in running:
        server.shutdown()
        services.close()
