"""gunicorn settings for the web process (`web:` in the Procfile)."""

import os

from proxy import metrics_dir
from proxy.config import Settings
from proxy.logs import ACCESS_FORMAT, dict_config

_settings = Settings.from_env()

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Threads, not gevent: every open WebSocket holds one thread, which costs little memory while it
# waits, and keeps the sync openai SDK and SQLAlchemy free of monkey-patching.
worker_class = "gthread"
# Each worker is a process with a database pool of its own (DOCSCHAT_DB_POOL_SIZE +
# DOCSCHAT_DB_MAX_OVERFLOW, 8 by default): count WEB_CONCURRENCY per web process in
# DOCSCHAT_DB_PROCESSES (docs/deploying.md, "PostgreSQL connection budget").
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Far more threads than connections: an open WebSocket waits without one, and a request holds
# one for the milliseconds of its queries (the rest wait in the pool, DOCSCHAT_DB_POOL_TIMEOUT).
threads = int(os.environ.get("DOCSCHAT_WEB_THREADS", "1000"))
# gthread caps open connections per worker at worker_connections (default 1,000).
worker_connections = threads + 100
timeout = 0  # WebSockets stay open for as long as the reader keeps the page
graceful_timeout = 20
keepalive = 5
# Each worker listens on its own socket and the kernel spreads new connections over them. With
# one shared socket, whichever worker is idle accepts a burst of keep-alive connections, and
# one worker may serve them all while the other waits: GET /messages under wrk gave anywhere
# from 600 to 2,200 requests/s from run to run; with this, 2,200-2,400 every time.
reuse_port = True

# The same log lines as every docschat process (JSON with DOCSCHAT_LOG_JSON=1), access log on.
logconfig_dict = dict_config(_settings, gunicorn=True)
access_log_format = ACCESS_FORMAT


def on_starting(_server: object) -> None:
    """In the master, before any worker: share metrics with this machine's docschat processes
    (the workers inherit the directory and its lock)."""
    metrics_dir.share(_settings)


# A worker that ended: its live gauges (jobs in flight, WebSockets) no longer count.
child_exit = metrics_dir.child_exit
