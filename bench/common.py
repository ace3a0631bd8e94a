"""Shared pieces of the benchmarks: processes on loopback, resource sampling, result files."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    """Wait until a URL answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a docschat command as a child process, logging to a file."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "proxy.cli", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


class Sampler:
    """Samples the CPU time and peak RSS (summed) of some processes in the background."""

    def __init__(self, *pids: int) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.peak_rss = 0
        self._stop = threading.Event()
        self._cpu0 = self._cpu()
        self.cpu = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _cpu(self) -> float:
        return sum(t.user + t.system for t in (p.cpu_times() for p in self.procs))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = sum(p.memory_info().rss for p in self.procs)
            except psutil.Error:
                return
            self.peak_rss = max(self.peak_rss, rss)
            self._stop.wait(0.2)

    def stop(self) -> None:
        """Stop sampling and compute the CPU seconds used."""
        self._stop.set()
        self._thread.join()
        self.cpu = self._cpu() - self._cpu0


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 (and mean) of a list, in milliseconds, of values given in seconds."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "mean": float("nan")}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "mean": statistics.fmean(values) * 1000,
    }


def write_results(name: str, data: dict[str, Any], table: str) -> None:
    """Write JSON and a markdown table under bench/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(table)
