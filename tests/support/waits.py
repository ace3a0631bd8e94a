"""Waiting for a condition instead of sleeping: a value, an HTTP answer, a line in a log."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 20.0, every: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")


def _alive(proc: subprocess.Popen[Any] | None, log: Path | None, what: str) -> None:
    """Fail at once, with the end of its log, when a process we wait for has exited."""
    if proc is not None and proc.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
        raise AssertionError(f"{what} exited with {proc.returncode}:\n{tail}")


def answers_200(url: str) -> bool:
    """Whether `url` answers 200 right now."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_http(
    url: str,
    timeout: float = 30.0,
    *,
    proc: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
) -> None:
    """Wait until `url` answers 200; fail early when `proc` (the server, logging to `log`) exits."""

    def up() -> bool:
        _alive(proc, log, "server")
        return answers_200(url)

    wait_until(up, timeout=timeout, every=0.1)


def printed(log: Path, line: str, proc: subprocess.Popen[Any] | None = None) -> bool:
    """Whether a process's log shows `line` yet (failing when the process has exited)."""
    _alive(proc, log, "process")
    return log.exists() and line in log.read_text(errors="replace")
