"""Rate limits and budgets: per session, per IP (behind a trusted proxy) and global; daily caps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.answers.errors import RateLimited, Resting
from proxy.answers.limits import DatabaseCounters, Limits, RedisCounters, ip_bucket
from proxy.config import Settings
from proxy.storage.db import Database
from proxy.web.errors import ApiError
from tests.security.conftest import (
    launch,
    shutdown,
    wait_minute_start,
    ws_close_code,
    ws_open,
    xff,
)
from tests.support import Stack, wait_until

LIMITS_ENV = {
    "DOCSCHAT_RATE_SESSION_MINUTE": "2",
    "DOCSCHAT_RATE_IP_MINUTE": "5",
    "DOCSCHAT_RATE_GLOBAL_MINUTE": "14",
    "DOCSCHAT_TRUSTED_PROXIES": "1",
}
# A per-day session limit here: a restart must not race the end of a minute window.
BUDGET_ENV = {"DOCSCHAT_RATE_SESSION_DAY": "2", "DOCSCHAT_DAILY_ANSWERS": "4"}
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="module")
def limits_stack(tmp_path_factory: pytest.TempPathFactory, pg_schema_url: str) -> Iterator[Stack]:
    """A proxy on PostgreSQL with tight per-minute limits."""
    stack = launch(tmp_path_factory.mktemp("limits"), pg_schema_url, LIMITS_ENV)
    yield stack
    shutdown(stack)


def ask(stack: Stack, sid: str, *hops: str) -> httpx.Response:
    """Post a question as a client reaching us through the given X-Forwarded-For hops."""
    headers = xff(*hops) if hops else {}
    return stack.http.post(f"/api/sessions/{sid}/messages", json={"text": "hi"}, headers=headers)


def session(stack: Stack, *hops: str) -> str:
    """A new session created through the given hops."""
    r = stack.http.post("/api/sessions", headers=xff(*hops) if hops else {})
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def assert_limited(r: httpx.Response, code: str = "rate_limited") -> None:
    """A refusal with the error shape and a usable Retry-After."""
    assert r.status_code == (503 if code == "resting" else 429), r.text
    assert r.json()["error"]["code"] == code
    assert int(r.headers["Retry-After"]) >= 1


def test_rate_limits_per_session_ip_and_global(limits_stack: Stack) -> None:
    s = limits_stack
    wait_minute_start(margin=6)
    # Per session: two a minute, then 429 with Retry-After (at most the rest of the minute).
    one = session(s, "10.0.1.1")
    assert [ask(s, one, "10.0.1.1").status_code for _ in range(2)] == [202, 202]
    third = ask(s, one, "10.0.1.1")
    assert_limited(third)
    assert int(third.headers["Retry-After"]) <= 61

    # Per IP: five a minute from 10.0.2.2, whatever the client writes in front of it; the
    # proxy we trust appended the real address last, so a forged left-most entry changes nothing.
    ids = [session(s, f"6.6.6.{i}", "10.0.2.2") for i in range(3)]
    codes = [ask(s, ids[i // 2], f"203.0.113.{i}", "10.0.2.2").status_code for i in range(6)]
    assert codes == [202] * 5 + [429]
    assert ask(s, session(s, "10.0.2.3"), "10.0.2.2", "10.0.2.3").status_code == 202
    # A whole IPv6 /64 is one client.
    v6 = [session(s, f"2001:db8:1:2::{i:x}") for i in range(1, 4)]
    v6codes = [ask(s, v6[i // 2], f"2001:db8:1:2::{i + 1:x}").status_code for i in range(6)]
    assert v6codes == [202] * 5 + [429]

    # Global: new readers from new addresses are refused once the minute's total is spent.
    refused_at = None
    for i in range(20):
        ip = f"10.0.3.{i}"
        if ask(s, session(s, ip), ip).status_code == 429:
            refused_at = i
            break
    assert refused_at is not None and refused_at <= 14
    stranger = ask(s, session(s, "10.0.4.4"), "10.0.4.4")
    assert_limited(stranger)
    # Reading is never limited by the question budget.
    assert s.http.get(f"/api/sessions/{one}/messages").status_code == 200


def test_new_sessions_are_limited_per_ip(limits_stack: Stack) -> None:
    wait_minute_start(margin=3)
    made = [limits_stack.http.post("/api/sessions", headers=xff("10.0.9.9")) for _ in range(16)]
    codes = [r.status_code for r in made]
    assert codes == [201] * 15 + [429]  # three per allowed question per minute
    assert_limited(made[-1])
    assert session(limits_stack, "10.0.9.10")  # others are unaffected


def test_question_length_and_body_size(main_stack: Stack) -> None:
    sid = main_stack.new_session()
    http = main_stack.http
    assert http.post(f"/api/sessions/{sid}/messages", json={"text": "x" * 4000}).status_code == 202
    long = http.post(f"/api/sessions/{sid}/messages", json={"text": "x" * 4001})
    assert long.status_code == 413 and long.json()["error"]["code"] == "too_long"
    huge = http.post(f"/api/sessions/{sid}/messages", json={"text": "x" * 70_000})
    assert huge.status_code == 413
    assert set(huge.json()["error"]) == {"code", "message", "request_id"}

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}'

    chunked = http.post(
        f"/api/sessions/{sid}/messages",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["error"]["code"]


def test_questions_waiting_per_session_are_limited(main_stack: Stack) -> None:
    # The first answer never finishes, so the next ones wait behind it.
    main_stack.faults({"kind": "run_never_finishes", "times": 1})
    sid = main_stack.new_session()
    codes = [
        main_stack.http.post(f"/api/sessions/{sid}/messages", json={"text": f"q{i}"}).status_code
        for i in range(4)
    ]
    assert codes == [202, 202, 202, 409]
    main_stack.http.delete(f"/api/sessions/{sid}")  # let the stuck answer go


def test_websocket_connections_per_session_and_ip(main_stack: Stack) -> None:
    a, b, c = (main_stack.new_session() for _ in range(3))
    hop = xff("10.7.7.7")
    base = open_sockets(main_stack)
    opened = [ws_open(main_stack, a, **hop), ws_open(main_stack, a, **hop)]
    try:
        # The server counts a socket just after its handshake; wait for the count to show it.
        wait_until(lambda: open_sockets(main_stack) >= base + 2, timeout=5)
        extra = ws_open(main_stack, a, **hop)
        assert ws_close_code(extra) == 4429  # a third on one session
        extra.close()
        opened += [ws_open(main_stack, b, **hop), ws_open(main_stack, b, **hop)]
        wait_until(lambda: open_sockets(main_stack) >= base + 4, timeout=5)
        over = ws_open(main_stack, c, **hop)
        assert ws_close_code(over) == 4429  # a fifth from one address
        over.close()
        elsewhere = ws_open(main_stack, c, **xff("10.7.7.8"))
        assert ws_close_code(elsewhere, timeout=0.5) is None
        elsewhere.close()
    finally:
        for ws in opened:
            ws.close()
    # Closed sockets free their places.
    again = wait_until(lambda: _stays_open(main_stack, c, hop), timeout=5)
    again.close()


def open_sockets(stack: Stack) -> int:
    """Open WebSockets the proxy reports in its metrics."""
    for line in stack.http.get("/metrics").text.splitlines():
        if line.startswith("docschat_websocket_connections "):
            return int(float(line.split()[1]))
    raise AssertionError("no websocket gauge in /metrics")


def _stays_open(stack: Stack, sid: str, headers: dict[str, str]) -> object:
    ws = ws_open(stack, sid, **headers)
    if ws_close_code(ws, timeout=0.3) is None:
        return ws
    ws.close()
    return None


def test_budgets_and_limits_are_shared_and_survive_restarts(tmp_path: Path) -> None:
    stack = launch(tmp_path, f"sqlite:///{tmp_path / 'budget.db'}", BUDGET_ENV)
    second = Stack(tmp_path, stack.db_url, stack.emulator, BUDGET_ENV)
    try:
        second.start()  # another web process on the same database
        sid = stack.new_session()
        assert ask(stack, sid).status_code == 202
        assert ask(second, sid).status_code == 202
        assert_limited(ask(stack, sid))  # the two processes counted together
        stack.stop()
        stack.start()
        assert_limited(ask(stack, sid))  # and the count outlived the process

        # Daily answer cap (4): two more answers, then the assistant rests until tomorrow.
        other = stack.new_session()
        assert [ask(stack, other).status_code for _ in range(2)] == [202, 202]
        stack.answers(sid, 2)
        stack.answers(other, 2)
        resting = ask(stack, stack.new_session())
        assert_limited(resting, "resting")
        assert "resting until tomorrow" in resting.json()["error"]["message"]
        assert int(resting.headers["Retry-After"]) <= 86401
        second.stop()
        stack.stop()
        stack.start()
        assert_limited(ask(stack, stack.new_session()), "resting")
    finally:
        second.close()
        shutdown(stack)


def test_token_cap_rests_the_assistant(tmp_path: Path) -> None:
    settings = Settings.from_env({}, daily_token_cap=1000, daily_answer_cap=0)
    db = Database(f"sqlite:///{tmp_path / 'tokens.db'}")
    db.upgrade()
    try:
        web, worker = Limits(settings, DatabaseCounters(db)), Limits(settings, DatabaseCounters(db))
        web.check_question("s1", "10.0.0.1")
        worker.spent(999)  # the usage the upstream reported for one answer
        web.check_question("s1", "10.0.0.1")
        worker.spent(1)
        with pytest.raises(Resting) as resting:
            web.check_question("s2", "10.0.0.2")
        answered = ApiError.of(resting.value)
        assert answered.status == 503 and answered.code == "resting"
        assert web.today()["tokens"] == 1000
    finally:
        db.dispose()


def test_redis_counters_are_shared_between_processes() -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings = Settings.from_env({}, rate_session_minute=2, daily_answer_cap=2)
    one = Limits(settings, RedisCounters(REDIS_URL))
    two = Limits(settings, RedisCounters(REDIS_URL))  # as another process would
    sid = uuid.uuid4().hex
    now = 1_000_000_000.0 + (uuid.uuid4().int % 10_000) * 86400.0  # a day of its own
    one.check_question(sid, "10.0.0.1", now)
    two.check_question(sid, "10.0.0.1", now)
    with pytest.raises(RateLimited) as limited:
        one.check_question(sid, "10.0.0.1", now)
    assert ApiError.of(limited.value).status == 429 and limited.value.retry_after
    one.spent(10, now)
    two.spent(10, now)
    with pytest.raises(Resting) as resting:
        two.check_question(uuid.uuid4().hex, "10.0.0.9", now)
    assert resting.value.code == "resting"
    # Session ids are bearer secrets: they never appear in counter names.
    names = [k.decode() for k in redis.Redis.from_url(REDIS_URL).keys("docschat:*")]
    assert names and not [k for k in names if sid in k]


def test_ip_buckets() -> None:
    assert ip_bucket("203.0.113.7") == "203.0.113.7"
    assert ip_bucket("2001:db8:1:2:aaaa::1") == ip_bucket("2001:db8:1:2:bbbb::2")
    assert ip_bucket("2001:db8:1:3::1") != ip_bucket("2001:db8:1:2::1")
    assert ip_bucket("::ffff:203.0.113.7") == "203.0.113.7"
    assert ip_bucket("not-an-ip" * 20) == ("not-an-ip" * 20)[:64]
