"""Rate limits and daily budgets, counted where every process sees them (database or Redis)."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, select, text

from proxy.answers.errors import RateLimited, Resting
from proxy.config import Settings
from proxy.storage.db import Database
from proxy.storage.models import Counter, UTCDateTime
from proxy.storage.redis_pool import connect

MINUTE = 60
DAY = 86400
ADMIN_FAILURES_PER_MINUTE = 30  # wrong operator tokens one client may send per minute
HANDOFF_EVENTS = ("offered", "followed")
HANDOFF_KEEP_DAYS = 32
HANDOFFS_PER_SESSION_DAY = 200  # reports one conversation may send a day; readers send few
PRUNE_EVERY = 300.0  # seconds between two clean-ups of expired database counters per process


class Counters(Protocol):
    """Windowed counters shared by every process."""

    def add(self, items: list[tuple[str, int, int, int]]) -> None:
        """Add `amount` to each (key, window, amount, ttl) counter, all at once."""
        ...

    def get(self, key: str, window: int) -> int:
        """A counter's value (0 when absent)."""
        ...

    def bump(
        self, items: list[tuple[str, int, int]], over: Callable[[int, int, int], bool]
    ) -> int | None:
        """Add one to each (key, window, ttl) in turn until `over(i, new, previous)` is true;
        returns that item's index (later items stay uncounted), else None."""
        ...


# Plain SQL both databases understand: a question runs these for each of its five rules, and
# building them through the ORM each time cost more than running them.
BUMP = text(
    'INSERT INTO counters (key, "window", count, expires_at) VALUES (:key, :window, 1, :expires) '
    'ON CONFLICT (key, "window") DO UPDATE SET count = counters.count + 1 RETURNING count'
).bindparams(bindparam("expires", type_=UTCDateTime()))
ADD = text(
    'INSERT INTO counters (key, "window", count, expires_at) '
    "VALUES (:key, :window, :amount, :expires) "
    'ON CONFLICT (key, "window") DO UPDATE SET count = counters.count + :amount'
).bindparams(bindparam("expires", type_=UTCDateTime()))
PREVIOUS = text('SELECT count FROM counters WHERE key = :key AND "window" = :window')


class DatabaseCounters:
    """Counters in the `counters` table (one upsert per increment)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pruned = time.monotonic()
        self._prune_lock = threading.Lock()

    def add(self, items: list[tuple[str, int, int, int]]) -> None:
        self._maybe_prune()
        now = datetime.now(UTC)
        with self.db.session() as s:
            for key, window, amount, ttl in items:
                params = {"key": key, "window": window, "amount": amount}
                s.execute(ADD, {**params, "expires": now + timedelta(seconds=ttl)})

    def get(self, key: str, window: int) -> int:
        with self.db.read() as s:
            value = s.scalar(
                select(Counter.count).where(Counter.key == key, Counter.window == window)
            )
        return int(value or 0)

    def bump(
        self, items: list[tuple[str, int, int]], over: Callable[[int, int, int], bool]
    ) -> int | None:
        # One transaction for every rule of a question: on SQLite each write transaction
        # queues for the one write lock, so five small ones cost five waits.
        self._maybe_prune()
        with self.db.session() as s:
            for i, (key, window, ttl) in enumerate(items):
                expires = datetime.now(UTC) + timedelta(seconds=ttl)
                params = {"key": key, "window": window, "expires": expires}
                current = int(s.execute(BUMP, params).scalar_one())
                previous = s.execute(PREVIOUS, {"key": key, "window": window - 1}).scalar()
                if over(i, current, int(previous or 0)):
                    return i
        return None

    def prune(self) -> None:
        """Drop counters whose window has passed."""
        with self.db.session() as s:
            s.execute(delete(Counter).where(Counter.expires_at < datetime.now(UTC)))

    def _maybe_prune(self) -> None:
        """Prune now and then, so per-session and per-IP rows do not pile up forever."""
        if time.monotonic() - self._pruned < PRUNE_EVERY or not self._prune_lock.acquire(False):
            return
        try:
            self._pruned = time.monotonic()
            self.prune()
        finally:
            self._prune_lock.release()


class RedisCounters:
    """Counters in Redis (INCRBY with an expiry)."""

    def __init__(self, url: str) -> None:
        self.redis: Any = connect(url)

    def add(self, items: list[tuple[str, int, int, int]]) -> None:
        pipe = self.redis.pipeline()
        for key, window, amount, ttl in items:
            pipe.incrby(f"docschat:{key}:{window}", amount)
            pipe.expire(f"docschat:{key}:{window}", ttl)
        pipe.execute()

    def get(self, key: str, window: int) -> int:
        return int(self.redis.get(f"docschat:{key}:{window}") or 0)

    def bump(
        self, items: list[tuple[str, int, int]], over: Callable[[int, int, int], bool]
    ) -> int | None:
        for i, (key, window, ttl) in enumerate(items):
            pipe = self.redis.pipeline()
            pipe.incrby(f"docschat:{key}:{window}", 1)
            pipe.expire(f"docschat:{key}:{window}", ttl)
            pipe.get(f"docschat:{key}:{window - 1}")
            current, _, previous = pipe.execute()
            if over(i, int(current), int(previous or 0)):
                return i
        return None


def make_counters(settings: Settings, db: Database) -> Counters:
    """Redis counters when REDIS_URL is set, else the database's."""
    return RedisCounters(settings.redis_url) if settings.redis_url else DatabaseCounters(db)


