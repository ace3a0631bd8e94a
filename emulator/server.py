"""Serving the emulator with werkzeug's threaded server: in a background thread or blocking."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from emulator.app import create_app
from emulator.options import EmulatorOptions
from emulator.state import State

# Bursts of hundreds of clients must queue in the kernel, not be refused.
LISTEN_BACKLOG = 1024


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (benchmarks make thousands); errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class RunningEmulator:
    """An emulator serving on a background thread; `stop()` ends it."""

    def __init__(self, server: BaseWSGIServer, state: State, thread: threading.Thread) -> None:
        self._server = server
        self._state = state
        self._thread = thread
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.base_url = f"{self.url}/v1"

    def stop(self) -> None:
        """Stop accepting requests and end open streams and hangs."""
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make(options: EmulatorOptions, host: str, port: int) -> tuple[BaseWSGIServer, State]:
    app = create_app(options)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    server.daemon_threads = True  # open streams must not keep the process alive
    server.socket.listen(LISTEN_BACKLOG)
    return server, app.extensions["emulator"]


def serve_in_thread(
    options: EmulatorOptions, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Start an emulator on a background thread (port 0 picks a free port)."""
    server, state = _make(options, host, port)
    # A short poll interval makes stop() quick (tests start and stop many emulators).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator", daemon=True
    )
    thread.start()
    return RunningEmulator(server, state, thread)


def serve(options: EmulatorOptions, host: str = "127.0.0.1", port: int = 8100) -> None:
    """Serve until interrupted (for `docschat emulator`)."""
    server, state = _make(options, host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        state.stopping.set()
        server.server_close()
