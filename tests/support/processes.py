"""Child processes started from the repository root: docschat commands, gunicorn, anything."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCSCHAT = [sys.executable, "-m", "proxy.cli"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
