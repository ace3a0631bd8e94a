"""Hostile text as questions and as answers: nothing runs, nothing loads, it all reads as text."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from proxy.answers.render import ALLOWLIST
from tests.support import Stack
from tests.widget.conftest import HostSite, Widget

# {beacon} is a URL on another loopback origin that records every request made to it.
PAYLOADS = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=2>",
    '<img src="{beacon}/img">',
    "<svg onload=window.__xss=3><circle r=9></circle></svg>",
    '<iframe src="javascript:parent.__xss=4"></iframe>',
    '<iframe srcdoc="<script>parent.__xss=5</script>"></iframe>',
    '<a href="javascript:window.__xss=6">click six</a>',
    "[click seven](javascript:window.__xss=7)",
    "[click eight](data:text/html,<script>window.__xss=8</script>)",
    "![beacon image]({beacon}/md-image)",
    '<style>@import url("{beacon}/style");</style>',
    '<link rel=stylesheet href="{beacon}/link">',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=9>",
    "<details open ontoggle=window.__xss=10>",
    "<body onload=window.__xss=11>",
    '<object data="javascript:window.__xss=12"></object>',
    '<embed src="{beacon}/embed">',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=13">',
    '<base href="{beacon}/">',
    '<form action="{beacon}/form"><button>go</button></form>',
    "<input autofocus onfocus=window.__xss=14>",
    "<video><source onerror=window.__xss=15></video>",
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=16>">',
    "<template><img src=x onerror=window.__xss=17></template>",
    '<a href="&#106;avascript:window.__xss=18">entity link</a>',
    '<p style="background:url({beacon}/css)">styled</p>',
    '"><img src=x onerror=window.__xss=19>',
    "{{constructor.constructor('window.__xss=20')()}}",
    '<a href="vbscript:msgbox(21)">vb link</a>',
    '<a href="{beacon}/plain" onclick="window.__xss=22" style="position:fixed">plain link</a>',
]
DANGEROUS = (
    "script, img, svg:not(button > svg), iframe, style, link, math, details, object, embed, "
    "meta, base, form, input, video, source, noscript, template, button:not(.chip):not(.icon), "
    "[style]"
)


def payloads(host: HostSite) -> list[str]:
    return [p.replace("{beacon}", f"{host.url}/beacon") for p in PAYLOADS]


def assert_inert(widget: Widget, page: Page, host: HostSite) -> None:
    """No script ran, nothing was fetched, and the chat holds no dangerous element."""
    assert page.evaluate("window.__xss") is None
    assert widget.frame.evaluate("window.__xss") is None
    assert [h for h in host.hits if h.startswith("/beacon")] == []
    found = widget.frame.evaluate(
        """(selector) => {
          const root = document.getElementById('msgs');
          const bad = [...root.querySelectorAll(selector)].map((e) => e.outerHTML);
          for (const e of root.querySelectorAll('*')) {
            for (const a of e.attributes) {
              if (a.name.startsWith('on')) bad.push(e.outerHTML);
            }
          }
          for (const a of root.querySelectorAll('a[href]')) {
            if (!/^(https?:|mailto:)/.test(a.getAttribute('href'))) bad.push(a.outerHTML);
          }
          return bad;
        }""",
        DANGEROUS,
    )
    assert found == []


def test_hostile_questions_show_as_plain_text(
    widget: Widget, page: Page, host_site: HostSite
) -> None:
    texts = payloads(host_site)
    widget.goto()
    widget.open()
    for text in texts:
        widget.ask(text)
    confirmed = widget.chat.locator(".msg.user[data-id] .bubble")
    expect(confirmed).to_have_count(len(texts), timeout=20_000)
    assert confirmed.all_text_contents() == texts
    assert_inert(widget, page, host_site)

    page.reload()  # the same questions, now from the list endpoint
    expect(widget.chat.locator(".msg.user .bubble")).to_have_count(len(texts))
    assert widget.chat.locator(".msg.user .bubble").all_text_contents() == texts
    page.wait_for_timeout(500)
    assert_inert(widget, page, host_site)
    widget.chat.get_by_role("button", name="New conversation").click()  # stop the answers
    expect(widget.chat.locator(".msg.user")).to_have_count(0)


def test_hostile_docs_give_answers_that_show_as_plain_text(
    widget: Widget, page: Page, stack: Stack, host_site: HostSite
) -> None:
    # Cut the payloads into lines the emulator quotes whole, each under a keyword of its own.
    lines: list[str] = []
    for text in payloads(host_site):
        if lines and len(lines[-1]) + len(text) < 330:
            lines[-1] += " ~ " + text
        else:
            lines.append(f"quokka{len(lines)} " + text)
    stack.upload_doc(
        f"{host_site.url}/hostile.html",
        "Hostile page <img src=x onerror=window.__xss=99>",
        "# Hostile page\n\n" + "\n\n".join(lines),
    )
    widget.goto()
    widget.open()
    for n in range(len(lines)):
        widget.ask(f"quokka{n}")
        answer = widget.wait_answers(n + 1)
        expect(answer.locator(".bubble")).to_contain_text(f"quokka{n}")
    shown = " ".join(widget.chat.locator(".msg.bot .bubble").all_text_contents())
    # Read as text, exactly as the page holds it.
    assert "<img src=x onerror=window.__xss=2>" in shown and "<script>" in shown
    source = widget.chat.locator(".sources a", has_text="Hostile page").first
    expect(source).to_have_text("Hostile page <img src=x onerror=window.__xss=99>")
    assert_inert(widget, page, host_site)
    page.reload()
    widget.wait_answers(len(lines))
    page.wait_for_timeout(300)
    assert_inert(widget, page, host_site)


@pytest.mark.parametrize("field", ["html", "sources"])
def test_chat_sanitises_answers_itself_even_if_the_server_did_not(
    field: str, widget: Widget, page: Page, host_site: HostSite
) -> None:
    hostile = "".join(payloads(host_site))

    def poison(m: dict[str, Any]) -> None:
        if field == "html":
            m["html"] = "<p>Safe <strong>part</strong> stays.</p>" + hostile
        else:
            m["sources"] = [
                {"title": "<img src=x onerror=window.__xss=30>", "url": "javascript:alert(1)"},
                {"title": "Beacon", "url": f"{host_site.url}/beacon/source"},
            ]

    widget.goto()
    widget.open()
    widget.ask("How do I install docschat?")
    widget.wait_answers(1)
    widget.rewrite_answers(poison)
    answer = widget.wait_answers(1)
    if field == "html":
        expect(answer.locator(".bubble strong")).to_have_text("part")
        expect(answer.locator(".bubble")).to_contain_text("click six")
        expect(answer.get_by_role("link", name="click six")).to_have_count(0)  # no href left
    else:
        expect(answer.locator(".sources li").first).to_have_text(
            "<img src=x onerror=window.__xss=30>"
        )
        expect(answer.locator(".sources li a")).to_have_count(1)  # only the http(s) one links
    page.wait_for_timeout(300)
    assert_inert(widget, page, host_site)


# Markup the list allows, next to markup it does not (tags and attributes an older chat kept).
LISTED_AND_NOT = (
    "<p><strong>strong</strong> <b>bold</b> <sub>low</sub> <span>span</span> "
    '<a href="https://docs.example/x" title="Tip" target="_self">link</a></p>'
    '<table><tbody><tr><td align="right">cell</td></tr></tbody>'
    "<tfoot><tr><td>foot</td></tr></tfoot></table>"
    '<ol start="3"><li>third</li></ol>'
)
INLINED = re.compile(r'<script id="allowlist" type="application/json">(.*?)</script>')


def inline(listed: dict[str, Any]) -> str:
    """The chat page's data block carrying an allow-list."""
    return f'<script id="allowlist" type="application/json">{json.dumps(listed)}</script>'


