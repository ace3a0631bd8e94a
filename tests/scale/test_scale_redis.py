"""With REDIS_URL, events cross processes over Redis pub/sub, even on SQLite."""

from __future__ import annotations

import json
import subprocess
import sys

import websocket

from tests.support import ROOT

REDIS = "redis://127.0.0.1:6379/14"


def test_answers_from_a_separate_worker_reach_the_web_process_over_redis(start_stack, tmp_path):
    stack = start_stack(DOCSCHAT_RUN_WORKER="0", REDIS_URL=REDIS)
    with (tmp_path / "worker.log").open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "proxy.cli", "worker"],
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        sid = stack.new_session()
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{stack.port}/api/sessions/{sid}/events", timeout=20
        )
        try:
            stack.ask(sid, "How do I install docschat with pip?")
            while True:
                event = json.loads(ws.recv())
                message = event.get("message") or {}
                if message.get("role") == "assistant" and message.get("status") == "done":
                    break
        finally:
            ws.close()
        assert "pip install docschat" in message["text"]
    finally:
        worker.terminate()
        worker.wait(10)
