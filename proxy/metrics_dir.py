"""The directory through which the docschat processes of one machine share their metrics.

prometheus-client's multiprocess mode: every process (gunicorn's workers, `docschat worker`,
`docschat serve`) writes its series into memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and
/metrics of any web process adds up all of them. The library picks that mode from the variable
when it is first imported, so `share` must run before anything imports it: this module imports
prometheus-client only inside `forget`, which runs in gunicorn's master after `share`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from proxy.config import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"
LOCK = "docschat.lock"
# Only files prometheus-client writes are ever removed, whatever else the directory holds.
METRIC_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")


def directory(settings: Settings) -> Path:
    """DOCSCHAT_METRICS_DIR, or a directory per user and database under the system temp dir.

    Keyed by the database, because the processes that share a database are one deployment;
    the password is left out of the key, since the directory's name is visible to every user."""
    if settings.metrics_dir:
        return Path(settings.metrics_dir)
    try:
        database = make_url(settings.database_url).render_as_string(hide_password=True)
    except ArgumentError:
        database = settings.database_url  # refused with a clear error where it is opened
    key = hashlib.sha256(f"{os.getuid()}:{database}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"docschat-metrics-{key}"


def share(settings: Settings) -> Path:
    """Join this machine's metrics directory; the first process of a fresh start empties it.

    Every docschat process holds a shared lock on the directory's lock file for as long as it
    runs (forked gunicorn workers hold their master's). A process that can take the lock
    exclusively is alone: the files left are from processes that have all ended, so it removes
    them. Counters of a process that ends while others run stay, so totals never go down."""
    path = directory(settings)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Left open on purpose for the life of the process: closing it would release the lock.
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # other docschat processes run: their files are live
    else:
        _empty(path)
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.environ[ENV] = str(path)
    return path


def current() -> Path | None:
    """The directory this process shares its metrics through, or None (metrics stay inside)."""
    # prometheus-client's own variable, set by `share` (or by whoever started us).
    value = os.environ.get(ENV)
    return Path(value) if value else None


def forget(pid: int) -> None:
    """Drop the live gauges (jobs in flight, WebSockets) of a process that has ended."""
    path = current()
    if path is None:
        return
    # Imported here, not at the top: see the module docstring.
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, str(path))


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook (in the master): a worker process has ended."""
    forget(worker.pid)


def _empty(path: Path) -> None:
    """Remove the metric files of processes that have all ended."""
    for entry in path.iterdir():
        if METRIC_FILE.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
