"""`docschat demo`: one command, no key, no network: docs crawled, widget page, grounded answers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import httpx

from proxy.cli.demo import choose_upstream
from tests.support import ROOT, free_port, wait_until


def test_demo_serves_the_docs_with_the_widget_and_answers_from_them(tmp_path: Path):
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy.cli", "demo", "--port", str(port),
             "--database", f"sqlite:///{tmp_path / 'demo.db'}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, stdin=subprocess.DEVNULL,
            env={**os.environ, "OPENAI_API_KEY": "sk-not-used"},
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: "ready on" in log.read_text(), timeout=60, every=0.2)
        # With a key but no terminal it does not wait for an answer: the emulator, said so.
        assert "answering with the built-in emulator" in log.read_text()
        assert "docschat demo --openai" in log.read_text()
        front = httpx.get(f"{base}/").text
        pages = len(list((ROOT / "docs").glob("*.md")))
        assert f"crawled {pages} pages" in log.read_text()
        assert f"the {pages} pages below" in front and front.count("<li><a href=") == pages
        # Every docs page is served here, with the widget on it.
        docs_page = httpx.get(f"{base}/widget.html").text
        assert ">The chat widget</h1>" in docs_page
        assert '<script src="/widget.js"' in docs_page

        http = httpx.Client(base_url=base, timeout=10)
        sid = http.post("/api/sessions").json()["session_id"]
        http.post(
            f"/api/sessions/{sid}/messages",
            json={"text": "How do I set DATABASE_URL for PostgreSQL?"},
        )

        def answered():
            msgs = http.get(f"/api/sessions/{sid}/messages").json()["messages"]
            done = [m for m in msgs if m["role"] == "assistant" and m["status"] == "done"]
            return done[0] if done else None

        answer = wait_until(answered, timeout=30)
        assert "DATABASE_URL" in answer["text"]
        # The page that answers it comes first; every cited page is there to follow.
        assert "Title:" not in answer["text"] and "URL:" not in answer["text"]
        source = answer["sources"][0]
        # At the section the answer came from, when it can be told.
        assert source["url"].split("#")[0] == f"{base}/deploying.html"
        assert source["title"] == "Deploying docschat"
        for cited in answer["sources"]:
            assert '<script src="/widget.js"' in httpx.get(cited["url"]).text
    finally:
        proc.terminate()
        proc.wait(10)


class _Terminal(io.StringIO):
    """Typed input on a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_demo_asks_about_openai_only_on_a_terminal_with_a_key(capsys):
    key = {"OPENAI_API_KEY": "sk-test"}
    assert choose_upstream(None, {}, _Terminal("y\n")) is False  # no key: no question
    assert capsys.readouterr().out == ""
    assert choose_upstream(None, key, _Terminal("y\n")) is True
    assert "Answer with OpenAI instead of the emulator? [y/N]" in capsys.readouterr().out
    assert choose_upstream(None, key, _Terminal("\n")) is False  # Enter keeps the emulator
    assert choose_upstream(None, key, io.StringIO("y\n")) is False  # not a terminal: no wait
    assert "docschat demo --openai" in capsys.readouterr().out
    assert choose_upstream(True, {}, io.StringIO()) is True  # the flags decide without asking
    assert choose_upstream(False, key, _Terminal("y\n")) is False
