"""The chat page (static/widget/chat.js, chat.css): a reader's conversation, in a real browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.support import Stack, wait_until
from tests.widget.conftest import MESSAGES, HostSite, Widget

RICH = """## Installing docschat

Run these commands:

```sh
pip install docschat
docschat demo
```

| Setting | Default |
|---|---|
| DATABASE_URL | a SQLite file |

- first point
- second point

Read [the configuration page](http://docs.test/config) next."""


def contrast_failures(widget: Widget) -> list[str]:
    """Visible text whose contrast with its background is below WCAG AA (in the chat frame)."""
    return widget.frame.evaluate(
        """() => {
          const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
          const lum = ([r, g, b]) => [r, g, b].map((x) => {
            x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
          }).reduce((s, x, i) => s + x * [0.2126, 0.7152, 0.0722][i], 0);
          const background = (el) => {
            for (; el; el = el.parentElement) {
              const c = rgb(getComputedStyle(el).backgroundColor);
              if (c.length === 3 || c[3] > 0.9) return c.slice(0, 3);
            }
            return [255, 255, 255];
          };
          const bad = [];
          for (const el of document.querySelectorAll('body *')) {
            const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.data.trim());
            if (!own || !el.getClientRects().length || el.closest('[disabled],.sr')) continue;
            const s = getComputedStyle(el);
            if (s.visibility === 'hidden' || +s.opacity < 1) continue;
            const [a, b] = [lum(rgb(s.color)), lum(background(el))].sort((x, y) => y - x);
            const ratio = (a + 0.05) / (b + 0.05);
            const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.66
              && +s.fontWeight >= 700);
            const what = el.className || el.tagName;
            if (ratio < (large ? 3 : 4.5)) bad.push(`${what}: ${ratio.toFixed(2)}`);
          }
          return bad;
        }"""
    )


def ask_and_wait(widget: Widget, text: str, count: int) -> Any:
    widget.ask(text)
    return widget.wait_answers(count)


def test_composer_enter_shift_enter_empty_and_optimistic_single_send(
    widget: Widget, page: Page, stack: Stack
) -> None:
    widget.goto()
    widget.open()
    send = widget.chat.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    widget.input.fill("   \n  ")
    expect(send).to_be_disabled()
    widget.input.press("Enter")
    page.wait_for_timeout(200)
    assert widget.chat.locator(".msg.user").count() == 0

    widget.input.fill("")
    one_line = widget.input.evaluate("t => t.offsetHeight")
    widget.input.type("How do I install")
    widget.input.press("Shift+Enter")
    widget.input.type("docschat with pip?")
    expect(widget.input).to_have_value("How do I install\ndocschat with pip?")
    assert widget.input.evaluate("t => t.offsetHeight") > one_line  # it grew
    expect(send).to_be_enabled()

    # Hold the question on its way to the server: the reader sees it at once anyway.
    held: list[Route] = []
    page.route(
        MESSAGES,
        lambda route: held.append(route) if route.request.method == "POST" else route.continue_(),
    )
    widget.input.press("Enter")
    widget.input.press("Enter")  # a double press
    send.click(force=True)
    expect(widget.input).to_have_value("")
    mine = widget.chat.locator(".msg.user .bubble")
    expect(mine).to_have_count(1)
    expect(mine).to_have_text("How do I install\ndocschat with pip?")
    page.wait_for_timeout(300)  # lets Playwright hand over the held request
    wait_until(lambda: page.wait_for_timeout(50) or len(held) == 1)
    held[0].continue_()
    page.unroute(MESSAGES)
    widget.wait_answers(1)
    sid = widget.session_id()
    assert sid
    assert [m["role"] for m in stack.messages(sid)] == ["user", "assistant"]


def test_thinking_then_rendered_answer_with_numbered_sources(widget: Widget, stack: Stack) -> None:
    widget.goto()
    widget.open()
    ask_and_wait(widget, "Which database does DATABASE_URL choose?", 1)
    # The second question: its session and socket exist already, so every step is seen.
    answer = ask_and_wait(widget, "How do I install docschat?", 2)
    statuses = widget.probe("__statuses")
    answer_id = answer.get_attribute("data-id")
    seen = [s.split(":", 1)[1] for s in statuses if s.startswith(f"{answer_id}:")]
    assert seen[0] == "pending:Thinking" and seen[-1] == "done", seen
    expect(answer.locator(".bubble")).to_contain_text("pip install docschat")
    sources = answer.locator(".sources li a")
    expect(sources.first).to_have_text("Installing")
    expect(sources.first).to_have_attribute("href", "http://docs.test/install")
    # The in-text marker [1] links to the same page as source 1.
    expect(answer.locator(".bubble a", has_text="[1]")).to_have_attribute(
        "href", "http://docs.test/install"
    )
    # A page of another site opens in a new tab, without a window reference back.
    expect(sources.first).to_have_attribute("target", "_blank")
    expect(sources.first).to_have_attribute("rel", "noopener noreferrer")


def test_answers_render_headings_lists_tables_links_and_code_with_copy(
    widget: Widget, page: Page, context: BrowserContext, stack: Stack
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    # The emulator answers this question with the rich markdown, end to end through the proxy.
    r = httpx.post(
        f"{stack.emulator_url}/_emulator/answers",
        json={"answers": [{"match": "rich install guide", "text": RICH}]},
    )
    assert r.status_code == 200, r.text
    widget.goto()
    widget.open()
    widget.ask("Show me the rich install guide, please")
    answer = widget.wait_answers(1)
    bubble = answer.locator(".bubble")
    expect(bubble.get_by_role("heading", name="Installing docschat")).to_be_visible()
    expect(bubble.locator("li")).to_have_count(2)
    expect(bubble.get_by_role("table")).to_contain_text("DATABASE_URL")
    expect(bubble.get_by_role("link", name="the configuration page")).to_have_attribute(
        "href", "http://docs.test/config"
    )
    expect(bubble.locator("pre code")).to_have_text("pip install docschat\ndocschat demo\n")
    copy = bubble.get_by_role("button", name="Copy code")
    copy.click()
    expect(copy).to_have_text("Copied")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard == "pip install docschat\ndocschat demo\n"


def test_sources_of_the_site_open_in_the_page_and_the_chat_follows(
    widget: Widget, page: Page, stack: Stack, host_site: HostSite
) -> None:
    page_url = host_site.page(stack.url, "/install.html")
    stack.upload_doc(
        page_url,
        "Install guide",
        "# Install guide\n\nThe kiwifruit installer puts docschat on your machine in one step.",
    )
    widget.goto()
    widget.open()
    answer = ask_and_wait(widget, "What does the kiwifruit installer do?", 1)
    source = answer.locator(".sources a", has_text="Install guide")
    expect(source).to_have_attribute("href", page_url)
    expect(source).to_have_attribute("target", "_top")
    source.click()
    page.wait_for_url(page_url)
    # On the new page the chat is open again with the same conversation.
    expect(widget.chat.get_by_text("What does the kiwifruit installer do?")).to_be_visible()
    expect(widget.chat.locator(".msg.bot[data-status=done]")).to_have_count(1)


def test_a_source_names_and_links_the_section_it_was_cited_from(
    widget: Widget, stack: Stack
) -> None:
    stack.upload_doc(
        "http://docs.test/options",
        "Options",
        "# Options {#options}\n\nEvery option of the product.\n\n"
        "## site_name {#site_name}\n\nThe site_name option puts a kumquat title on the header."
        "\n\n## theme {#theme}\n\nThe theme option picks light or dark colours.\n",
    )
    widget.goto()
    widget.open()
    answer = ask_and_wait(widget, "Which option puts a kumquat title on the header?", 1)
    source = answer.locator(".sources li a", has_text="Options")
    expect(source).to_have_text("Options \u203a site_name")
    expect(source).to_have_attribute("href", "http://docs.test/options#site_name")


def test_feedback_thumbs_are_stored_and_shown_after_reload(
    widget: Widget, page: Page, stack: Stack
) -> None:
    widget.goto()
    widget.open()
    answer = ask_and_wait(widget, "Which database does DATABASE_URL choose?", 1)
    up = answer.get_by_role("button", name="Helpful", exact=True)
    down = answer.get_by_role("button", name="Not helpful")
    expect(up).to_have_attribute("aria-pressed", "false")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    sid = widget.session_id()
    assert sid
    wait_until(lambda: stack.messages(sid)[-1]["feedback"] == "up")
    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    wait_until(lambda: stack.messages(sid)[-1]["feedback"] == "down")
    page.reload()
    answer = widget.wait_answers(1)
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )


def test_conversation_survives_reload_per_site_until_new_conversation(
    widget: Widget, page: Page, stack: Stack, host_site: HostSite
) -> None:
    widget.goto()
    widget.open()
    ask_and_wait(widget, "How do I install docschat?", 1)
    sid = widget.session_id()
    assert sid

    page.reload()  # the chat reopens by itself with the conversation
    expect(widget.chat.get_by_text("How do I install docschat?")).to_be_visible()
    expect(widget.chat.locator(".msg.bot[data-status=done]")).to_have_count(1)
    page.goto(host_site.page(stack.url, "/install.html"))  # another page of the same site
    expect(widget.chat.get_by_text("How do I install docschat?")).to_be_visible()

    # Another site that embeds the same assistant has its own conversation.
    widget.goto(site=host_site.other_url)
    widget.open()
    expect(widget.chat.locator(".msg.user")).to_have_count(0)
    widget.goto()
    widget.open()
    expect(widget.chat.get_by_text("How do I install docschat?")).to_be_visible()
    assert widget.session_id() == sid

    widget.chat.get_by_role("button", name="New conversation").click()
    expect(widget.chat.locator(".msg.user, .msg.bot[data-status]")).to_have_count(0)
    expect(widget.chat.get_by_text("Hi! Ask me anything about these docs.")).to_be_visible()
    wait_until(lambda: widget.frame.evaluate("document.activeElement.id") == "input")
    r = httpx.get(f"{stack.url}/api/sessions/{sid}/messages")
    assert r.status_code == 404 or r.json()["messages"] == []  # cleared on the server too
    assert widget.session_id() is None
    page.reload()
    widget.input.wait_for()
    page.wait_for_timeout(300)
    expect(widget.chat.locator(".msg.user")).to_have_count(0)


def test_scroll_stays_pinned_until_the_reader_scrolls_up(widget: Widget, page: Page) -> None:
    page.set_viewport_size({"width": 1200, "height": 560})
    widget.goto()
    widget.open()
    ask_and_wait(widget, "How do I install docschat?", 1)
    sid = widget.session_id()
    assert sid
    for n, question in enumerate(["Which database is the default?", "What port does it use?"]):
        widget.stack.ask(sid, question)
        widget.wait_answers(n + 2)
    log = widget.chat.locator("#log")
    jump = widget.chat.get_by_role("button", name="Jump to latest")

    def gap() -> float:
        return log.evaluate("l => l.scrollHeight - l.scrollTop - l.clientHeight")

    wait_until(lambda: gap() < 2)  # pinned to the newest message
    expect(jump).to_be_hidden()

    log.hover()
    page.mouse.wheel(0, -250)  # the reader scrolls up by wheel
    expect(jump).to_be_visible()
    top = log.evaluate("l => l.scrollTop")
    widget.stack.ask(sid, "How do I install it again?")
    widget.wait_answers(4)
    page.wait_for_timeout(200)
    assert abs(log.evaluate("l => l.scrollTop") - top) < 2  # not pulled down
    jump.click()
    wait_until(lambda: gap() < 2)
    expect(jump).to_be_hidden()

    log.focus()
    page.keyboard.press("Home")  # ... and by keyboard
    wait_until(lambda: log.evaluate("l => l.scrollTop") == 0)
    widget.stack.ask(sid, "Which database again?")
    widget.wait_answers(5)
    page.wait_for_timeout(200)
    assert log.evaluate("l => l.scrollTop") == 0
    expect(jump).to_be_visible()
    page.keyboard.press("End")  # back at the bottom: pinned again
    wait_until(lambda: gap() < 2)
    widget.stack.ask(sid, "What port again?")
    widget.wait_answers(6)
    wait_until(lambda: gap() < 2)

    # ... and by touch: a finger dragging the conversation down scrolls it up.
    box = log.bounding_box()
    assert box is not None
    touch = page.context.new_cdp_session(page)
    touch.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    x, y = box["x"] + box["width"] / 2, box["y"] + 60
    for step in range(11):
        kind = "touchMove" if step else "touchStart"
        point = {"x": x, "y": y + step * 20}
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [point]})
    page.wait_for_timeout(300)  # the finger rests before it lifts: no fling
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    expect(jump).to_be_visible()
    page.wait_for_timeout(300)
    top = log.evaluate("l => l.scrollTop")
    widget.stack.ask(sid, "How do I install docschat once more?")
    widget.wait_answers(7)
    page.wait_for_timeout(200)
    assert abs(log.evaluate("l => l.scrollTop") - top) < 2


