"""Poll timing: the first look at a run lands just after typical runs end; bursts do not fool it."""

from __future__ import annotations

import random

from proxy.answers.timing import Timing
from proxy.config import Settings


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer(timing: Timing, job_id: int, run_time: float, clock: Clock) -> list[float]:
    """Poll one run of `run_time` seconds as the worker does; returns the times of its looks."""
    looks = [timing.first_look()]
    while True:
        clock.now += looks[-1] - (looks[-2] if len(looks) > 1 else 0.0)
        done = looks[-1] >= run_time
        wait = timing.looked(job_id, looks[-1], finished=done)
        if done:
            return looks
        looks.append(looks[-1] + wait)


def test_first_look_follows_runs_that_take_longer_than_guessed() -> None:
    clock = Clock()
    timing = Timing(Settings.from_env({"DOCSCHAT_RUN_ESTIMATE": "2.0"}), clock=clock)
    rng = random.Random(7)
    looks = [answer(timing, job, 3.0 + rng.uniform(-0.05, 0.05), clock) for job in range(300)]
    settled = looks[100:]
    one_look = sum(len(x) == 1 for x in settled) / len(settled)
    assert 0.6 <= one_look <= 0.95  # most answers cost one poll; a few need a second
    assert all(len(x) <= 3 for x in settled)
    assert all(x[-1] - 3.05 <= 0.15 for x in settled)  # ready answers are seen soon after


def test_a_burst_of_late_looks_does_not_pull_the_first_look_early() -> None:
    clock = Clock()
    timing = Timing(Settings.from_env({"DOCSCHAT_RUN_ESTIMATE": "2.0"}), clock=clock)
    for job in range(50):  # runs that started together, looked at late by a busy worker
        clock.now += 0.01
        timing.looked(job, 2.3, finished=True)
    assert timing.first_look() >= 1.95


def test_a_burst_of_early_looks_moves_the_first_look_about_once() -> None:
    clock = Clock()
    timing = Timing(Settings.from_env({"DOCSCHAT_RUN_ESTIMATE": "2.0"}), clock=clock)
    clock.now = 10.0
    for job in range(50):  # 50 runs that all took 2.05 s, seen at 2.0 s and again at 2.1 s
        timing.looked(job, 2.0, finished=False)
    for job in range(50):
        clock.now += 0.001
        timing.looked(job, 2.1, finished=True)
    assert 2.0 < timing.first_look() <= 2.1


def test_failed_runs_teach_nothing() -> None:
    clock = Clock()
    timing = Timing(Settings.from_env({"DOCSCHAT_RUN_ESTIMATE": "2.0"}), clock=clock)
    clock.now = 10.0
    timing.looked(1, 2.0, finished=False)
    timing.forget(1)
    clock.now = 20.0
    timing.looked(1, 2.0, finished=True)  # a new run of the same job, found done on time
    assert timing.first_look() < 2.0


def test_looks_before_the_estimate_teach_nothing() -> None:
    clock = Clock()
    timing = Timing(Settings.from_env({"DOCSCHAT_RUN_ESTIMATE": "2.0"}), clock=clock)
    clock.now = 10.0
    timing.looked(1, 0.3, finished=False)  # polled at once after its stream broke
    clock.now = 20.0
    timing.looked(1, 2.5, finished=True)
    assert timing.first_look() == 2.0
