"""Take docs/demo.png, the demo answering on a docs page.

Run: `.venv/bin/python -m tests.widget.demo_screenshot`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support import free_port, wait_until
from tests.widget.conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [
    "How do I put the chat button on the left side of the page?",
    "Write me a short poem about cats.",
]


def main() -> None:
    """Run `docschat demo`, ask on its widget page, save the picture in docs/."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="docschat-shot-"))
    log = folder / "demo.log"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy.cli", "demo", "--port", str(port), "--emulator",
             "--database", f"sqlite:///{folder / 'demo.db'}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder, env=env,
        )  # fmt: skip
    try:
        wait_until(lambda: "ready on" in log.read_text(), timeout=60, every=0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(f"http://127.0.0.1:{port}/widget.html")
            page.locator("[data-docschat] button").click()
            chat = page.frame_locator("[data-docschat] iframe")
            box = chat.get_by_label("Your question")
            for n, question in enumerate(QUESTIONS):
                box.fill(question)
                box.press("Enter")
                chat.locator(".msg.bot[data-status=done]").nth(n).wait_for(timeout=30_000)
            page.mouse.move(0, 0)
            page.wait_for_timeout(300)
            page.screenshot(path=str(ROOT / "docs" / "demo.png"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
