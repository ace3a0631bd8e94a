"""Browser fixtures for the widget: headless Chromium, a docs site on another origin, stacks."""

from __future__ import annotations

import html
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Frame,
    FrameLocator,
    Page,
    Route,
    sync_playwright,
)

from emulator.options import EmulatorOptions
from emulator.server import serve_in_thread
from tests.support import Stack, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
MESSAGES = re.compile(r"/api/sessions/[^/]+/messages(\?.*)?$")
LONG_PAGE = "<p>" + "Documentation text. " * 40 + "</p>"


class Recorder(BaseHTTPRequestHandler):
    """Serves the registered pages; records every other request (a beacon for leaks)."""

    site: HostSite

    def do_GET(self) -> None:
        body = self.site.pages.get(self.path.split("?")[0])
        if body is None:
            self.site.hits.append(self.path)
            self.send_response(404 if self.path != "/favicon.ico" else 204)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.site.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class HostSite:
    """A docs-like site on its own loopback origin whose pages carry the widget's script tag."""

    def __init__(self) -> None:
        handler = type("Handler", (Recorder,), {"site": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # The same server under another name is another site (and another origin).
        self.other_url = f"http://localhost:{self.port}"
        self.pages: dict[str, str] = {}
        self.hits: list[str] = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(
        self,
        proxy: str,
        path: str = "/index.html",
        body: str = "",
        site: str = "",
        csp: str = "",
        **data: str,
    ) -> str:
        """Register a page with the widget (data-* options as keywords); returns its URL."""
        attrs = "".join(
            f' data-{name.replace("_", "-")}="{html.escape(value)}"' for name, value in data.items()
        )
        title = path.strip("/").removesuffix(".html") or "index"
        # Hostile host CSS: none of it may reach the launcher or the chat. A page with a strict
        # CSP of its own has no inline style at all.
        head = (
            f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">'
            if csp
            else "<style>body{font:18px Georgia,serif;color:#333}"
            "button{background:red!important;color:yellow!important;font-size:40px!important}"
            "iframe{border:9px solid red!important}div{padding:13px}</style>"
        )
        self.pages[path] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{title}</title>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{head}</head>'
            f'<body><h1 id="heading">{title}</h1>'
            '<nav><a href="/index.html">Home</a> <a href="/install.html">Install</a></nav>'
            f'<label>Search <input id="search"></label>{body or LONG_PAGE}'
            f'<script src="{proxy}/widget.js"{attrs} async></script></body></html>'
        )
        return (site or self.url) + path

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def host_site() -> Iterator[HostSite]:
    """The docs site that embeds the widget, on an origin other than the proxy's."""
    site = HostSite()
    yield site
    site.stop()


# The stacks the widget tests use, by the name of their fixture.
STACKS: dict[str, dict[str, Any]] = {
    # Most tests: quick answers, still streamed in many small pieces.
    "stack": {"latency_ms": 150, "tokens_per_second": 120},
    # Streaming, Stop and restarts: slow enough to watch, 10 tokens per second.
    "slow_stack": {"latency_ms": 400, "tokens_per_second": 10},
    # Limits: one question per session per minute, one answer a day.
    "strict_stack": {
        "latency_ms": 1500,
        "DOCSCHAT_RATE_SESSION_MINUTE": "1",
        "DOCSCHAT_DAILY_ANSWERS": "1",
    },
}


class Stacks:
    """Live stacks (emulator + proxy process) for the session, started side by side."""

    def __init__(self, host: HostSite, names: set[str]) -> None:
        self.host = host
        self.tmp = Path(tempfile.mkdtemp(prefix="docschat-widget-"))
        self.running: list[tuple[Stack, Any]] = []
        self.lock = threading.Lock()
        self.setup_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=3)
        # Start every stack the selected tests need at once; tests wait only for their own.
        self.futures = {
            name: self.pool.submit(self.start, **STACKS[name]) for name in STACKS if name in names
        }

    def get(self, name: str) -> Stack:
        """A named stack of STACKS, started now unless it is on its way already."""
        if name not in self.futures:
            self.futures[name] = self.pool.submit(self.start, **STACKS[name])
        return self.futures[name].result()

    def start(self, latency_ms: int = 200, tokens_per_second: float = 40, **env: str) -> Stack:
        """An emulator and a proxy that lets both host-site origins embed the widget."""
        # Building an emulator (werkzeug compiles its routes) and running setup (imports and
        # migrations compile code) must not overlap in this process: CPython 3.11's compiler
        # state is shared between threads ("AST constructor recursion depth mismatch").
        with self.setup_lock:
            emulator = serve_in_thread(
                EmulatorOptions(latency_ms=latency_ms, tokens_per_second=tokens_per_second)
            )
        settings = {
            "DOCSCHAT_ALLOWED_ORIGINS": f"{self.host.url},{self.host.other_url}",
            "DOCSCHAT_MAX_QUESTION_CHARS": "500",
            "DOCSCHAT_MAX_QUEUED": "50",
            **env,
        }
        with self.lock:
            db = f"sqlite:///{self.tmp / f'widget{len(self.running)}.db'}"
            stack = Stack(self.tmp, db, emulator, settings)
            self.running.append((stack, emulator))
        with self.setup_lock:  # setup migrates and uploads in this process: one at a time
            stack.setup()
        return stack.start()

    def close(self) -> None:
        """Stop every stack and its emulator, side by side."""
        for future in self.futures.values():
            future.exception()  # wait for starts still under way

        def stop(pair: tuple[Stack, Any]) -> None:
            pair[0].close()
            pair[1].stop()

        list(self.pool.map(stop, self.running))
        self.pool.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def stacks(host_site: HostSite, request: pytest.FixtureRequest) -> Iterator[Stacks]:
    """The stacks of STACKS that the collected tests use; all stop at the end of the session."""
    wanted = {n for item in request.session.items for n in getattr(item, "fixturenames", ())}
    made = Stacks(host_site, set(STACKS) & wanted)
    yield made
    made.close()


