"""A WebSocket reader of one session's events, as the widget holds one."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import websocket


class Listener:
    """Reads a session's events on a background thread and keeps them in order."""

    def __init__(self, base_url: str, sid: str) -> None:
        self.sid = sid
        self.base_url = base_url
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        ws_url = base_url.replace("http://", "ws://") + f"/api/sessions/{sid}/events"
        self.ws = websocket.create_connection(ws_url, timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                return
            if not raw:
                return
            with self._lock:
                self.events.append(json.loads(raw))

    def received(self) -> list[dict[str, Any]]:
        """Every event so far, in the order it arrived."""
        with self._lock:
            return list(self.events)

    def messages(self) -> dict[int, dict[str, Any]]:
        """The latest state of every message this reader was sent, by message id."""
        return {e["message"]["id"]: e["message"] for e in self.received() if e["type"] == "message"}

    def finished(self) -> dict[int, dict[str, Any]]:
        """Assistant messages received in a final state (done or error), by message id."""
        return {
            e["message"]["id"]: e["message"]
            for e in self.received()
            if e.get("type") == "message"
            and e["message"]["role"] == "assistant"
            and e["message"]["status"] in ("done", "error")
        }

    def close(self) -> None:
        """Drop the connection (no closing handshake: tests open hundreds of these)."""
        with contextlib.suppress(Exception):
            self.ws.shutdown()