def test_failed_answer_shows_its_error_and_retries(widget: Widget, stack: Stack) -> None:
    widget.goto()
    widget.open()
    stack.faults({"kind": "run_failed"})
    widget.ask("How do I install docschat?")
    failed = widget.wait_answers(1, status="error")
    expect(failed.locator(".bubble")).not_to_be_empty()
    expect(failed.locator(".bubble")).to_have_class(re.compile("failed"))
    failed.get_by_role("button", name="Retry this question").click()
    answer = widget.wait_answers(1)
    expect(answer.locator(".bubble")).to_contain_text("pip install docschat")


def test_too_long_question_is_refused_with_the_reason(widget: Widget) -> None:
    widget.goto()
    widget.open()
    long_question = "How do I install docschat? " * 20  # over this stack's 500 characters
    widget.ask(long_question)
    refused = widget.chat.locator(".msg.user.rejected")
    expect(refused).to_contain_text("Not sent: Questions are limited to 500 characters.")
    expect(widget.input).to_have_value(long_question.strip())  # back in the box to shorten
    expect(widget.chat.locator("#announce")).to_contain_text("Not sent")


def test_rate_limit_and_resting_budget_are_explained(make_widget: Any, strict_stack: Stack) -> None:
    widget = make_widget(strict_stack)
    widget.goto()
    widget.open()
    widget.ask("How do I install docschat?")
    widget.chat.locator(".msg.bot[data-status]").first.wait_for()
    widget.ask("And which database is used?")
    refused = widget.chat.locator(".msg.user.rejected")
    expect(refused).to_contain_text("Not sent: Too many questions.")
    expect(refused).to_contain_text(re.compile(r"Try again in \d+ s\."))
    widget.wait_answers(1)
    widget.input.fill("")
    widget.ask("Is it resting now?")
    expect(refused.nth(1)).to_contain_text("resting until tomorrow")