@pytest.fixture(scope="session")
def stack(stacks: Stacks) -> Stack:
    """The stack most widget tests share."""
    return stacks.get("stack")


@pytest.fixture(scope="session")
def slow_stack(stacks: Stacks) -> Stack:
    """Answers streamed slowly enough to watch them grow and stop them."""
    return stacks.get("slow_stack")


@pytest.fixture(scope="session")
def strict_stack(stacks: Stacks) -> Stack:
    """One question per session per minute and one answer a day."""
    return stacks.get("strict_stack")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium (Debian's) per test module."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Records, in the chat frame, what a reader sees only in passing: every status an answer went
# through, the streaming text's length (and whether the cursor showed) and every banner.
PROBE = """
(() => {
  if (!location.pathname.startsWith('/widget/')) return;
  window.__statuses = [];
  window.__lengths = [];
  window.__banners = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.msg.bot[data-status]')) {
      let s = el.dataset.id + ':' + el.dataset.status;
      const shown = el.querySelector('.bubble').textContent.trim();
      if (el.dataset.status === 'pending') s += ':' + shown;
      if (window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
      if (el.dataset.status === 'streaming') {
        const n = el.querySelector('.bubble').textContent.length;
        const cursor = !!el.querySelector('.cursor');
        const last = window.__lengths[window.__lengths.length - 1];
        if (!last || last[0] !== n) window.__lengths.push([n, cursor]);
      }
    }
    const b = document.getElementById('banner');
    if (b && !b.hidden && window.__banners[window.__banners.length - 1] !== b.textContent) {
      window.__banners.push(b.textContent);
    }
  }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})();
"""


class Widget:
    """The host page with the widget, and the chat inside its iframe, as a reader uses them."""

    def __init__(self, page: Page, stack: Stack, host: HostSite) -> None:
        self.page = page
        self.stack = stack
        self.host = host

    def goto(self, **data: str) -> Widget:
        """Load a host page carrying the widget with the given data-* options."""
        path = data.pop("path", "/index.html")
        site = data.pop("site", "")
        csp = data.pop("csp", "")
        self.page.goto(self.host.page(self.stack.url, path, site=site, csp=csp, **data))
        self.launcher.wait_for()
        return self

    @property
    def launcher(self) -> Any:
        """The launcher button on the host page."""
        return self.page.locator("[data-docschat] button.l")

    @property
    def panel(self) -> Any:
        """The panel that holds the iframe."""
        return self.page.locator("[data-docschat] .p")

    @property
    def chat(self) -> FrameLocator:
        """The chat page inside the iframe."""
        return self.page.frame_locator("[data-docschat] iframe")

    @property
    def frame(self) -> Frame:
        """The chat page's frame, for evaluating script in it."""
        return wait_until(lambda: self.page.frame(url=re.compile(r"/widget/")), timeout=10)

    def open(self) -> Widget:
        """Click the launcher (unless the chat is open already) and wait for the question box."""
        if self.launcher.get_attribute("aria-expanded") == "true":
            self.input.wait_for()  # reopened by itself after navigation; focus stays put
            return self
        self.launcher.click()
        self.input.wait_for()
        wait_until(lambda: self.frame.evaluate("document.activeElement.id") == "input", 10)
        return self

    @property
    def input(self) -> Any:
        """The question box."""
        return self.chat.get_by_label("Your question")

    def ask(self, text: str) -> None:
        """Type a question and press Enter."""
        self.input.fill(text)
        self.input.press("Enter")

    def answers(self) -> Any:
        """The answer elements."""
        return self.chat.locator(".msg.bot[data-status]")

    def wait_answers(self, count: int, status: str = "done", timeout: float = 30) -> Any:
        """Wait until `count` answers have the status; returns the last one."""
        locator = self.chat.locator(f".msg.bot[data-status={status}]")
        wait_until(lambda: locator.count() >= count, timeout=timeout, every=0.1)
        return locator.nth(count - 1)

    def rewrite_answers(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Reload, with the list endpoint's answers changed as a richer or broken server would."""

        def handler(route: Route) -> None:
            if route.request.method != "GET":
                route.continue_()
                return
            response = route.fetch()
            data = response.json()
            for message in data["messages"]:
                if message["role"] == "assistant":
                    change(message)
            route.fulfill(response=response, json=data)

        self.page.route(MESSAGES, handler)
        self.page.reload()

    def session_id(self) -> str | None:
        """The session id the chat keeps in its storage."""
        return self.frame.evaluate(
            "Object.keys(localStorage).filter(k => k.startsWith('docschat:session:'))"
            ".map(k => localStorage.getItem(k))[0] || null"
        )

    def probe(self, name: str) -> Any:
        """A value recorded by the probe script in the chat frame."""
        return self.frame.evaluate(f"window.{name}")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (empty storage) with the probe script in every frame."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 800}, color_scheme="light")
    ctx.add_init_script(PROBE)
    yield ctx
    ctx.close()


@pytest.fixture
def problems() -> list[str]:
    """Script errors and CSP violations seen by a test's pages."""
    return []


@pytest.fixture
def page(context: BrowserContext, problems: list[str]) -> Iterator[Page]:
    """A tab that fails the test on any uncaught error, CSP violation or dialog."""
    tab = context.new_page()
    tab.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if "Content Security Policy" in msg.text or "Uncaught" in msg.text
            else None
        ),
    )
    tab.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    yield tab
    assert not problems, problems


@pytest.fixture
def make_widget(page: Page, host_site: HostSite) -> Callable[[Stack], Widget]:
    """A Widget helper for a stack (the shared one unless a test brings its own)."""
    return lambda stack: Widget(page, stack, host_site)


@pytest.fixture
def widget(make_widget: Callable[[Stack], Widget], stack: Stack) -> Widget:
    """The widget on the shared stack."""
    return make_widget(stack)
