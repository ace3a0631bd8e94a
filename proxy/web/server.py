"""The production web server: gunicorn's threaded worker, with a deadline on request headers.

`docschat serve` runs it from code (one gunicorn worker, the answer worker inside it); the
Procfile's web process runs the same options through gunicorn.conf.py.

gunicorn's gthread worker waits a few seconds for a new connection's first bytes, but once they
arrive it reads the request headers with no limit, so a client that trickles bytes holds a
thread for as long as it likes. `DocschatWorker` closes connections whose headers are not
complete within DOCSCHAT_HEADER_TIMEOUT seconds. It also cuts open WebSockets when the worker
stops: they never end by themselves, and would hold a graceful stop for its whole timeout
(readers' widgets reconnect on their own).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.errors import AppImportError
from gunicorn.workers.gthread import ThreadWorker
from sqlalchemy.exc import OperationalError

from proxy import metrics_dir
from proxy.config import SettingError, Settings
from proxy.logs import ACCESS_FORMAT, dict_config

GRACEFUL_TIMEOUT = 20


class DocschatWorker(ThreadWorker):
    """gunicorn's gthread worker with a deadline on reading a request's headers."""

    def init_process(self) -> None:
        """Read the header deadline, then run gunicorn's worker loop."""
        self.header_timeout = Settings.from_env().header_timeout
        self._guard = threading.Lock()
        self._reading: dict[Any, float] = {}  # connection -> when its headers are overdue
        self._websockets: set[Any] = set()
        super().init_process()

    def handle(self, conn: Any) -> Any:
        """Serve a connection (in a pool thread) while its header deadline is watched."""
        with self._guard:
            self._reading[conn] = time.monotonic() + self.header_timeout
        try:
            return super().handle(conn)
        finally:
            with self._guard:
                self._reading.pop(conn, None)
                self._websockets.discard(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        """The headers are in: no deadline from here on (bodies are small, WebSockets long)."""
        upgrade = any(
            name == "UPGRADE" and value.strip().lower() == "websocket"
            for name, value in req.headers
        )
        length = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), "")
        limit = getattr(self.wsgi, "config", {}).get("MAX_CONTENT_LENGTH")
        if limit and length.strip().isdigit() and int(length) > limit:
            # The app refuses such a body unread (413), and gunicorn does not drain that much
            # before the next request: it would close the connection after answering as if it
            # stayed open, and the client's next request on it would fail. Say "close" instead.
            req.must_close = True
        with self._guard:
            self._reading.pop(conn, None)
            if upgrade:
                self._websockets.add(conn)
        return super().handle_request(req, conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """Hand a finished connection back to gunicorn's main loop, but close the ones that
        end in a pool thread: gunicorn's graceful close waits up to 2 s for the client to hang
        up, and on the main loop that wait holds up accepting every other connection (a
        refused WebSocket whose client keeps it open froze the server for 2 s each)."""
        if fs.cancelled() or fs.exception() is not None or fs.result():
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        self.tpool.submit(conn.close, graceful=True)

    def is_parent_alive(self) -> bool:
        """gunicorn's check that the arbiter still runs; when it is gone (killed), this worker
        stops as if told to, so its WebSockets are cut and it does not linger."""
        alive = bool(super().is_parent_alive())
        if not alive:
            self.alive = False
        return alive

    def murder_pending(self) -> None:
        """gunicorn's main loop calls this about once a second: close overdue connections too."""
        super().murder_pending()
        now = time.monotonic()
        with self._guard:
            late = [conn for conn, due in self._reading.items() if due <= now]
            for conn in late:
                del self._reading[conn]
            cut = [] if self.alive else list(self._websockets)
            self._websockets.difference_update(cut)
        if cut:
            self.log.info("closing %d open WebSocket(s) to stop", len(cut))
        if late:
            self.log.info(
                "closing %d connection(s) that sent no complete request headers in %gs",
                len(late),
                self.header_timeout,
            )
        for conn in late + cut:
            _hang_up(conn.sock)


def _hang_up(sock: socket.socket) -> None:
    """End a connection under the thread reading it: its read returns at once, empty."""
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)


def _close_services(_arbiter: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook: stop the app's background work and release connections."""
    app = getattr(worker, "wsgi", None)
    services = app.extensions.get("docschat") if isinstance(app, Flask) else None
    if services is not None:
        services.close()


def web_options(settings: Settings, *, bind: str, workers: int) -> dict[str, Any]:
    """The gunicorn settings of every docschat web process. The master must have joined the
    machine's metrics directory (`metrics_dir.share`) before it starts its workers."""
    return {
        "bind": bind,
        "workers": workers,
        # Threads, not gevent: every open WebSocket holds one thread, which costs little memory
        # while it waits, and keeps the sync openai SDK and SQLAlchemy free of monkey-patching.
        "worker_class": DocschatWorker,
        # Far more threads than connections: an open WebSocket waits without one, and a request
        # holds one for the milliseconds of its queries (the rest wait in the pool,
        # DOCSCHAT_DB_POOL_TIMEOUT).
        "threads": settings.web_threads,
        # gthread caps open connections per worker at worker_connections (default 1,000).
        "worker_connections": settings.web_threads + 100,
        # The worker's heartbeat timeout; WebSockets stay open for as long as a reader keeps
        # the page, and gthread's main loop beats on its own, so none is needed.
        "timeout": 0,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        "worker_exit": _close_services,
        # gunicorn's control socket defaults to one path per user, which every gunicorn of the
        # user (two web processes of a Procfile, say) would take over from the others.
        "control_socket_disable": True,
        # The same log lines as every docschat process (JSON with DOCSCHAT_LOG_JSON=1), with
        # the access log on.
        "logconfig_dict": dict_config(settings, gunicorn=True),
        "access_log_format": ACCESS_FORMAT,
        # A worker that ended: its live gauges (jobs in flight, WebSockets) no longer count.
        "child_exit": metrics_dir.child_exit,
    }


def load_app(make_app: Callable[[], Flask]) -> Flask:
    """Build the app in a gunicorn worker. A start that cannot succeed (settings refused, no
    database) stops gunicorn with one clear line and "App failed to load", not a traceback."""
    try:
        return make_app()
    except SettingError as exc:
        raise AppImportError("\n".join(f"docschat: {p}" for p in exc.problems)) from None
    except OperationalError as exc:
        reason = (str(exc.orig or exc).strip().splitlines() or ["?"])[0]
        raise AppImportError(f"docschat: cannot open the database: {reason}") from None


class Server(BaseApplication):
    """gunicorn run from code: the given options, and an app built in the worker process."""

    def __init__(self, make_app: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.make_app = make_app
        self.options = options
        super().__init__(prog="docschat")

    def load_config(self) -> None:
        """Apply the options (gunicorn calls this while it is built)."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app; gunicorn calls this in the worker, after the fork."""
        return load_app(self.make_app)
