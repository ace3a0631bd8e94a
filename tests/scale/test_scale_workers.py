"""Many processes on one PostgreSQL database: killed workers, two workers and two web processes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.scale.conftest import sample_owners, sigkill
from tests.support import query, wait_until

# Many processes at once: run alone, after the parallel part of the suite.
pytestmark = pytest.mark.serial

RUN_CREATES = ("POST /v1/threads/runs", "POST /v1/threads/{thread_id}/runs")


def _runs_created(stats: dict[str, int]) -> int:
    return sum(stats.get(k, 0) for k in RUN_CREATES)


def _ask(http: httpx.Client, sid: str, text: str) -> dict:
    r = http.post(f"/api/sessions/{sid}/messages", json={"text": text})
    assert r.status_code == 202, r.text
    return r.json()["message"]


def _new_session(base_url: str) -> str:
    r = httpx.post(f"{base_url}/api/sessions", timeout=20)
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def _messages(base_url: str, sid: str) -> list[dict]:
    r = httpx.get(f"{base_url}/api/sessions/{sid}/messages", timeout=20)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def test_killed_worker_with_50_answers_in_flight_is_replaced_and_each_is_answered_once(
    start_stack, pg_url, procs
):
    stack = start_stack(
        db_url=pg_url,
        emulator={"latency_ms": 3000},
        DOCSCHAT_RUN_WORKER="0",
        DOCSCHAT_LEASE_SECONDS="4",
        DOCSCHAT_WORKER_THREADS="64",
    )
    first = procs.worker(stack.env, "first")
    sessions = [stack.new_session() for _ in range(50)]
    for i, sid in enumerate(sessions):
        stack.ask(sid, f"How do I install docschat? ({i})")

    def all_started() -> bool:
        rows = query(
            pg_url,
            "SELECT count(*) FROM answer_jobs WHERE run_id IS NOT NULL AND state = 'running'",
        )
        return rows[0][0] == 50

    wait_until(all_started, timeout=20)
    assert _runs_created(stack.stats()) == 50
    sigkill(first)

    procs.worker(stack.env, "second")
    for sid in sessions:
        answers = stack.answers(sid, 1, timeout=40)
        assert len(answers) == 1, answers
        assert answers[0]["status"] == "done", answers[0]
        assert "pip install docschat" in answers[0]["text"]

    # Exactly once: one local answer per question and no second upstream run for any of them.
    rows = query(pg_url, "SELECT role, count(*) FROM messages GROUP BY role ORDER BY role")
    assert rows == [("assistant", 50), ("user", 50)]
    [(copied,)] = query(
        pg_url, "SELECT count(DISTINCT upstream_message_id) FROM messages WHERE role='assistant'"
    )
    assert copied == 50
    assert _runs_created(stack.stats()) == 50


def test_two_workers_and_two_web_processes_share_one_database(start_stack, pg_url, procs, listen):
    stack = start_stack(
        db_url=pg_url,
        emulator={"latency_ms": 300},
        DOCSCHAT_RUN_WORKER="0",
        DOCSCHAT_WS_PER_IP="1000",
    )
    webs = [stack.url, procs.web(stack.env)]
    workers = [procs.worker(stack.env, "w1"), procs.worker(stack.env, "w2")]
    assert all(w.poll() is None for w in workers)

    sessions = [_new_session(webs[i % 2]) for i in range(100)]
    # Every session is read over a WebSocket on the *other* web process than the one it asks on.
    listeners = {sid: listen(webs[(i + 1) % 2], sid) for i, sid in enumerate(sessions)}
    owners: dict[int, set[str]] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=sample_owners, args=(pg_url, stop, owners), daemon=True)
    sampler.start()

    clients = [httpx.Client(base_url=url, timeout=20) for url in webs]

    def ask_three(i: int) -> None:
        sid = sessions[i]
        for n in range(3):
            _ask(clients[(i + n) % 2], sid, f"Which database does DATABASE_URL choose? ({i}.{n})")

    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(ask_three, range(100)))

        def all_finished() -> bool:
            [(open_jobs,)] = query(
                pg_url, "SELECT count(*) FROM answer_jobs WHERE state NOT IN ('done', 'error')"
            )
            return open_jobs == 0

        wait_until(all_finished, timeout=90, every=0.25)
    finally:
        stop.set()
        sampler.join()
        for client in clients:
            client.close()

    # No lost or duplicate message, answers in order, the same view from both web processes.
    rows = query(pg_url, "SELECT session_id, role, status FROM messages ORDER BY session_id, id")
    by_session: dict[str, list[tuple[str, str]]] = {}
    for session_id, role, status in rows:
        by_session.setdefault(session_id, []).append((role, status))
    assert set(by_session) == set(sessions)
    for sid, messages in by_session.items():
        assert messages == [("user", "done"), ("assistant", "done")] * 3, (sid, messages)
    for sid in sessions[:10]:
        seen = [_messages(url, sid) for url in webs]
        assert seen[0] == seen[1]
    [(total,)] = query(pg_url, "SELECT count(*) FROM messages")
    assert total == 600
    [(copies,)] = query(
        pg_url, "SELECT count(DISTINCT upstream_message_id) FROM messages WHERE role='assistant'"
    )
    assert copies == 300
    jobs = query(
        pg_url, "SELECT session_id, id, started_at, finished_at FROM answer_jobs ORDER BY id"
    )
    previous: dict[str, object] = {}
    for session_id, _id, started, finished in jobs:
        if session_id in previous:
            assert started >= previous[session_id], "a later question started before its turn"
        previous[session_id] = finished
    assert _runs_created(stack.stats()) == 300

    # Every listener got every answer of its session, whichever worker wrote it.
    answer_ids: dict[str, set[int]] = {}
    for session_id, message_id in query(
        pg_url, "SELECT session_id, id FROM messages WHERE role = 'assistant'"
    ):
        answer_ids.setdefault(session_id, set()).add(message_id)
    for sid, listener in listeners.items():
        wanted = answer_ids[sid]
        wait_until(lambda lst=listener, w=wanted: w <= set(lst.finished()), timeout=10)
    by_web: list[set[str]] = [set(), set()]
    for i, sid in enumerate(sessions):
        for message_id in listeners[sid].finished():
            by_web[(i + 1) % 2] |= owners.get(message_id, set())
    assert len(by_web[0]) == 2 and len(by_web[1]) == 2, by_web


def _publish_from_another_process(db_url: str, sid: str, event: dict) -> None:
    """Publish an event as a worker process would, through PostgreSQL NOTIFY."""
    from proxy.answers.events import Hub, PostgresPublisher
    from proxy.storage.db import libpq_dsn

    publisher = PostgresPublisher(Hub(), libpq_dsn(db_url) or "")
    try:
        publisher.publish(sid, event)
    finally:
        publisher.close()


def _store_answer(db_url: str, sid: str) -> int:
    """Store a long finished answer in the session; returns its id."""
    from proxy.storage.db import Database
    from proxy.storage.models import Message

    db = Database(db_url)
    try:
        with db.session() as s:
            text = _long_answer(0)["text"]
            message = Message(session_id=sid, role="assistant", text=text, status="done")
            s.add(message)
            s.flush()
            return message.id
    finally:
        db.dispose()


def _long_answer(message_id: int) -> dict:
    text = "Set DATABASE_URL to a PostgreSQL URL and run many workers. " * 70
    return {
        "id": message_id,
        "role": "assistant",
        "text": text,
        "html": f"<p>{text}</p>" * 2,
        "status": "done",
        "stopped": False,
        "sources": [],
        "created_at": "2026-01-01T00:00:00+00:00",
        "feedback": None,
    }


def test_a_long_answer_reaches_listeners_on_another_process(start_stack, pg_url, listen):
    stack = start_stack(db_url=pg_url, DOCSCHAT_RUN_WORKER="0")
    sid = stack.new_session()
    listener = listen(stack.url, sid)

    def heard_from_elsewhere() -> bool:
        # The web process listens on PostgreSQL from a thread of its own: until it does, a
        # notice from another process reaches nobody, so say hello until one gets through.
        _publish_from_another_process(pg_url, sid, {"type": "hello"})
        return any(e["type"] == "hello" for e in listener.received())

    wait_until(heard_from_elsewhere, timeout=10, every=0.2)
    answer = _long_answer(_store_answer(pg_url, sid))  # as a worker elsewhere would have
    _publish_from_another_process(pg_url, sid, {"type": "message", "message": answer})
    wait_until(lambda: answer["id"] in listener.finished(), timeout=5)
