"""Take the screenshots in docs/widget.md and docs/integrations.md:
`.venv/bin/python -m tests.widget.screenshots`."""

from __future__ import annotations

import html
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.widget.conftest import CHROMIUM, CHROMIUM_ARGS, HostSite, Stacks

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Install - Acme docs</title><style>
body{{margin:0;font:16px/1.6 system-ui,sans-serif;background:{bg};color:{fg}}}
header{{padding:14px 32px;border-bottom:1px solid {line};font-weight:700}}
main{{max-width:640px;padding:8px 32px}} code{{background:{code};padding:2px 5px;border-radius:4px}}
</style></head><body><header>Acme docs</header><main><h1>Installing Acme</h1>
<p>Install the package with <code>pip install docschat</code>, then run <code>docschat demo</code>
to start the local demo on port 8000.</p><p>The <code>DATABASE_URL</code> setting chooses the
database: SQLite by default, PostgreSQL for many processes.</p></main>
<script src="{proxy}/widget.js" data-title="Acme docs assistant" data-theme="{theme}"
 data-welcome="Hi! Ask me anything about Acme." data-info="{info}" async></script></body></html>"""
INFO = "Answers come from the Acme docs and may contain mistakes."
COLOURS = {
    "light": {"bg": "#ffffff", "fg": "#1f2328", "line": "#d0d7de", "code": "#eff1f3"},
    "dark": {"bg": "#0d1117", "fg": "#e6edf3", "line": "#30363d", "code": "#262c36"},
}


def main() -> None:
    """Open the widget on a docs-like page, ask two questions, save light and dark pictures,
    and one of the search list."""
    host = HostSite()
    stacks = Stacks(host, {"stack"})
    try:
        stack = stacks.get("stack")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for theme in ("light", "dark"):
                host.pages[f"/{theme}.html"] = PAGE.format(
                    proxy=stack.url, theme=theme, info=html.escape(INFO), **COLOURS[theme]
                )
                context = browser.new_context(
                    viewport={"width": 1000, "height": 760}, color_scheme=theme
                )
                page = context.new_page()
                page.goto(f"{host.url}/{theme}.html")
                page.locator("[data-docschat] button").click()
                chat = page.frame_locator("[data-docschat] iframe")
                box = chat.get_by_label("Your question")
                for n, question in enumerate(
                    ["How do I install it?", "Which database does DATABASE_URL choose?"]
                ):
                    box.fill(question)
                    box.press("Enter")
                    chat.locator(".msg.bot[data-status=done]").nth(n).wait_for()
                chat.locator(".msg.bot .fb").first.click()
                box.fill("Does it run on Windows?")
                page.wait_for_timeout(800)  # the search list may open as the question is typed
                if chat.get_by_role("listbox").is_visible():
                    box.press("Escape")
                page.mouse.move(0, 0)
                page.wait_for_timeout(300)
                page.screenshot(path=str(DOCS / f"widget-{theme}.png"))
                if theme == "light":
                    # Instant search: matching pages listed as the reader types.
                    box.fill("")
                    box.press_sequentially("which database", delay=40)
                    chat.get_by_role("option").first.wait_for()
                    box.press("ArrowDown")
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(DOCS / "widget-search.png"))
                context.close()
            browser.close()
    finally:
        stacks.close()
        host.stop()


if __name__ == "__main__":
    main()