def test_offline_banner(widget: Widget, context: BrowserContext) -> None:
    widget.goto()
    widget.open()
    ask_and_wait(widget, "How do I install docschat?", 1)
    banner = widget.chat.get_by_role("status").filter(has_text="offline")
    context.set_offline(True)
    expect(banner).to_be_visible()
    context.set_offline(False)
    expect(banner).to_be_hidden()


@pytest.fixture
def dark_context(browser: Any) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1200, "height": 800}, color_scheme="dark")
    yield ctx
    ctx.close()


def test_themes_light_dark_auto_with_aa_contrast(
    widget: Widget, page: Page, stack: Stack, host_site: HostSite, dark_context: BrowserContext
) -> None:
    widget.goto(info="Answers come from the docs and may contain mistakes.")
    widget.open()
    ask_and_wait(widget, "How do I install docschat?", 1)
    assert widget.frame.evaluate("document.documentElement.dataset.theme") == "light"
    assert contrast_failures(widget) == []

    # `auto` (the default) follows the reader's colour scheme, also when it changes.
    page.emulate_media(color_scheme="dark")
    wait_until(lambda: widget.frame.evaluate("document.documentElement.dataset.theme") == "dark")
    assert widget.frame.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(22, 24, 29)"
    )
    assert contrast_failures(widget) == []

    # Fixed themes ignore it.
    dark_page = dark_context.new_page()
    fixed = Widget(dark_page, stack, host_site).goto(theme="light")
    fixed.open()
    assert fixed.frame.evaluate("document.documentElement.dataset.theme") == "light"


