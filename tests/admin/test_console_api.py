"""The console's JSON endpoints on a live stack: 401 without the token, gaps grouped, overview
figures, conversations by console id, resolve, export, hand-off counts, OpenAPI."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import httpx

from tests.admin.conftest import (
    ADMIN,
    BREAD,
    COVERED,
    DISLIKE_COMMENT,
    FAILED,
    HOSTILE_COMMENT,
    HOSTILE_QUESTION,
    TOKEN,
    WEATHER,
    Seeded,
)
from tests.support import Stack

ENDPOINTS = [
    ("GET", "/api/admin/overview"),
    ("GET", "/api/admin/gaps"),
    ("GET", "/api/admin/gaps/export?format=csv"),
    ("POST", "/api/admin/gaps/abc/resolve"),
    ("DELETE", "/api/admin/gaps/abc/resolve"),
    ("GET", "/api/admin/conversations"),
    ("GET", "/api/admin/conversations/abc"),
    ("GET", "/api/admin/stats"),
    ("GET", "/api/admin/feedback"),
]


def _gaps(stack: Stack, **params: str) -> list[dict]:
    r = stack.http.get("/api/admin/gaps", headers=ADMIN, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()["groups"]


def _group_of(groups: list[dict], question: str) -> dict:
    (found,) = [g for g in groups if question in [q["text"] for q in g["questions"]]]
    return found


def test_every_console_endpoint_wants_the_token(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    for method, path in ENDPOINTS:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
            # Each from its own address: wrong guesses are limited per client.
            headers = {**headers, "X-Forwarded-For": "198.51.100.7"}
            r = stack.http.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["Cache-Control"] == "no-store"


def test_repeated_wrong_tokens_are_rate_limited(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    guesser = {"X-Forwarded-For": "203.0.113.99"}
    statuses = [
        stack.http.get(
            "/api/admin/overview", headers={**guesser, "Authorization": f"Bearer guess{i}"}
        ).status_code
        for i in range(40)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429
    assert set(statuses) == {401, 429}
    # Even the right token waits while that client is locked out; other clients are not.
    locked = stack.http.get("/api/admin/overview", headers={**guesser, **ADMIN})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert stack.http.get("/api/admin/overview", headers=ADMIN).status_code == 200


def test_gaps_are_grouped_by_topic(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    groups = _gaps(stack)
    weather = _group_of(groups, WEATHER[0])
    assert sorted(q["text"] for q in weather["questions"]) == sorted(WEATHER)
    assert weather["count"] == 3 and weather["reasons"] == {"uncovered": 3, "disliked": 0}
    assert weather["first_asked"] <= weather["last_asked"]
    counts = [g["count"] for g in groups]
    assert counts == sorted(counts, reverse=True)  # the most asked first
    bread = _group_of(groups, BREAD[0])
    assert set(BREAD) <= {q["text"] for q in bread["questions"]}
    assert WEATHER[0] not in str(bread)
    disliked = _group_of(groups, COVERED)
    question = next(q for q in disliked["questions"] if q["comment"])
    assert question["reason"] == "disliked" and question["comment"] == DISLIKE_COMMENT
    assert {"text", "reason", "asked_at", "conversation"} <= set(question)
    # A failed answer is no gap in the docs; it is listed under conversations.
    assert FAILED not in str(groups)


def test_gap_questions_open_into_their_conversation(console_stack: tuple[Stack, Seeded]) -> None:
    stack, seeded = console_stack
    group = _group_of(_gaps(stack), WEATHER[0])
    question = next(q for q in group["questions"] if q["text"] == WEATHER[0])
    cid = question["conversation"]
    sid = seeded.conversations[WEATHER[0]]
    assert cid and cid != sid and sid not in str(group)
    r = stack.http.get(f"/api/admin/conversations/{cid}", headers=ADMIN)
    assert r.status_code == 200
    t = r.json()
    assert [m["role"] for m in t["messages"]] == ["user", "assistant", "user", "assistant"]
    assert [m["text"] for m in t["messages"] if m["role"] == "user"] == [WEATHER[0], BREAD[0]]
    assert all(m["sources"] == [] for m in t["messages"])
    assert sid not in r.text and "client_ip" not in r.text and "127.0.0.1" not in r.text
    missing = stack.http.get(f"/api/admin/conversations/{sid}", headers=ADMIN)
    assert missing.status_code == 404  # the reader's session id names nothing here


def test_overview_counts_what_readers_did(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    r = stack.http.get("/api/admin/overview", headers=ADMIN)
    assert r.status_code == 200
    data = r.json()
    assert len(data["per_day"]) == 30
    assert data["per_day"][-1]["date"] == datetime.now(UTC).date().isoformat()
    assert data["per_day"][-1]["questions"] == data["questions"] >= 8
    assert data["answers"]["uncovered"] >= 6  # weather, bread, hostile
    assert data["answers"]["answered"] >= 1 and data["answers"]["failed"] >= 1
    assert data["feedback"]["down"] >= 2
    top = data["top_pages"][0]
    assert top["url"] == "http://docs.test/install" and top["count"] >= 1
    assert 0 < data["answer_seconds"]["p50"] <= data["answer_seconds"]["p95"]
    assert data["today"]["tokens"] > 0 and data["today"]["token_cap"] > 0
    assert data["settings"] == {"retention_days": 90, "handoff": True}
    assert set(data["handoff"]) == {"offered", "followed"}
    assert stack.http.get("/api/admin/overview?days=0", headers=ADMIN).status_code == 400


def test_conversation_filters(console_stack: tuple[Stack, Seeded]) -> None:
    stack, seeded = console_stack

    def firsts(**params: str) -> set[str]:
        r = stack.http.get("/api/admin/conversations", headers=ADMIN, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["conversations"])
        for c in body["conversations"]:
            assert c["id"] not in seeded.conversations.values()
        return {c["first_question"] for c in body["conversations"]}

    everything = firsts()
    assert set(seeded.conversations) <= everything
    assert firsts(uncovered="1") >= {WEATHER[0], WEATHER[1], WEATHER[2], HOSTILE_QUESTION}
    assert COVERED not in firsts(uncovered="1") and FAILED not in firsts(uncovered="1")
    disliked = firsts(disliked="1")
    assert {COVERED, HOSTILE_QUESTION} <= disliked and not disliked & {*WEATHER, FAILED}
    assert firsts(failed="1") == {FAILED}
    assert firsts(q="forecast") == {WEATHER[1]}
    assert {WEATHER[0], WEATHER[2]} <= firsts(q="SOURDOUGH")
    assert firsts(q="100%_") == set()  # wildcards are taken literally
    today = datetime.now(UTC).date()
    assert firsts(**{"from": today.isoformat(), "to": today.isoformat()}) == everything
    assert firsts(**{"from": (today + timedelta(days=1)).isoformat()}) == set()
    assert firsts(**{"to": (today - timedelta(days=1)).isoformat()}) == set()
    bad = stack.http.get("/api/admin/conversations?from=yesterday", headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_from"


def test_transcript_shows_ratings_comments_and_errors(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    r = stack.http.get("/api/admin/conversations", headers=ADMIN, params={"disliked": "1"})
    by_first = {c["first_question"]: c["id"] for c in r.json()["conversations"]}
    t = stack.http.get(f"/api/admin/conversations/{by_first[COVERED]}", headers=ADMIN).json()
    answer = t["messages"][1]
    assert answer["feedback"] == {"rating": "down", "comment": DISLIKE_COMMENT}
    assert answer["sources"][0]["url"].startswith("http://docs.test/install")
    t = stack.http.get(f"/api/admin/conversations/{by_first[HOSTILE_QUESTION]}", headers=ADMIN)
    assert t.json()["messages"][0]["text"] == HOSTILE_QUESTION  # stored as typed: shown as text
    assert t.json()["messages"][1]["feedback"]["comment"] == HOSTILE_COMMENT


def test_resolve_hides_a_group_until_asked_again(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    bread = _group_of(_gaps(stack), BREAD[0])
    r = stack.http.post(f"/api/admin/gaps/{bread['id']}/resolve", headers=ADMIN)
    assert r.status_code == 200 and r.json()["id"] == bread["id"]
    assert BREAD[0] not in str(_gaps(stack))
    shown = _group_of(_gaps(stack, resolved="1"), BREAD[0])
    assert shown["resolved"] is True and shown["resolved_at"]
    # Asked again later: the group is back, open, with the new question.
    sid = stack.new_session()
    stack.ask(sid, "any tips for baking sourdough bread?")
    stack.answers(sid)
    back = _group_of(_gaps(stack), BREAD[0])
    assert back["id"] == bread["id"] and back["resolved"] is False
    assert back["count"] == bread["count"] + 1
    assert stack.http.post("/api/admin/gaps/nosuchgroup/resolve", headers=ADMIN).status_code == 404
    # Reopening by hand works too.
    stack.http.post(f"/api/admin/gaps/{bread['id']}/resolve", headers=ADMIN)
    r = stack.http.delete(f"/api/admin/gaps/{bread['id']}/resolve", headers=ADMIN)
    assert r.status_code == 204
    assert _group_of(_gaps(stack), BREAD[0])["resolved"] is False


def test_export_as_csv_and_markdown(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    r = stack.http.get("/api/admin/gaps/export", headers=ADMIN, params={"format": "csv"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["question"] for row in rows} >= set(WEATHER)
    weather = [row for row in rows if row["question"] in WEATHER]
    assert len({row["group"] for row in weather}) == 1
    assert all(row["reason"] == "uncovered" for row in weather)
    md = stack.http.get("/api/admin/gaps/export", headers=ADMIN, params={"format": "markdown"})
    assert md.status_code == 200 and md.headers["Content-Type"].startswith("text/markdown")
    text = md.text
    assert text.startswith("## Documentation gaps")
    assert "### " in text and "asked 3 times" in text
    assert DISLIKE_COMMENT in text
    # Markup is escaped for the tracker: every "<" carries its backslash.
    assert "\\<img" in text and re.search(r"(?<!\\)<", text) is None
    bad = stack.http.get("/api/admin/gaps/export?format=pdf", headers=ADMIN)
    assert bad.status_code == 400


def test_handoff_events_are_counted(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    before = stack.http.get("/api/admin/overview", headers=ADMIN).json()["handoff"]
    sid = stack.new_session()
    for event in ("offered", "offered", "followed"):
        r = stack.http.post(f"/api/sessions/{sid}/handoff", json={"event": event})
        assert r.status_code == 204, r.text
    assert stack.http.post(f"/api/sessions/{sid}/handoff", json={"event": "x"}).status_code == 400
    assert (
        stack.http.post("/api/sessions/nope/handoff", json={"event": "offered"}).status_code == 404
    )
    after = stack.http.get("/api/admin/overview", headers=ADMIN).json()["handoff"]
    assert after == {"offered": before["offered"] + 2, "followed": before["followed"] + 1}


def test_console_page_headers(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    r = httpx.get(f"{stack.url}/admin/")
    assert r.status_code == 200 and 'id="token"' in r.text and 'type="password"' in r.text
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "require-trusted-types-for 'script'" in csp and "unsafe" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    for name in ("console.js", "console.css"):
        asset = httpx.get(f"{stack.url}/admin/{name}")
        assert asset.status_code == 200 and asset.headers["Cache-Control"] == "no-store"
    assert httpx.get(f"{stack.url}/admin/../config.py").status_code == 404
    assert httpx.get(f"{stack.url}/admin", follow_redirects=False).headers["Location"] == "/admin/"


def test_new_endpoints_are_described(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    paths = stack.http.get("/api/openapi.json").json()["paths"]
    for path in (
        "/api/admin/overview",
        "/api/admin/gaps",
        "/api/admin/gaps/export",
        "/api/admin/gaps/{group_id}/resolve",
        "/api/admin/conversations",
        "/api/admin/conversations/{cid}",
        "/api/sessions/{sid}/handoff",
    ):
        assert path in paths, path
    assert set(paths["/api/admin/gaps/{group_id}/resolve"]) == {"post", "delete"}
