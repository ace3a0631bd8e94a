"""Pieces only the benchmarks use: resource sampling, percentiles, result files.

Starting processes, waiting for them and preparing a database are shared with the tests and
live in tests/support.
"""

from __future__ import annotations

import json
import statistics
import threading
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


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