def ip_bucket(ip: str) -> str:
    """The unit an IP is limited by: the address for IPv4, its /64 network for IPv6."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One subscriber usually holds a whole /64 and can hop between its addresses at will.
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _secret_key(session_id: str) -> str:
    """A session's counter name: a digest, so bearer ids never sit in counter tables or Redis."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class Limits:
    """Decides whether a question may be asked now, and counts answers and tokens spent."""

    def __init__(self, settings: Settings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters

    def check_question(self, session_id: str, ip: str, now: float | None = None) -> None:
        """Count one question; Resting when the day's budget is spent, RateLimited over a rate."""
        now = time.time() if now is None else now
        s = self.settings
        if self.resting(now):
            raise _resting(now)
        sid, where = _secret_key(session_id), ip_bucket(ip)
        self._count(
            [
                (f"q:s:{sid}", MINUTE, s.rate_session_minute),
                (f"q:s:{sid}", DAY, s.rate_session_day),
                (f"q:ip:{where}", MINUTE, s.rate_ip_minute),
                (f"q:ip:{where}", DAY, s.rate_ip_day),
                ("q:all", MINUTE, s.rate_global_minute),
            ],
            now,
            "Too many questions. Please wait a little before asking again.",
        )

    def check_session(self, ip: str, now: float | None = None) -> None:
        """Count one new session of a client IP; RateLimited when it makes them too fast."""
        now = time.time() if now is None else now
        s = self.settings
        where = ip_bucket(ip)
        # A reader needs one session per visit; several per question is already generous.
        self._count(
            [
                (f"n:ip:{where}", MINUTE, 3 * s.rate_ip_minute),
                (f"n:ip:{where}", DAY, 2 * s.rate_ip_day),
            ],
            now,
            "Too many new conversations. Please wait a little.",
        )

    def check_search(self, ip: str, now: float | None = None) -> None:
        """Count one search of a client IP; RateLimited over its rate or everyone's."""
        now = time.time() if now is None else now
        limit = self.settings.rate_search_minute
        # Search-as-you-type sends a few requests per question; the shared cap keeps many
        # addresses together from running up the upstream's per-search charges.
        self._count(
            [(f"f:ip:{ip_bucket(ip)}", MINUTE, limit), ("f:all", MINUTE, 20 * limit)],
            now,
            "Too many searches. Please wait a little.",
        )

    def _count(self, rules: list[tuple[str, int, int]], now: float, message: str) -> None:
        """Add one to each rule's counter in turn; RateLimited at the first over its limit."""
        rules = [r for r in rules if r[2] > 0]

        def over(i: int, current: int, previous: int) -> bool:
            _key, span, limit = rules[i]
            # A sliding window: the previous window's count weighs as much as it still
            # overlaps the last `span` seconds, so a burst across a boundary is still one burst.
            overlap = 1.0 - (now % span) / span
            return current > limit or current + previous * overlap > limit

        # A refused question stops counting at the rule that refused it, so a client that keeps
        # knocking cannot use up everyone else's share.
        refused = self.counters.bump(
            [(f"{key}:{span}", int(now // span), 2 * span + 60) for key, span, _ in rules], over
        )
        if refused is not None:
            span = rules[refused][1]
            retry = max(1, int((int(now // span) + 1) * span - now) + 1)
            raise RateLimited(message, retry)

    def admin_locked(self, ip: str, now: float | None = None) -> None:
        """RateLimited while a client has sent too many wrong operator tokens this minute."""
        now = time.time() if now is None else now
        window = int(now // MINUTE)
        if self.counters.get(f"a:ip:{ip_bucket(ip)}:{MINUTE}", window) >= ADMIN_FAILURES_PER_MINUTE:
            raise RateLimited(_ADMIN_WAIT, max(1, int((window + 1) * MINUTE - now) + 1))

    def admin_failed(self, ip: str, now: float | None = None) -> None:
        """Count one wrong operator token; RateLimited once a client sends too many."""
        now = time.time() if now is None else now
        rules = [(f"a:ip:{ip_bucket(ip)}", MINUTE, ADMIN_FAILURES_PER_MINUTE)]
        self._count(rules, now, _ADMIN_WAIT)

    def handoff(self, event: str, session_id: str, now: float | None = None) -> None:
        """Count one hand-off to support offered to a reader, or followed by one; a session
        that reports more than a reader could cause is refused (RateLimited)."""
        now = time.time() if now is None else now
        rules = [(f"h:s:{_secret_key(session_id)}", DAY, HANDOFFS_PER_SESSION_DAY)]
        self._count(rules, now, "Too many hand-off reports from this conversation.")
        day = int(now // DAY)
        self.counters.add([(f"handoff:{event}", day, 1, HANDOFF_KEEP_DAYS * DAY)])

    def handoffs(self, days: int = 30, now: float | None = None) -> dict[str, int]:
        """Hand-offs offered and followed over the last `days` days (today included)."""
        day = int((time.time() if now is None else now) // DAY)
        span = range(day - min(days, HANDOFF_KEEP_DAYS) + 1, day + 1)
        return {e: sum(self.counters.get(f"handoff:{e}", d) for d in span) for e in HANDOFF_EVENTS}

    def resting(self, now: float | None = None) -> bool:
        """Whether today's answer or token budget is spent."""
        day = int((time.time() if now is None else now) // DAY)
        s = self.settings
        if s.daily_answer_cap and self.counters.get("answers", day) >= s.daily_answer_cap:
            return True
        return bool(s.daily_token_cap and self.counters.get("tokens", day) >= s.daily_token_cap)

    def today(self, now: float | None = None) -> dict[str, int]:
        """Today's (UTC) answers and upstream tokens counted against the daily caps."""
        day = int((time.time() if now is None else now) // DAY)
        return {
            "answers": self.counters.get("answers", day),
            "answer_cap": self.settings.daily_answer_cap,
            "tokens": self.counters.get("tokens", day),
            "token_cap": self.settings.daily_token_cap,
        }

    def spent(self, tokens: int, now: float | None = None) -> None:
        """Count one finished answer and the upstream tokens it used."""
        day = int((time.time() if now is None else now) // DAY)
        items = [("answers", day, 1, DAY + 3600)]
        if tokens:
            items.append(("tokens", day, tokens, DAY + 3600))
        self.counters.add(items)


_ADMIN_WAIT = "Too many wrong tokens. Please wait a minute before trying again."


def _resting(now: float) -> Resting:
    """The day's budget is spent until midnight UTC."""
    retry = int(DAY - now % DAY) + 1
    return Resting("The assistant is resting until tomorrow. Please come back then.", retry)
