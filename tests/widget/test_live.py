"""Live updates in the chat: streaming text, Stop, reconnecting, and polling when sockets fail."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.support import Stack, wait_until
from tests.widget.conftest import Widget

QUESTION = "How do I install docschat?"


@pytest.fixture
def live(make_widget: Any, slow_stack: Stack) -> Widget:
    return make_widget(slow_stack)


def test_streaming_text_grows_with_a_cursor_then_renders(live: Widget) -> None:
    live.goto()
    live.open()
    live.ask(QUESTION)
    streaming = live.chat.locator(".msg.bot[data-status=streaming]")
    expect(streaming.locator(".cursor")).to_be_visible()
    expect(streaming.get_by_role("button", name="Stop answering")).to_be_visible()
    answer = live.wait_answers(1)
    lengths = live.probe("__lengths")
    sizes = [n for n, _ in lengths]
    assert len(sizes) >= 5 and sizes == sorted(sizes), lengths  # it grew, step by step
    assert all(cursor for _, cursor in lengths)
    # Done: rendered HTML with its source link, no cursor, no Stop.
    expect(answer.locator(".bubble a", has_text="[1]")).to_be_visible()
    expect(answer.locator(".cursor")).to_have_count(0)
    expect(answer.get_by_role("button", name="Stop answering")).to_have_count(0)
    final = answer.locator(".bubble").inner_text()
    assert len(final) >= sizes[-1] - 5


def test_stop_keeps_the_text_so_far_marked_stopped(live: Widget, slow_stack: Stack) -> None:
    live.goto()
    live.open()
    live.ask(QUESTION)
    streaming = live.chat.locator(".msg.bot[data-status=streaming]")
    wait_until(lambda: len(streaming.locator(".bubble").inner_text()) > 15, timeout=15)
    streaming.get_by_role("button", name="Stop answering").click()
    answer = live.wait_answers(1)
    expect(answer.locator(".note")).to_have_text("Stopped")
    text = answer.locator(".bubble").inner_text()
    assert 10 < len(text) < 90  # the full answer is longer
    sid = live.session_id()
    assert sid
    stored = slow_stack.messages(sid)[-1]
    assert stored["stopped"] is True and stored["status"] == "done"


def test_server_restart_mid_answer_shows_a_banner_then_catches_up(
    live: Widget, page: Page, slow_stack: Stack
) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    live.goto()
    live.open()
    live.ask(QUESTION)
    live.wait_answers(1)
    assert len(sockets) == 1

    live.ask("Which database does DATABASE_URL choose?")
    live.chat.locator(".msg.bot[data-status]").nth(1).wait_for()
    slow_stack.stop()
    banner = live.chat.get_by_role("status").filter(has_text="Can't reach the assistant")
    expect(banner).to_be_visible(timeout=10_000)
    slow_stack.start()
    expect(banner).to_be_hidden(timeout=10_000)
    # The answer that was under way when the server went away arrives, once.
    second = live.wait_answers(2)
    expect(second.locator(".bubble")).to_contain_text("database")
    wait_until(lambda: page.wait_for_timeout(100) or len(sockets) >= 2, timeout=20)
    # Live updates flow again over the new socket.
    live.ask(QUESTION)
    live.wait_answers(3)
    expect(live.chat.locator(".msg.bot[data-status]")).to_have_count(3)


def test_polling_takes_over_quietly_when_sockets_cannot_connect(live: Widget, page: Page) -> None:
    refused: list[str] = []

    def refuse(ws: WebSocketRoute) -> None:
        refused.append(ws.url)
        ws.close(code=1011, reason="no sockets here")

    page.route_web_socket(re.compile(r"/events$"), refuse)
    live.goto()
    live.open()
    live.ask(QUESTION)
    answer = live.wait_answers(1)
    expect(answer.locator(".bubble")).to_contain_text("pip install docschat")
    assert refused  # the socket was tried ...
    assert live.probe("__banners") == []  # ... and the reader was not alarmed
