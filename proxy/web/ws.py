"""The WebSocket route: push a session's message and delta events as they happen."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections import Counter
from typing import Any

from flask import Blueprint, current_app, g, request
from flask_sock import ConnectionClosed, Sock

sock = Sock()
events_bp = Blueprint("events", __name__)
PING_EVERY = 20.0
# How often an idle connection's thread wakes to read what the reader sent: every open widget holds
# a thread, so this sets an idle web process's CPU (events wake the thread at once regardless).
IDLE_WAKE = 2.0
MAX_INCOMING_PER_SECOND = 20


class _ReaderThread(threading.Thread):
    """simple-websocket's per-socket reader, as a daemon: a reader blocked on a socket that
    gunicorn has already closed under it would otherwise keep a stopping worker alive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, daemon=True, **kwargs)


# flask-sock passes these to every simple-websocket Server it builds.
SERVER_OPTIONS = {"thread_class": _ReaderThread}


class Connections:
    """Open WebSockets per client IP and per session, to refuse floods."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_ip: Counter[str] = Counter()
        self.by_session: Counter[str] = Counter()

    def open(self, ip: str, sid: str, per_ip: int, per_session: int) -> bool:
        """Count a new connection; False when a limit is reached."""
        with self._lock:
            if self.by_ip[ip] >= per_ip or self.by_session[sid] >= per_session:
                return False
            self.by_ip[ip] += 1
            self.by_session[sid] += 1
            return True

    def close(self, ip: str, sid: str) -> None:
        """Forget a closed connection."""
        with self._lock:
            self.by_ip[ip] -= 1
            self.by_session[sid] -= 1
            if self.by_ip[ip] <= 0:
                del self.by_ip[ip]
            if self.by_session[sid] <= 0:
                del self.by_session[sid]


@events_bp.before_request
def _subscribe() -> None:
    """Subscribe before the handshake: the reader reads the list once the socket is open, so an
    event published in between must already be queued for it."""
    services = current_app.extensions["docschat"]
    settings = services.settings
    sid = (request.view_args or {}).get("sid", "")
    if not services.chat.exists(sid):
        g.ws_refusal = (4404, "session not found")
        return
    conns: Connections = current_app.extensions["docschat_ws"]
    if not conns.open(g.client_ip, sid, settings.ws_per_ip, settings.ws_per_session):
        services.metrics.refused("ws_limit")
        g.ws_refusal = (4429, "too many connections")
        return
    g.ws_subscription = services.hub.subscribe(sid)
    services.metrics.websocket_opened()


@events_bp.teardown_request
def _unsubscribe(_exc: BaseException | None) -> None:
    """Forget the subscription and the connection, however the request ended."""
    sub = g.pop("ws_subscription", None)
    if sub is not None:
        services = current_app.extensions["docschat"]
        services.hub.unsubscribe(sub)
        services.metrics.websocket_closed()
        current_app.extensions["docschat_ws"].close(g.client_ip, sub.session_id)


@sock.route("/api/sessions/<sid>/events", bp=events_bp)
def events(ws: Any, sid: str) -> None:
    """Send every event of the session until the reader goes away."""
    refusal = g.get("ws_refusal")
    if refusal is not None:
        ws.close(reason=refusal[0], message=refusal[1])
        return
    with contextlib.suppress(ConnectionClosed):
        _pump(ws, g.ws_subscription.queue)


def _pump(ws: Any, events: queue.Queue[dict[str, Any]]) -> None:
    """Forward events; ping when idle; close a client that floods us with messages."""
    last_sent = time.monotonic()
    window_start, incoming = time.monotonic(), 0
    while True:
        try:
            event = events.get(timeout=IDLE_WAKE)
        except queue.Empty:
            event = None
        if event is not None:
            ws.send(json.dumps(event))
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > PING_EVERY:
            ws.send('{"type": "ping"}')
            last_sent = time.monotonic()
        while ws.receive(timeout=0) is not None:
            now = time.monotonic()
            if now - window_start > 1.0:
                window_start, incoming = now, 0
            incoming += 1
            if incoming > MAX_INCOMING_PER_SECOND:
                ws.close(reason=1008, message="too many messages")
                return
        if not ws.connected:
            return
