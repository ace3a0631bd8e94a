"""The loader (static/widget/embed.js): launcher, lazy iframe, options, isolation, layout."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from tests.support import Stack, wait_until
from tests.widget.conftest import Widget

WIDGET = Path(__file__).resolve().parents[2] / "static" / "widget"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def focused_in_host(page: Page) -> str:
    """What has focus on the host page: the launcher, the chat (its iframe) or something else."""
    return page.evaluate(
        """() => {
          const a = document.activeElement;
          if (!a || !a.shadowRoot) return a ? a.tagName : '';
          const inner = a.shadowRoot.activeElement;
          return inner ? (inner.tagName === 'IFRAME' ? 'chat' : inner.className) : '';
        }"""
    )


def test_only_a_launcher_until_first_open(widget: Widget, page: Page, stack: Stack) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    widget.goto(label="Questions?")
    expect(widget.launcher).to_have_text("Questions?")
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    page.wait_for_timeout(300)
    assert page.locator("[data-docschat] iframe").count() == 0
    assert not [u for u in requested if "/widget/" in u or "/api/" in u]

    widget.open()
    expect(widget.chat.get_by_role("dialog", name="Ask the docs")).to_be_visible()
    expect(widget.launcher).to_have_attribute("aria-expanded", "true")
    assert widget.frame.url.startswith(f"{stack.url}/widget/")
    assert origin(page.url) != stack.url
    # Closing and opening again reuses the same chat.
    widget.launcher.click()
    widget.launcher.click()
    expect(widget.panel).to_be_visible()
    assert page.locator("[data-docschat] iframe").count() == 1


def test_opens_and_closes_by_launcher_shortcut_escape_and_close_button(
    widget: Widget, page: Page
) -> None:
    widget.goto(shortcut="ctrl+k")
    widget.open()
    assert focused_in_host(page) == "chat"

    page.keyboard.press("Escape")
    expect(widget.panel).to_be_hidden()
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    assert focused_in_host(page) == "l"  # focus is back on the launcher

    # The shortcut works from anywhere on the page, even while typing in the page's search box.
    page.locator("#search").focus()
    page.keyboard.press("Control+k")
    expect(widget.panel).to_be_visible()
    wait_until(lambda: widget.frame.evaluate("document.activeElement.id") == "input")
    # ... and closes the chat again from inside it.
    page.keyboard.press("Control+k")
    expect(widget.panel).to_be_hidden()
    assert focused_in_host(page) == "l"

    page.keyboard.press("Enter")  # the focused launcher, by keyboard
    expect(widget.panel).to_be_visible()
    widget.chat.get_by_role("button", name="Close chat").click()
    expect(widget.panel).to_be_hidden()
    assert focused_in_host(page) == "l"


def test_every_option_comes_from_data_attributes(widget: Widget, page: Page) -> None:
    widget.goto(
        title="Acme helper",
        welcome="Hello reader! Ask about Acme.",
        info="Answers come from the Acme docs and may be wrong.",
        label="Help",
        position="bottom-left",
        accent="#ffcc00",
        theme="dark",
    )
    expect(widget.launcher).to_have_text("Help")
    box = widget.launcher.bounding_box()
    assert box is not None and box["x"] < 100
    colours = widget.launcher.evaluate(
        "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
    )
    assert colours == ["rgb(255, 204, 0)", "rgb(17, 17, 17)"]  # dark text on a light accent

    widget.open()
    expect(widget.chat.get_by_role("dialog", name="Acme helper")).to_be_visible()
    expect(page.locator("[data-docschat] iframe")).to_have_attribute("title", "Acme helper")
    expect(widget.chat.get_by_text("Hello reader! Ask about Acme.")).to_be_visible()
    expect(widget.chat.get_by_text("Answers come from the Acme docs")).to_be_visible()
    panel = widget.panel.bounding_box()
    assert panel is not None and panel["x"] < 100
    widget.input.fill("typed")
    send = widget.chat.get_by_role("button", name="Send")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(255, 204, 0)"
    background = widget.frame.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(22, 24, 29)"  # dark theme


def test_defaults_without_any_option(widget: Widget) -> None:
    widget.goto()
    expect(widget.launcher).to_have_text("Ask AI")
    widget.open()
    expect(widget.chat.get_by_role("dialog", name="Ask the docs")).to_be_visible()
    expect(widget.chat.get_by_text("Hi! Ask me anything about these docs.")).to_be_visible()
    expect(widget.chat.locator("#info")).to_be_hidden()


def test_host_css_cannot_reach_the_widget_and_the_widget_css_stays_out(
    widget: Widget, page: Page
) -> None:
    widget.goto()
    sheets = page.evaluate("document.styleSheets.length")
    heading_font = page.locator("#heading").evaluate("h => getComputedStyle(h).fontFamily")
    widget.open()
    # The host's `button {background: red !important}` and `iframe {border: ...}` miss the widget.
    style = widget.launcher.evaluate(
        "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).fontSize]"
    )
    assert style == ["rgb(37, 87, 214)", "15px"]
    frame_border = page.locator("[data-docschat] iframe").evaluate(
        "f => getComputedStyle(f).borderTopWidth"
    )
    assert frame_border == "0px"
    chat_font = widget.frame.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Georgia" not in chat_font
    # Nothing of the widget's styling lands in the host document.
    assert page.evaluate("document.styleSheets.length") == sheets
    assert page.evaluate("document.adoptedStyleSheets.length") == 0
    assert page.locator("#heading").evaluate("h => getComputedStyle(h).fontFamily") == heading_font


def test_messages_between_page_and_chat_are_namespaced_and_origin_checked(
    widget: Widget, page: Page
) -> None:
    widget.goto()
    widget.open()
    # The host page's own scripts cannot drive the panel by posting to themselves.
    page.evaluate("window.postMessage({ns: 'docschat', type: 'close'}, '*')")
    # The chat's origin without the namespace is not listened to either.
    widget.frame.evaluate("parent.postMessage({type: 'close'}, '*')")
    # Inside the chat, only the parent page is listened to.
    widget.frame.evaluate("window.postMessage({ns: 'docschat', type: 'layout', full: true}, '*')")
    page.wait_for_timeout(300)
    expect(widget.panel).to_be_visible()
    expect(widget.chat.get_by_role("button", name="Expanded view")).to_be_visible()

    # Every message the widget sends names the one origin allowed to read it.
    for name, target in (("embed.js", "origin"), ("chat.js", "host")):
        source = (WIDGET / name).read_text()
        calls = re.findall(r"postMessage\((.*?), (\w+)\)", source)
        assert calls and {t for _, t in calls} == {target}, (name, calls)
        assert "'*'" not in source and '"*"' not in source


def test_compact_expanded_and_full_screen_on_narrow_screens(widget: Widget, page: Page) -> None:
    widget.goto()
    widget.open()
    compact = widget.panel.bounding_box()
    assert compact is not None
    assert 360 <= compact["width"] <= 420 and compact["height"] <= 660
    assert compact["x"] + compact["width"] == 1200 - 20  # in the corner

    expand = widget.chat.get_by_role("button", name="Expanded view")
    expand.click()
    expect(expand).to_have_attribute("aria-pressed", "true")
    wait_until(lambda: widget.panel.bounding_box()["width"] > 900)
    expand.click()
    wait_until(lambda: widget.panel.bounding_box()["width"] == compact["width"])

    page.set_viewport_size({"width": 390, "height": 760})
    wait_until(lambda: widget.panel.bounding_box() == {"x": 0, "y": 0, "width": 390, "height": 760})
    expect(expand).to_be_hidden()  # nothing to expand on a phone
    expect(widget.chat.get_by_role("button", name="Close chat")).to_be_visible()


def test_size_budgets_gzipped(stack: Stack) -> None:
    def gzipped(path: str) -> int:
        r = httpx.get(f"{stack.url}{path}")
        assert r.status_code == 200, path
        return len(gzip.compress(r.content, compresslevel=9))

    assert gzipped("/widget.js") <= 3 * 1024
    chat = gzipped("/widget/chat.js") + gzipped("/widget/chat.css")
    assert chat <= 15 * 1024


def test_works_on_a_page_with_a_strict_csp_of_its_own(
    widget: Widget, page: Page, stack: Stack
) -> None:
    # No inline script or style allowed on the docs page: the widget needs neither.
    widget.goto(
        csp=f"default-src 'self'; script-src {stack.url}; frame-src {stack.url}; style-src 'self'",
        accent="#0a7d32",
    )
    position = widget.launcher.evaluate(
        "b => [getComputedStyle(b).position, getComputedStyle(b).backgroundColor]"
    )
    assert position == ["fixed", "rgb(10, 125, 50)"]
    widget.open()
    widget.ask("How do I install docschat?")
    widget.wait_answers(1)
