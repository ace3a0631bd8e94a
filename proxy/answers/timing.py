"""When to look at a polled run again: learned from how long runs have taken."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from proxy.config import Settings

# Relative steps of the first look: a look that finds the run still going moves it later four
# times as far as a look that finds it done moves it earlier. It settles where about one first
# look in five (1 / (1 + 4)) comes too early, so most answers cost one poll, and the first look
# trails the end of a typical run by no more than the runs' own spread.
LATER, EARLIER = 0.02, 0.005
REMEMBERED = 10_000  # runs seen too early, kept until they end (a bound, not a target)


class Timing:
    """Learns how long runs take, to look at one when its answer is likely ready."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.estimate = settings.run_estimate
        self._lock = threading.Lock()
        self._early: dict[int, float] = {}  # job id -> elapsed seconds of its last early look
        self._learned_at = clock()

    def first_look(self) -> float:
        """Seconds from a run's start to the first look at it."""
        return max(self.settings.poll_min_interval, self.estimate)

    def looked(self, job_id: int, elapsed: float, finished: bool) -> float:
        """Learn from a look at a run `elapsed` seconds after its start; returns the seconds
        until the next look (meaningless when it has `finished`)."""
        with self._lock:
            early_at = self._early.pop(job_id, None)
            if finished:
                if early_at is not None:
                    # Still going at a look made once the estimate had passed: too early. (A
                    # look before that, after a broken stream or a restart, says nothing.)
                    if early_at >= self.estimate * (1 - LATER):
                        self._learn((early_at + elapsed) / 2, early=True)
                elif elapsed <= self.estimate * (1 + LATER):
                    # Done at a look made on time. A late look (the worker was busy) would find
                    # it done whatever the estimate, so it teaches nothing.
                    self._learn(elapsed, early=False)
                return 0.0
            self._early[job_id] = elapsed
            if len(self._early) > REMEMBERED:  # runs that ended elsewhere or as errors
                del self._early[next(iter(self._early))]
        low, high = self.settings.poll_min_interval, self.settings.poll_max_interval
        if elapsed < self.estimate:
            return max(low, self.estimate - elapsed)
        # Soon after a near miss, then backing off while the run is slower than usual.
        return min(high, low + 0.25 * (elapsed - self.estimate))

    def forget(self, job_id: int) -> None:
        """A run ended without an answer: its time says nothing about answers."""
        with self._lock:
            self._early.pop(job_id, None)

    def ended(self, elapsed: float) -> None:
        """A streamed run ended `elapsed` seconds after its start (an exact observation)."""
        with self._lock:
            self._learn(elapsed, early=elapsed > self.estimate)

    def _learn(self, seen: float, early: bool) -> None:
        # Runs started together end together: weigh each lesson by the time since the last, so
        # a burst of answers counts about as much as one and cannot swing the estimate alone.
        now = self.clock()
        weight = min(1.0, (now - self._learned_at) / max(self.estimate, 0.1))
        self._learned_at = now
        if not early:  # the first look found it done: look a little sooner next time
            self.estimate *= 1 - EARLIER * weight
        else:  # looked too early: later by a step, or towards what was seen if that is further
            step = max(LATER * self.estimate, 0.3 * (seen - self.estimate))
            self.estimate += weight * step
