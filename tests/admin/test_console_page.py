"""The console page in Chromium: sign-in, overview chart, gap groups, transcripts, filters,
resolve, export, and stored hostile input that stays text."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.admin.conftest import (
    COVERED,
    DISLIKE_COMMENT,
    FAILED,
    HOSTILE_COMMENT,
    HOSTILE_QUESTION,
    TOKEN,
    WEATHER,
    Seeded,
)
from tests.support import Stack, wait_until

BUDGET = 30 * 1024  # the console's script and style, gzipped


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield ctx
    ctx.close()


@pytest.fixture
def problems() -> list[str]:
    """Script errors, CSP violations and dialogs seen by a test's pages."""
    return []


@pytest.fixture
def page(context: BrowserContext, problems: list[str]) -> Iterator[Page]:
    """A tab that fails the test on a script error, a CSP violation or a dialog."""
    tab = context.new_page()
    tab.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(msg.text) if msg.type == "error" and "401" not in msg.text else None
        ),
    )
    tab.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    yield tab
    assert not problems, problems
    assert tab.evaluate("window.__pwned") is None


def sign_in(page: Page, stack: Stack, token: str = TOKEN) -> None:
    """Open the console and sign in with a token."""
    page.goto(f"{stack.url}/admin/")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_keeps_the_token_for_the_tab_only(
    console_stack: tuple[Stack, Seeded], page: Page, context: BrowserContext
) -> None:
    stack, _ = console_stack
    sign_in(page, stack, "not-the-token")
    expect(page.locator("#signin-error")).to_have_text("That token is not right.")
    expect(page.locator("#app")).to_be_hidden()
    sign_in(page, stack)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('docschat:admin-token')") == TOKEN
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
    page.reload()  # the same tab stays signed in
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    other = context.new_page()  # another tab has to sign in
    other.goto(f"{stack.url}/admin/")
    expect(other.get_by_label("Admin token")).to_be_visible()
    other.close()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_overview_draws_questions_per_day(console_stack: tuple[Stack, Seeded], page: Page) -> None:
    stack, _ = console_stack
    sign_in(page, stack)
    bars = page.locator("#chart svg rect.bar-day")
    expect(bars).to_have_count(30)
    today = bars.nth(29)
    asked = int(today.get_attribute("data-count"))
    assert asked >= 8
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(30)]
    assert heights[29] == max(heights) > 0 and heights[0] == 0
    expect(today.locator("title")).to_contain_text(f"{asked} questions")
    expect(page.locator("#cards")).to_contain_text("uncovered (no source)")
    expect(page.locator("#cards")).to_contain_text("answer time p95")
    expect(page.locator("#top-pages a").first).to_have_text("Installing")
    expect(page.locator("#retention")).to_have_text("90 days")


def test_gap_groups_open_into_questions_and_conversations(
    console_stack: tuple[Stack, Seeded], page: Page
) -> None:
    stack, _ = console_stack
    sign_in(page, stack)
    page.get_by_role("link", name="Coverage gaps").click()
    weather = page.locator(".group").filter(has_text="weather").first
    expect(weather.locator(".count")).to_have_text("3")
    expect(weather).to_contain_text("3 no source, 0 thumbs-down")
    weather.locator("summary").first.click()
    questions = weather.locator(".question")
    expect(questions).to_have_count(3)
    first = questions.filter(has_text=WEATHER[0])
    first.locator("summary").click()
    transcript = first.locator(".msg")
    expect(transcript).to_have_count(4)  # that conversation asked about bread too
    expect(transcript.nth(0)).to_contain_text(WEATHER[0])
    expect(transcript.nth(1)).to_contain_text("no source")
    disliked = page.locator(".group").filter(has_text=COVERED)
    disliked.locator("summary").first.click()
    expect(disliked.locator(".comment").first).to_have_text(f"Comment: {DISLIKE_COMMENT}")


