"""`docschat demo`: one command, no key, no network: docs crawled, widget page, grounded answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import ROOT, free_port, wait_until


def test_demo_serves_the_widget_page_and_answers_from_the_bundled_docs(tmp_path: Path):
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy.cli", "demo", "--port", str(port),
             "--database", f"sqlite:///{tmp_path / 'demo.db'}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: "ready on" in log.read_text(), timeout=30, every=0.2)
        page = httpx.get(f"{base}/").text
        assert '<script src="/widget.js"' in page
        pages = len(list((ROOT / "docs").glob("*.md"))) + 1  # and the index page
        assert f"crawled {pages} pages" in log.read_text()

        http = httpx.Client(base_url=base, timeout=10)
        sid = http.post("/api/sessions").json()["session_id"]
        http.post(
            f"/api/sessions/{sid}/messages", json={"text": "How do I deploy with PostgreSQL?"}
        )

        def answered():
            msgs = http.get(f"/api/sessions/{sid}/messages").json()["messages"]
            done = [m for m in msgs if m["role"] == "assistant" and m["status"] == "done"]
            return done[0] if done else None

        answer = wait_until(answered, timeout=30)
        assert "DATABASE_URL" in answer["text"]
        # The page that answers it comes first; every cited page is there to follow.
        source = answer["sources"][0]
        assert source["url"].endswith("/deploying.html") and source["title"] == "Deploying docschat"
        for cited in answer["sources"]:
            assert httpx.get(cited["url"]).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
