"""A burst of callers larger than the Redis pool waits for connections instead of failing."""

from __future__ import annotations

import threading

from proxy.storage.redis_pool import MAX_CONNECTIONS, connect

REDIS = "redis://127.0.0.1:6379/13"


def test_more_concurrent_callers_than_connections_all_succeed() -> None:
    client = connect(REDIS)
    callers = 150  # more than redis-py's default cap of 100, which refused the rest
    assert callers > MAX_CONNECTIONS
    start = threading.Barrier(callers)
    failures: list[BaseException] = []

    def call() -> None:
        start.wait()
        try:
            # Holds its connection for 0.3 s, so every caller needs one at the same time.
            assert client.blpop(["docschat-test:never-filled"], timeout=0.3) is None
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert failures == []