def test_accessible_dialog_focus_names_live_region_and_keyboard_only(
    widget: Widget, page: Page, stack: Stack
) -> None:
    widget.goto(title="Docs assistant")
    widget.launcher.focus()
    page.keyboard.press("Enter")
    expect(widget.chat.get_by_role("dialog", name="Docs assistant")).to_be_visible()
    wait_until(lambda: widget.frame.evaluate("document.activeElement.id") == "input")
    page.keyboard.type("How do I install docschat?")
    page.keyboard.press("Enter")
    answer = widget.wait_answers(1)
    live = widget.chat.locator("[aria-live=polite]")
    expect(live).to_contain_text("Answer: Install the package with pip install docschat")

    # Every button, here and on the host page, has a name.
    unnamed = widget.frame.evaluate(
        """[...document.querySelectorAll('button')].filter(b =>
             !(b.getAttribute('aria-label') || b.textContent.trim())).map(b => b.outerHTML)"""
    )
    assert unnamed == []
    assert widget.launcher.evaluate("b => b.textContent.trim()") != ""

    # Tab and Shift+Tab never leave the dialog while it is open.
    focused: list[str] = []
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        page.keyboard.press(key)
        assert page.evaluate("document.activeElement.hasAttribute('data-docschat')"), key
        focused.append(
            widget.frame.evaluate(
                "(a => a.id || a.getAttribute('aria-label') || a.textContent.trim())"
                "(document.activeElement)"
            )
        )
    assert {"new", "close", "input", "log"} <= set(focused)

    # Rating by keyboard: back from the question box to the answer's thumbs.
    widget.input.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    page.keyboard.press("Escape")
    expect(widget.panel).to_be_hidden()


