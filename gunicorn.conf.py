"""gunicorn settings of the Procfile's web process: the options every docschat web process uses
(proxy/web/server.py: worker class, threads, logs, metrics), on the platform's $PORT with
WEB_CONCURRENCY workers."""

import sys

from proxy import metrics_dir
from proxy.config import SettingError, Settings, unknown_variables
from proxy.web.server import web_options

try:
    _settings = Settings.from_env()
except SettingError as _exc:
    # One line per bad value and a non-zero exit, instead of gunicorn's config traceback.
    sys.exit("\n".join(f"docschat: {problem}" for problem in _exc.problems))
for _warning in unknown_variables():
    print(f"docschat: warning: {_warning}", file=sys.stderr)

# gunicorn reads a config file's module-level names as its settings. Each of the
# WEB_CONCURRENCY workers is a process with a database pool of its own
# (DOCSCHAT_DB_POOL_SIZE + DOCSCHAT_DB_MAX_OVERFLOW, 8 by default): count them per web process
# in DOCSCHAT_DB_PROCESSES (docs/deploying.md, "PostgreSQL connection budget").
globals().update(
    web_options(_settings, bind=f"0.0.0.0:{_settings.port}", workers=_settings.web_concurrency)
)
# Each worker listens on its own socket and the kernel spreads new connections over them. With
# one shared socket, whichever worker is idle accepts a burst of keep-alive connections, and
# one worker may serve them all while the other waits: GET /messages under wrk gave anywhere
# from 600 to 2,200 requests/s from run to run; with this, 2,200-2,400 every time.
reuse_port = True


def on_starting(_server: object) -> None:
    """In the master, before any worker: share metrics with this machine's docschat processes
    (the workers inherit the directory and its lock)."""
    metrics_dir.share(_settings)
