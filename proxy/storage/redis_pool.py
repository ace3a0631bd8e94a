"""Redis clients for the rate limits and the event bus, on a pool that makes callers wait."""

from __future__ import annotations

from typing import Any

# Per process. redis-py 8's default pool refuses the 101st concurrent caller ("Too many
# connections"); 200 questions posted at once made some of them fail. A blocking pool makes a
# burst queue for a connection instead (each is held for one command or pipeline).
MAX_CONNECTIONS = 64
WAIT_SECONDS = 10


def connect(url: str) -> Any:
    """A Redis client for `url` whose callers wait for a free connection rather than fail."""
    import redis

    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS
    )
    return redis.Redis(connection_pool=pool)