def test_chat_builds_only_what_the_servers_allowlist_allows(
    widget: Widget, page: Page, stack: Stack
) -> None:
    # One list: the chat page as served carries the file the server's renderer reads.
    listed = json.loads(ALLOWLIST.read_text(encoding="utf-8"))
    inlined = INLINED.search(httpx.get(f"{stack.url}/widget/").text)
    assert inlined and json.loads(inlined[1]) == listed

    def rich(m: dict[str, Any]) -> None:
        m["html"] = LISTED_AND_NOT

    widget.goto()
    widget.open()
    widget.ask("How do I install docschat?")
    widget.wait_answers(1)
    widget.rewrite_answers(rich)
    bubble = widget.wait_answers(1).locator(".bubble")
    expect(bubble.locator("strong")).to_have_text("strong")
    expect(bubble.locator("td.al-right")).to_have_text("cell")
    expect(bubble.locator("a")).to_have_attribute("title", "Tip")
    expect(bubble.locator("a")).to_have_attribute("target", "_blank")
    for unlisted in ("b", "sub", "span", "tfoot", "ol[start]"):
        expect(bubble.locator(unlisted)).to_have_count(0)
    for text in ("bold", "low", "span", "foot", "third"):
        expect(bubble).to_contain_text(text)

    # Take `strong` and the links' `title` off the list the page carries: the chat drops them too.
    listed["tags"].remove("strong")
    listed["attributes"]["a"].remove("title")

    def shorter_list(route: Route) -> None:
        response = route.fetch()
        route.fulfill(
            response=response, body=INLINED.sub(lambda _: inline(listed), response.text())
        )

    page.route(f"{stack.url}/widget/", shorter_list)
    page.reload()
    bubble = widget.wait_answers(1).locator(".bubble")
    expect(bubble.locator("a")).to_have_attribute("href", "https://docs.example/x")
    expect(bubble.locator("a")).not_to_have_attribute("title", "Tip")
    expect(bubble.locator("strong")).to_have_count(0)
    expect(bubble).to_contain_text("strong bold low")
