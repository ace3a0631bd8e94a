"""A WebSocket is subscribed before its handshake answers, so no event falls in between."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websocket

from proxy.config import Settings
from proxy.services import Services

ROUNDS = 20


@pytest.fixture
def served(serve_app, tmp_path: Path) -> tuple[str, Services]:
    """The real app on a loopback port (SQLite, no worker), and its services."""
    url, services = serve_app(Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'ws.db'}"))
    return url.removeprefix("http://"), services


def test_an_event_published_as_the_handshake_completes_reaches_the_reader(served) -> None:
    """The widget reads the conversation once its socket is open; an event published right
    then must arrive on the socket, or the reader would miss it until the next change."""
    host, services = served
    for n in range(ROUNDS):
        sid = services.chat.create_session()
        ws = websocket.create_connection(f"ws://{host}/api/sessions/{sid}/events", timeout=5)
        try:
            event = {"type": "message", "message": {"id": n, "text": "published at once"}}
            services.events.publish(sid, event)
            assert json.loads(ws.recv()) == event
        finally:
            ws.close()
