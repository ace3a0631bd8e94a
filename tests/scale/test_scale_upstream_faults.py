"""A misbehaving upstream: 500s, 429s with Retry-After, hung connections, runs that never end."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.scale.conftest import RequestLog, record_requests
from tests.support import wait_until

# Many processes at once: run alone, after the parallel part of the suite.
pytestmark = pytest.mark.serial

DEADLINE = 12.0
# Share of upstream requests that fail, by emulator fault kind.
MIX = {"http_500": 0.20, "http_429": 0.05, "hang": 0.03}
RETRY_AFTER = 1.0


class Injector:
    """Keeps the emulator's HTTP faults at the shares of MIX of the requests it has seen."""

    def __init__(self, emulator_url: str, log: RequestLog) -> None:
        self.url = emulator_url
        self.log = log
        self.queued = dict.fromkeys(MIX, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Injector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        httpx.delete(f"{self.url}/_emulator/faults")

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self._stop.wait(0.005):
                if http.get("/_emulator/faults").json()["faults"]:
                    continue  # the one queued fault has not hit a request yet
                seen = len(self.log.records) + 1
                lacking = {kind: share * seen - self.queued[kind] for kind, share in MIX.items()}
                kind, need = max(lacking.items(), key=lambda kv: kv[1])
                if need < 1:
                    continue
                fault: dict[str, object] = {"kind": kind, "times": 1, "match": "/v1/threads"}
                if kind == "http_429":
                    fault["retry_after"] = RETRY_AFTER
                if kind == "hang":
                    fault["seconds"] = 4
                http.post("/_emulator/faults", json={"faults": [fault]})
                self.queued[kind] += 1


def test_every_question_ends_done_or_readable_within_the_deadline_under_an_upstream_fault_mix(
    start_stack,
):
    stack = start_stack(
        emulator={"latency_ms": 300},
        DOCSCHAT_ANSWER_DEADLINE=str(DEADLINE),
        DOCSCHAT_UPSTREAM_TIMEOUT="2",
        DOCSCHAT_STREAM_STALL="2",
    )
    log = record_requests(stack.emulator)
    # Runs that never finish and runs that expire, on top of the HTTP faults.
    stack.faults(
        {"kind": "run_never_finishes", "times": 3, "match": "/runs"},
        {"kind": "run_expired", "times": 3, "match": "/runs"},
    )
    sessions = [stack.new_session() for _ in range(30)]
    asked: dict[int, float] = {}

    def ask_two(sid: str) -> None:
        for n in range(2):
            question = stack.ask(sid, f"How do I install docschat? ({n})")
            asked[question["id"]] = time.monotonic()
            if n == 0:
                # Pacing, not waiting for something: questions arrive spread over a second or
                # so, as readers type them, and the fault mix is measured on that load.
                time.sleep(0.2)

    with Injector(stack.emulator_url, log) as injector, ThreadPoolExecutor(10) as pool:
        list(pool.map(ask_two, sessions))

        def all_finished() -> bool:
            return all(
                len([m for m in stack.messages(sid) if m["status"] in ("done", "error")]) == 4
                for sid in sessions
            )

        wait_until(all_finished, timeout=DEADLINE + 25, every=0.5)
        finished_at = time.monotonic()

    outcomes = {"done": 0, "error": 0}
    for sid in sessions:
        messages = stack.messages(sid)
        assert [m["role"] for m in messages] == ["user", "assistant"] * 2
        for question, answer in zip(messages[::2], messages[1::2], strict=True):
            outcomes[answer["status"]] += 1
            assert answer["text"].strip(), answer  # a readable text, never an empty bubble
            # Ended within the deadline (plus the second question's wait for the first).
            assert finished_at - asked[question["id"]] <= 2 * DEADLINE + 10
    assert outcomes["done"] >= 40, outcomes  # faults cost retries, not answers
    assert outcomes["error"] >= 3, outcomes  # the never-finishing runs end as errors
    assert all(n > 0 for n in injector.queued.values()), injector.queued

    # After a 429, the same answer's next upstream request waited at least its Retry-After.
    records = log.snapshot()
    checked = 0
    for i, (_start, responded, _m, _path, key, status, retry) in enumerate(records):
        if status != 429 or retry is None:
            continue
        later = [r for r in records[i + 1 :] if r[4] == key and r[0] >= responded]
        if later:
            checked += 1
            waited = later[0][0] - responded
            assert waited >= retry - 0.05, (key, waited, retry)
    assert checked >= 1
