"""Hand-off: the widget offers "Contact support" under an answer without a source and after a
thumbs-down, and the console counts how often it was offered and followed."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.admin.conftest import ADMIN, HANDOFF, Seeded
from tests.support import Stack, wait_until


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """The chat page opened on its own, as a reader's tab."""
    ctx = browser.new_context(viewport={"width": 900, "height": 800})
    tab = ctx.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    ctx.close()
    assert not errors, errors


def test_contact_support_is_offered_counted_and_followed(
    console_stack: tuple[Stack, Seeded], page: Page
) -> None:
    stack, _ = console_stack
    counts = lambda: stack.http.get("/api/admin/overview", headers=ADMIN).json()["handoff"]  # noqa: E731
    before = counts()
    opened: list[str] = []

    def support(route: Route) -> None:
        opened.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>Support</p>")

    page.context.route("https://support.example.com/**", support)
    page.goto(f"{stack.url}/widget/")
    box = page.get_by_label("Your question")
    question = "Where can I rent a canoe & paddle?"
    box.fill(question)
    box.press("Enter")
    answer = page.locator(".msg.bot[data-status=done]").first
    link = answer.get_by_role("link", name="Contact support")
    expect(link).to_be_visible(timeout=30_000)
    expected = HANDOFF.replace("{question}", quote(question, safe="-_.!~*'()"))
    assert link.get_attribute("href") == expected
    wait_until(lambda: counts()["offered"] == before["offered"] + 1, timeout=10)

    # An answer with a source offers nothing, until the reader dislikes it.
    box.fill("How do I install docschat?")
    box.press("Enter")
    covered = page.locator(".msg.bot[data-status=done]").nth(1)
    expect(covered.locator(".sources")).to_be_visible(timeout=30_000)
    expect(covered.get_by_role("link", name="Contact support")).to_have_count(0)
    covered.get_by_role("button", name="Not helpful").click()
    expect(covered.get_by_role("link", name="Contact support")).to_be_visible()
    wait_until(lambda: counts()["offered"] == before["offered"] + 2, timeout=10)

    with page.context.expect_page() as tab:
        link.click()
    tab.value.wait_for_load_state()
    assert opened == [expected]
    wait_until(lambda: counts() == {"offered": before["offered"] + 2,
                                    "followed": before["followed"] + 1}, timeout=10)  # fmt: skip
