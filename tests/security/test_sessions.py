"""Session isolation: a session id is an unguessable secret reaching only its own conversation."""

from __future__ import annotations

import base64
import json
import time

from proxy.web.security import token_matches
from tests.security.conftest import ws_open
from tests.support import Stack


def test_session_ids_are_long_random_secrets(main_stack: Stack) -> None:
    ids = [main_stack.new_session() for _ in range(40)]
    assert len(set(ids)) == len(ids)
    for sid in ids:
        raw = base64.urlsafe_b64decode(sid + "=" * (-len(sid) % 4))
        assert len(raw) * 8 >= 128, sid
        assert sid.isascii() and all(c.isalnum() or c in "-_" for c in sid)
    # No shared prefix or counter: the ids do not leak their order.
    assert len({sid[:6] for sid in ids}) > 35


def test_one_session_cannot_touch_another(main_stack: Stack) -> None:
    http = main_stack.http
    alice, mallory = main_stack.new_session(), main_stack.new_session()
    main_stack.ask(alice, "How do I install it? CANARY-ALICE-7731")
    answer = main_stack.answers(alice)[0]
    question_id = answer["id"] - 1
    main_stack.ask(mallory, "What setting chooses the database?")
    main_stack.answers(mallory)

    seen = main_stack.messages(mallory)
    assert all("CANARY" not in m["text"] for m in seen)
    assert {m["id"] for m in seen}.isdisjoint({answer["id"], question_id})
    r = http.get(f"/api/sessions/{mallory}/messages", params={"after": 0})
    assert all("CANARY" not in m["text"] for m in r.json()["messages"])

    # Mallory's id with Alice's message ids: every action is a 404, indistinguishable from none.
    for mid in (answer["id"], question_id):
        for action, body in (("feedback", {"rating": "down", "comment": "x"}), ("stop", None)):
            r = http.post(f"/api/sessions/{mallory}/messages/{mid}/{action}", json=body)
            assert r.status_code == 404, (action, r.text)
        r = http.post(f"/api/sessions/{mallory}/messages/{mid}/retry")
        assert r.status_code == 404, r.text
    missing = http.post(f"/api/sessions/{mallory}/messages/999999999/stop")
    assert missing.status_code == 404
    theirs = http.post(f"/api/sessions/{mallory}/messages/{question_id}/stop")
    # The same refusal, but for the request id that names each request.
    assert {**missing.json()["error"], "request_id": ""} == {
        **theirs.json()["error"],
        "request_id": "",
    }

    # Clearing Mallory's conversation leaves Alice's whole.
    assert http.delete(f"/api/sessions/{mallory}").status_code == 204
    kept = main_stack.messages(alice)
    assert [m["id"] for m in kept] == [question_id, answer["id"]]
    assert kept[1]["feedback"] is None and kept[1]["status"] == "done"


def test_near_miss_session_ids_find_nothing(main_stack: Stack) -> None:
    sid = main_stack.new_session()
    main_stack.ask(sid, "hello")
    flipped = sid[:-1] + ("A" if sid[-1] != "A" else "B")
    variants = [
        flipped,
        sid.upper() if sid.upper() != sid else sid.lower(),
        sid[:-1],
        sid + "x",
        sid[:16],
        "%",
        "*",
        "' OR '1'='1",
        sid + "%00",
        "a" * 65,
    ]
    for bad in variants:
        r = main_stack.http.get(f"/api/sessions/{bad}/messages")
        assert r.status_code == 404, (bad, r.status_code)
        assert r.json()["error"]["code"] == "session_not_found"


def test_event_stream_carries_only_its_own_session(main_stack: Stack) -> None:
    alice, mallory = main_stack.new_session(), main_stack.new_session()
    ws = ws_open(main_stack, mallory)
    try:
        main_stack.ask(alice, "How do I install it? CANARY-STREAM-5521")
        main_stack.answers(alice)
        ws.settimeout(0.3)
        received = []
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                received.append(ws.recv())
            except Exception:
                continue
        assert all("CANARY" not in frame for frame in received)
        assert all(json.loads(frame).get("type") == "ping" for frame in received)
    finally:
        ws.close()
    # An unknown session's stream is closed at once, never opened.
    with_bad = ws_open(main_stack, mallory[:-2] + "zz")
    try:
        with_bad.settimeout(3)
        frame = with_bad.recv()
        assert frame == "" or "CANARY" not in frame
        assert not with_bad.connected or with_bad.recv() == ""
    finally:
        with_bad.close()


def test_secret_comparison_is_exact_and_constant_time() -> None:
    secret = "s3cret-token-0123456789abcdefghij"
    assert token_matches(secret, secret)
    for given in ("", secret[:-1], secret + "x", secret.upper(), "s3cret\udcff", "é" * 33):
        assert not token_matches(given, secret), given
    assert not token_matches("", "")  # no configured secret: nothing matches
