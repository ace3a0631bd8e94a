"""Rate limits and daily budgets, counted where every process sees them (database or Redis)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from proxy.config import Settings
from proxy.db import Database
from proxy.errors import ApiError
from proxy.models import Counter

MINUTE = 60
DAY = 86400


class Counters(Protocol):
    """Windowed counters shared by every process."""

    def add(self, key: str, window: int, amount: int, ttl: int) -> int:
        """Add to a counter and return its new value."""
        ...

    def get(self, key: str, window: int) -> int:
        """A counter's value (0 when absent)."""
        ...


class DatabaseCounters:
    """Counters in the `counters` table (one upsert per increment)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def add(self, key: str, window: int, amount: int, ttl: int) -> int:
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        stmt = self._insert(Counter).values(
            key=key, window=window, count=amount, expires_at=expires
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key", "window"], set_={"count": Counter.count + amount}
        ).returning(Counter.count)
        with self.db.session() as s:
            return int(s.execute(stmt).scalar_one())

    def get(self, key: str, window: int) -> int:
        with self.db.read() as s:
            value = s.scalar(
                select(Counter.count).where(Counter.key == key, Counter.window == window)
            )
        return int(value or 0)

    def prune(self) -> None:
        """Drop counters whose window has passed."""
        with self.db.session() as s:
            s.execute(delete(Counter).where(Counter.expires_at < datetime.now(UTC)))


class RedisCounters:
    """Counters in Redis (INCRBY with an expiry)."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis: Any = redis.Redis.from_url(url)

    def add(self, key: str, window: int, amount: int, ttl: int) -> int:
        name = f"docschat:{key}:{window}"
        pipe = self.redis.pipeline()
        pipe.incrby(name, amount)
        pipe.expire(name, ttl)
        value, _ = pipe.execute()
        return int(value)

    def get(self, key: str, window: int) -> int:
        return int(self.redis.get(f"docschat:{key}:{window}") or 0)


def make_counters(settings: Settings, db: Database) -> Counters:
    """Redis counters when REDIS_URL is set, else the database's."""
    return RedisCounters(settings.redis_url) if settings.redis_url else DatabaseCounters(db)


class Limits:
    """Decides whether a question may be asked now, and counts answers and tokens spent."""

    def __init__(self, settings: Settings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters

    def check_question(self, session_id: str, ip: str, now: float | None = None) -> None:
        """Count one question; raise 503 when the day's budget is spent, 429 over a rate."""
        now = time.time() if now is None else now
        day = int(now // DAY)
        s = self.settings
        if s.daily_answer_cap and self.counters.get("answers", day) >= s.daily_answer_cap:
            raise _resting(now)
        if s.daily_token_cap and self.counters.get("tokens", day) >= s.daily_token_cap:
            raise _resting(now)
        rules = [
            (f"s:{session_id}", MINUTE, s.rate_session_minute),
            (f"s:{session_id}", DAY, s.rate_session_day),
            (f"ip:{ip}", MINUTE, s.rate_ip_minute),
            (f"ip:{ip}", DAY, s.rate_ip_day),
            ("all", MINUTE, s.rate_global_minute),
        ]
        for key, span, limit in rules:
            if limit <= 0:
                continue
            window = int(now // span)
            if self.counters.add(f"q:{key}:{span}", window, 1, span + 60) > limit:
                retry = max(1, int((window + 1) * span - now) + 1)
                raise ApiError(
                    429,
                    "rate_limited",
                    "Too many questions. Please wait a little before asking again.",
                    retry_after=retry,
                )

    def spent(self, tokens: int, now: float | None = None) -> None:
        """Count one finished answer and the upstream tokens it used."""
        day = int((time.time() if now is None else now) // DAY)
        self.counters.add("answers", day, 1, DAY + 3600)
        if tokens:
            self.counters.add("tokens", day, tokens, DAY + 3600)


def _resting(now: float) -> ApiError:
    """503: the day's budget is spent until midnight UTC."""
    retry = int(DAY - now % DAY) + 1
    return ApiError(
        503,
        "resting",
        "The assistant is resting until tomorrow. Please come back then.",
        retry_after=retry,
    )
