"""Child processes started from the repository root: docschat commands, gunicorn, anything."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCSCHAT = [sys.executable, "-m", "proxy.cli"]


# Ports for our servers come from below the kernel's ephemeral range (32768-60999 by default):
# a port the kernel hands out for `bind(0)` can be taken, before our server binds it, as the
# local end of any outgoing connection, and under xdist that happened. Each xdist worker takes
# its own slice, so two workers never pick the same port either; a process outside xdist (a
# benchmark, a second pytest run on the same machine) starts at a place of its own in the range.
_PORT_FLOOR = 20000
_SLICE = 1500
_SLICES = 8


def _worker_ports() -> itertools.cycle[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    if worker.isdigit():
        first = _PORT_FLOOR + int(worker) % _SLICES * _SLICE
        return itertools.cycle(range(first, first + _SLICE))
    ports = list(range(_PORT_FLOOR, _PORT_FLOOR + _SLICES * _SLICE))
    at = os.getpid() * 7919 % len(ports)
    return itertools.cycle(ports[at:] + ports[:at])


_ports = _worker_ports()


def free_port() -> int:
    """A TCP port nobody listens on right now, and that no outgoing connection will take."""
    for _ in range(_SLICES * _SLICE):
        port = next(_ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in the test range")


def spawn(
    command: list[str],
    env: Mapping[str, str],
    log: Path,
    *,
    err: Path | None = None,
    group: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `command` with `env` over os.environ, stdout appended to `log` and stderr too (or to
    `err`); `group` gives it a process group of its own, so its forked children can be killed
    with it."""
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("ab"))
        errors = files.enter_context(err.open("ab")) if err is not None else subprocess.STDOUT
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=errors,
            cwd=ROOT,
            start_new_session=group,
        )


def docschat(
    args: list[str],
    env: Mapping[str, str],
    log: Path,
    *,
    err: Path | None = None,
    group: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a `docschat` command (as `python -m proxy.cli`), as `spawn` starts a program."""
    return spawn([*DOCSCHAT, *args], env, log, err=err, group=group)


def run_docschat(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a `docschat` command to its end, with `env` over os.environ; its output as text."""
    return subprocess.run(
        [*DOCSCHAT, *args],
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
