"""The WebSocket fan-out: the app built in this process and served on loopback, two real
WebSocket readers of one session (two tabs of the widget), and the emulator answering."""

from __future__ import annotations

from pathlib import Path

import httpx

from proxy.config import Settings
from tests.support import Listener, live_env, provision, wait_until


def test_two_readers_of_one_session_see_the_same_messages(
    serve_app, start_emulator, tmp_path: Path
):
    env = live_env(f"sqlite:///{tmp_path / 'ws.db'}", start_emulator(tokens_per_second=400))
    provision(env)
    url, _services = serve_app(Settings.from_env(env), with_worker=True)
    sid = httpx.post(f"{url}/api/sessions").json()["session_id"]
    tabs = [Listener(url, sid), Listener(url, sid)]
    try:
        asked = httpx.post(
            f"{url}/api/sessions/{sid}/messages", json={"text": "How do I install docschat?"}
        )
        assert asked.status_code == 202
        finals = [wait_until(lambda tab=tab: list(tab.finished().values()) or None) for tab in tabs]
        assert finals[0] == finals[1]
        [answer] = finals[0]
        assert answer["status"] == "done" and "pip install docschat" in answer["text"]
        # Both tabs were sent the same messages, in the same last state: what the list shows.
        shown = httpx.get(f"{url}/api/sessions/{sid}/messages").json()["messages"]
        assert tabs[0].messages() == tabs[1].messages() == {m["id"]: m for m in shown}

        assert httpx.delete(f"{url}/api/sessions/{sid}").status_code == 204
        for tab in tabs:
            wait_until(lambda tab=tab: tab.received()[-1] == {"type": "cleared"})
    finally:
        for tab in tabs:
            tab.close()
