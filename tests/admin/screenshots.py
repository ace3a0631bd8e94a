"""The console screenshots in docs/operating.md: `.venv/bin/python -m tests.admin.screenshots`."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlalchemy import select

from proxy.storage.db import Database
from proxy.storage.models import ChatSession, Message
from tests.admin.conftest import CHROMIUM, CHROMIUM_ARGS, TOKEN, WEATHER, seed
from tests.security.conftest import launch, shutdown
from tests.support import Stack

DOCS = Path(__file__).resolve().parents[2] / "docs"


EXTRA = [
    "How do I install docschat?",
    "Which database should I use?",
    "Can I use PostgreSQL?",
    "How do I start the demo?",
    "What port does the demo use?",
    "Is there a dark mode for the widget?",
    "How do I set up single sign-on?",
    "Does it work with Confluence?",
]


def spread(stack: Stack) -> None:
    """Ask more questions and move their conversations back over the month, so the chart
    shows a month of use rather than one busy day."""
    for i in range(24):
        sid = stack.new_session()
        stack.ask(sid, EXTRA[i % len(EXTRA)])
        stack.answers(sid)
        db = Database(stack.db_url)
        try:
            with db.session() as s:
                back = timedelta(days=(i * 7) % 29 + 1, hours=i % 5)
                for m in s.scalars(select(Message).where(Message.session_id == sid)):
                    m.created_at -= back
                    m.updated_at -= back
                s.get(ChatSession, sid).created_at -= back
        finally:
            db.dispose()


def main() -> None:
    """Seed a stack with readers' questions, sign in to the console and save three pictures."""
    tmp = Path(tempfile.mkdtemp(prefix="docschat-console-shots-"))
    env = {
        "DOCSCHAT_ADMIN_TOKEN": TOKEN,
        "DOCSCHAT_RETENTION_DAYS": "90",
        "DOCSCHAT_HANDOFF_URL": "https://support.example.com/new?subject={question}",
    }
    stack = launch(tmp, f"sqlite:///{tmp / 'shots.db'}", env)
    try:
        seed(stack, hostile=False)
        spread(stack)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.goto(f"{stack.url}/admin/")
            page.get_by_label("Admin token").fill(TOKEN)
            page.get_by_role("button", name="Sign in").click()
            page.locator("#chart rect").last.wait_for()
            page.screenshot(path=str(DOCS / "console-overview.png"))

            page.get_by_role("link", name="Coverage gaps").click()
            group = page.locator(".group").filter(has_text="weather").first
            group.locator("summary").first.click()
            question = group.locator(".question").filter(has_text=WEATHER[0])
            question.locator("summary").click()
            question.locator(".msg").first.wait_for()
            page.screenshot(path=str(DOCS / "console-gaps.png"))

            page.get_by_role("link", name="Conversations").click()
            page.get_by_label("Thumbs-down").check()
            page.get_by_role("button", name="Apply").click()
            page.locator("#conv-list tr").first.click()
            page.locator("#transcript .msg").first.wait_for()
            page.screenshot(path=str(DOCS / "console-conversation.png"))
            browser.close()
    finally:
        shutdown(stack)


if __name__ == "__main__":
    main()