def test_no_request_leaves_the_two_origins(widget: Widget, page: Page, stack: Stack) -> None:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.on("websocket", lambda ws: seen.append(ws.url))
    widget.goto()
    widget.open()
    ask_and_wait(widget, "How do I install docschat?", 1)
    allowed = {widget.host.url, stack.url, stack.url.replace("http", "ws")}
    origins = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in seen}
    assert origins <= allowed, origins
    assert any(u.startswith("ws") for u in seen)  # live updates came over the socket


def test_typing_lists_matching_pages_arrow_keys_browse_and_enter_asks_or_opens(
    widget: Widget, page: Page, stack: Stack, host_site: HostSite
) -> None:
    page_url = host_site.page(stack.url, "/tuning.html")
    stack.upload_doc(
        page_url,
        "Tuning guide",
        "# Tuning guide\n\nThe mangosteen cache keeps answers warm between deploys.",
    )
    widget.goto()
    widget.open()
    hits = widget.chat.get_by_role("listbox", name="Matching pages")
    widget.input.press_sequentially("mangosteen cache", delay=20)
    options = hits.get_by_role("option")
    expect(options.first).to_contain_text("Tuning guide")
    expect(options.first).to_contain_text("The mangosteen cache keeps answers warm")
    expect(widget.input).to_have_attribute("aria-expanded", "true")
    expect(widget.chat.locator("#announce")).to_contain_text("matching page")

    # Arrow keys move the highlight (announced through aria-activedescendant); Escape closes.
    widget.input.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(widget.input).to_have_attribute("aria-activedescendant", "hit0")
    widget.input.press("ArrowUp")
    expect(widget.input).not_to_have_attribute("aria-activedescendant", "hit0")
    widget.input.press("Escape")
    expect(hits).to_be_hidden()
    expect(widget.input).to_have_attribute("aria-expanded", "false")

    # Enter with nothing highlighted still asks the assistant, and the list goes away.
    widget.input.press_sequentially(" warm", delay=20)
    expect(options.first).to_be_visible()
    widget.input.press("Enter")
    expect(hits).to_be_hidden()
    widget.wait_answers(1)
    expect(widget.chat.locator(".msg.user .bubble")).to_have_text("mangosteen cache warm")

    # Enter on a highlighted page opens it in the docs page itself.
    widget.input.press_sequentially("mangosteen", delay=20)
    expect(options.first).to_be_visible()
    widget.input.press("ArrowDown")
    widget.input.press("Enter")
    page.wait_for_url(page_url)
    assert len(stack.messages(widget.session_id())) == 2  # nothing more was asked
