"""A WebSocket is subscribed before its handshake answers, so no event falls in between."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket
from werkzeug.serving import make_server

from proxy.config import Settings
from proxy.web.app import create_app

ROUNDS = 20


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """The real app on a loopback port (SQLite, no worker), and its services."""
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'ws.db'}")
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}", app.extensions["docschat"]
    finally:
        server.shutdown()
        app.extensions["docschat"].close()


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