def test_conversations_filters_and_transcript(
    console_stack: tuple[Stack, Seeded], page: Page
) -> None:
    stack, seeded = console_stack
    sign_in(page, stack)
    page.get_by_role("link", name="Conversations").click()
    rows = page.locator("#conv-list tr")
    expect(rows.first).to_be_visible()
    everything = rows.count()
    assert everything >= len(seeded.conversations)
    page.get_by_label("Failed").check()
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(FAILED)
    page.get_by_label("Failed").uncheck()
    page.get_by_label("Search").fill("forecast")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(WEATHER[1])
    page.get_by_label("Search").fill("")
    page.get_by_label("Thumbs-down").check()
    page.get_by_role("button", name="Apply").click()
    expect(rows.filter(has_text=HOSTILE_QUESTION)).to_have_count(1)
    expect(rows.filter(has_text=WEATHER[0])).to_have_count(0)
    rows.filter(has_text=COVERED).last.click()  # the seeded one: the oldest, listed last
    expect(page.get_by_role("heading", name="Conversation")).to_be_visible()
    cid = page.locator("#conv-id").text_content()
    assert cid and cid not in seeded.conversations.values()
    assert page.url.endswith(f"#conversation/{cid}")
    messages = page.locator("#transcript .msg")
    expect(messages).to_have_count(2)
    expect(messages.nth(1)).to_contain_text("thumbs down")
    expect(messages.nth(1)).to_contain_text(DISLIKE_COMMENT)
    expect(messages.nth(1).locator(".sources a").first).to_have_attribute(
        "href", "http://docs.test/install"
    )
    page.get_by_role("link", name="← Conversations").click()
    page.get_by_label("Thumbs-down").uncheck()
    page.get_by_label("From").fill("2099-01-01")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(0)
    expect(page.locator("#conv-count")).to_have_text("0 conversations")


def test_resolve_and_reopen_a_group(console_stack: tuple[Stack, Seeded], page: Page) -> None:
    stack, _ = console_stack
    sign_in(page, stack)
    page.get_by_role("link", name="Coverage gaps").click()
    group = page.locator(".group").filter(has_text="zebra migration")
    group.locator("summary").first.click()
    group.get_by_role("button", name="Mark resolved").click()
    expect(group).to_have_count(0)
    page.get_by_label("Show resolved").check()
    expect(group).to_have_class("group resolved")
    group.locator("summary").first.click()
    group.get_by_role("button", name="Reopen").click()
    page.get_by_label("Show resolved").uncheck()
    expect(group).to_have_count(1)
    expect(group).to_have_class("group")


def test_export_csv_and_markdown(console_stack: tuple[Stack, Seeded], page: Page) -> None:
    stack, _ = console_stack
    sign_in(page, stack)
    page.get_by_role("link", name="Coverage gaps").click()
    expect(page.locator(".group").first).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("button", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename == "docschat-gaps.csv"
    text = download.path().read_text(encoding="utf-8")
    assert text.startswith("group,label,question,reason")
    assert all(q in text for q in WEATHER)
    with page.expect_download() as info:
        page.get_by_role("button", name="Export Markdown").click()
    text = info.value.path().read_text(encoding="utf-8")
    assert text.startswith("## Documentation gaps") and "weather" in text


def test_hostile_stored_input_stays_text(
    console_stack: tuple[Stack, Seeded], page: Page, problems: list[str]
) -> None:
    stack, _ = console_stack
    sign_in(page, stack)
    page.get_by_role("link", name="Coverage gaps").click()
    group = page.locator(".group").filter(has_text="zebra migration")
    expect(group.locator(".label")).to_have_text(HOSTILE_QUESTION)
    group.locator("summary").first.click()
    expect(group.locator(".comment")).to_have_text(f"Comment: {HOSTILE_COMMENT}")
    group.locator(".question summary").click()
    expect(group.locator(".msg").first).to_contain_text(HOSTILE_QUESTION)
    # None of it became markup anywhere on the page.
    assert page.locator("#gap-list :is(img, script, b, svg)").count() == 0
    page.get_by_role("link", name="Conversations").click()
    expect(page.locator("#conv-list td.q").filter(has_text="zebra")).to_have_text(HOSTILE_QUESTION)
    assert page.locator("#conv-list :is(img, script, b, svg)").count() == 0
    # And the page refuses markup sinks outright (Trusted Types): a bug could not reintroduce one.
    refused = page.evaluate(
        "() => { try { document.body.insertAdjacentHTML('beforeend', '<i>x</i>'); return false; }"
        " catch (e) { return e instanceof TypeError; } }"
    )
    assert refused
    assert problems == [
        "This document requires 'TrustedHTML' assignment. The action has been blocked."
    ]
    problems.clear()


def test_console_files_fit_the_size_budget(console_stack: tuple[Stack, Seeded]) -> None:
    stack, _ = console_stack
    total = 0
    for name in ("console.js", "console.css"):
        r = httpx.get(f"{stack.url}/admin/{name}")
        assert r.status_code == 200
        total += len(gzip.compress(r.content, compresslevel=9))
    assert total <= BUDGET, total


def test_console_is_never_framed(
    console_stack: tuple[Stack, Seeded], page: Page, problems: list[str]
) -> None:
    stack, _ = console_stack
    page.set_content(f'<iframe id="f" src="{stack.url}/admin/"></iframe>')
    wait_until(lambda: problems, timeout=10)
    assert "frame-ancestors 'none'" in problems[0] and "blocked" in problems[0]
    problems.clear()
    expect(page.frame_locator("#f").locator("#token")).to_have_count(0)
