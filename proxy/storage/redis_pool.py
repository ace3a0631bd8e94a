"""Redis clients for the rate limits and the events channel, on a pool that makes callers wait."""

from __future__ import annotations

from redis import BlockingConnectionPool, Redis

# Per process. redis-py's default pool refuses callers beyond its size; a burst of questions
# must queue for a connection instead (each is held for one command or pipeline).
MAX_CONNECTIONS = 64
WAIT_SECONDS = 10


def connect(url: str) -> Redis:
    """A Redis client for `url` whose callers wait for a free connection rather than fail."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS
    )
    return Redis(connection_pool=pool)
