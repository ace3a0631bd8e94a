"""Operator endpoints: off without a token, locked with one, and never leaking session ids."""

from __future__ import annotations

from pathlib import Path

from proxy.config import Settings
from proxy.web.app import create_app
from tests.security.conftest import ADMIN_TOKEN, EVIL
from tests.support import Stack

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PATHS = ("/api/admin/stats", "/api/admin/feedback")


def test_admin_endpoints_are_off_without_a_token(tmp_path: Path) -> None:
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'a.db'}")
    app = create_app(settings)
    try:
        client = app.test_client()
        for path in PATHS:
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
                r = client.get(path, headers=headers)
                assert r.status_code == 404, (path, headers)
                assert r.json == {
                    "error": {
                        "code": "not_found",
                        "message": "Not found.",
                        "request_id": r.headers["X-Request-Id"],
                    }
                }
    finally:
        app.extensions["docschat"].close()


def test_admin_endpoints_refuse_a_wrong_token(main_stack: Stack) -> None:
    wrong = [
        {},
        {"Authorization": ADMIN_TOKEN},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Bearer {ADMIN_TOKEN.upper()}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer  {ADMIN_TOKEN} extra"},
    ]
    for path in PATHS:
        for headers in wrong:
            r = main_stack.http.get(path, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert ADMIN_TOKEN not in r.text
        # The right token from another site's page is still refused by the origin check.
        r = main_stack.http.get(path, headers={**ADMIN, "Origin": EVIL})
        assert r.status_code == 403


def test_stats_and_feedback_export_for_the_operator(main_stack: Stack) -> None:
    http = main_stack.http
    before = http.get("/api/admin/stats", headers=ADMIN).json()
    sid = main_stack.new_session()
    main_stack.ask(sid, "How do I install docschat?")
    answer = main_stack.answers(sid)[0]
    r = http.post(
        f"/api/sessions/{sid}/messages/{answer['id']}/feedback",
        json={"rating": "down", "comment": "wanted more detail"},
    )
    assert r.status_code == 200, r.text

    stats = http.get("/api/admin/stats", headers=ADMIN)
    assert stats.status_code == 200
    assert stats.headers["Cache-Control"] == "no-store"
    after = stats.json()
    assert after["sessions"] >= before["sessions"] + 1
    assert after["questions"] >= before["questions"] + 1
    assert after["answers"]["done"] >= before["answers"]["done"] + 1
    assert after["feedback"]["down"] >= before["feedback"]["down"] + 1
    assert after["documents"] == 2  # the two sample pages of the stack
    assert after["today"]["answers"] >= 1 and after["today"]["tokens"] > 0

    export = http.get("/api/admin/feedback", headers=ADMIN, params={"limit": 1000}).json()
    mine = [f for f in export["feedback"] if f["message_id"] == answer["id"]]
    assert len(mine) == 1
    assert mine[0]["rating"] == "down" and mine[0]["comment"] == "wanted more detail"
    assert mine[0]["question"] == "How do I install docschat?"
    assert mine[0]["answer"] == answer["text"]
    assert sid not in str(export)  # session ids are bearer secrets, even for the operator
    # Paging: nothing after the last item.
    last = export["next_after"]
    assert http.get(f"/api/admin/feedback?after={last}", headers=ADMIN).json()["feedback"] == []
    assert http.get("/api/admin/feedback?after=-1", headers=ADMIN).status_code == 400
