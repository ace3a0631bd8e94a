"""The database goes away or fills up: nothing accepted is lost, and refusals say so clearly."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import wait_until

# Many processes at once: run alone, after the parallel part of the suite.
pytestmark = pytest.mark.serial


def _is_error_body(response: httpx.Response) -> bool:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(error.get("code")) and bool(error.get("message"))


def _answered(stack, sid: str, question_id: int) -> bool:
    """Whether the message after a question is its finished answer."""
    messages = stack.messages(sid)
    ids = [m["id"] for m in messages]
    if question_id not in ids:
        return False
    after = messages[ids.index(question_id) + 1 :]
    return bool(after) and after[0]["role"] == "assistant" and after[0]["status"] == "done"


def test_postgresql_restart_under_load_costs_errors_only_while_it_is_down(start_stack, private_pg):
    stack = start_stack(
        db_url=private_pg.url,
        emulator={"latency_ms": 300},
        DOCSCHAT_LEASE_SECONDS="4",
    )
    sessions = [stack.new_session() for _ in range(20)]
    accepted: list[tuple[float, str, int]] = []
    refused: list[tuple[float, int, bool]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=stack.url, timeout=15) as http:
            i = 0
            while not stop.is_set():
                sid = sessions[i % len(sessions)]
                i += 1
                try:
                    r = http.post(f"/api/sessions/{sid}/messages", json={"text": f"install? {i}"})
                except httpx.HTTPError:
                    refused.append((time.monotonic(), 0, False))
                else:
                    if r.status_code == 202:
                        accepted.append((time.monotonic(), sid, r.json()["message"]["id"]))
                    else:
                        refused.append((time.monotonic(), r.status_code, _is_error_body(r)))
                stop.wait(0.1)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_until(lambda: len(accepted) >= 10, timeout=20)
        private_pg.stop()
        down = time.monotonic()
        # Down until the load has met it: a few questions refused while the database is away.
        wait_until(lambda: len([r for r in refused if r[0] > down]) >= 3, timeout=20, every=0.1)
        private_pg.start()
        back = time.monotonic()
        # The service recovers by itself: questions are accepted again soon after, and keep
        # being accepted.
        wait_until(lambda: len([a for a in accepted if a[0] > back]) >= 10, timeout=25, every=0.1)
    finally:
        stop.set()
        loader.join()
    assert stack.proc.poll() is None
    # Refusals while the database was down were the one JSON error shape, never a crash.
    assert all(ok and status in (503, 409) for _, status, ok in refused), refused
    # Once one question is accepted again, none is refused: dead pooled connections are found
    # and replaced before use, not handed to a request first.
    recovered = min(t for t, _, _ in accepted if t > back)
    assert not [r for r in refused if r[0] > recovered], refused
    # Every accepted question is answered, including those in flight during the restart.
    for _, sid, question_id in accepted:
        wait_until(lambda s=sid, q=question_id: _answered(stack, s, q), timeout=40, every=0.2)


def test_connections_left_idle_through_a_restart_are_replaced_before_use(private_pg):
    from sqlalchemy import literal_column, select, text

    from proxy.storage.db import Database, Query

    db = Database(private_pg.url, pool_size=4, max_overflow=0)
    one = Query(db, select(literal_column("1")))
    try:
        held = [db.engine.connect() for _ in range(4)]  # fill the pool with live connections
        for c in held:
            c.execute(text("SELECT 1"))
            c.close()
        private_pg.stop()
        private_pg.start()
        # The first reads after the restart work: no request is handed a dead connection.
        for _ in range(8):
            assert db.fetch(one, {})[0][0] == 1
    finally:
        db.dispose()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs to fill up (needs root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the file system has no space left; returns it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 16, 1 << 12, 1 << 9):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def _ask_until_refused(stack, sid: str, attempts: int = 10) -> tuple[httpx.Response, list[int]]:
    """Ask until a question is refused; returns the refusal and the ids of any accepted first."""
    accepted = []
    for n in range(attempts):
        r = stack.http.post(f"/api/sessions/{sid}/messages", json={"text": f"refused? {n}"})
        if r.status_code != 202:
            return r, accepted
        accepted.append(r.json()["message"]["id"])
    raise AssertionError(f"{attempts} questions were accepted on a full or read-only database")


def _ask_until_accepted(stack, sid: str) -> int:
    def accepted() -> int | None:
        r = stack.http.post(f"/api/sessions/{sid}/messages", json={"text": "How do I install?"})
        return r.json()["message"]["id"] if r.status_code == 202 else None

    return wait_until(accepted, timeout=15, every=0.3)


def _checkpoint(db_file: Path) -> None:
    """Move the WAL into the database and truncate it, so the next write needs new space."""
    with sqlite3.connect(db_file) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_full_disk_on_sqlite_refuses_questions_clearly_then_recovers(small_disk, start_stack):
    db_file = small_disk / "docschat.db"
    stack = start_stack(db_url=f"sqlite:///{db_file}", DOCSCHAT_LEASE_SECONDS="3")
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid, 1)

    _checkpoint(db_file)
    filler = _fill(small_disk)
    refusal, accepted_anyway = _ask_until_refused(stack, sid)
    assert refusal.status_code in (503, 507), refusal.text
    assert _is_error_body(refusal), refusal.text
    assert refusal.headers["content-type"].startswith("application/json")
    texts = [m["text"] for m in stack.messages(sid)]
    refused_text = f"refused? {len(accepted_anyway)}"
    assert refused_text not in texts, "a refused question was stored"
    assert stack.proc.poll() is None

    filler.unlink()
    question_id = _ask_until_accepted(stack, sid)
    for qid in [*accepted_anyway, question_id]:
        wait_until(lambda q=qid: _answered(stack, sid, q), timeout=30, every=0.2)


def test_read_only_sqlite_file_refuses_questions_clearly_then_recovers(tmp_path, start_stack):
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr to make a file read-only for root")
    db_file = tmp_path / "ro" / "docschat.db"
    stack = start_stack(db_url=f"sqlite:///{db_file}", DOCSCHAT_LEASE_SECONDS="3")
    sid = stack.new_session()
    stack.ask(sid, "How do I install docschat?")
    stack.answers(sid, 1)

    # The shared-memory index stays writable: SQLite maps it, and a write to it must not fault.
    locked = [str(db_file), f"{db_file}-wal"]
    if subprocess.run(["chattr", "+i", *locked], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support the immutable attribute")
    try:
        refusal, accepted_anyway = _ask_until_refused(stack, sid)
        assert refusal.status_code in (503, 507), refusal.text
        assert _is_error_body(refusal), refusal.text
        texts = [m["text"] for m in stack.messages(sid)]
        assert f"refused? {len(accepted_anyway)}" not in texts, "a refused question was stored"
        assert stack.proc.poll() is None
    finally:
        subprocess.run(["chattr", "-i", *locked], check=False)

    question_id = _ask_until_accepted(stack, sid)
    for qid in [*accepted_anyway, question_id]:
        wait_until(lambda q=qid: _answered(stack, sid, q), timeout=30, every=0.2)
