"""Fixtures of the scraper tests: a programmable static docs site served on loopback."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"

Handler = Callable[[dict[str, str]], tuple[int, dict[str, str], bytes]]


@dataclass
class Hit:
    """One request the site received."""

    path: str
    headers: dict[str, str]
    at: float
    status: int = 0
    sent: int = 0
    written: int = 0  # body bytes the server got onto the wire before the client hung up
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Site:
    """A loopback web server whose pages tests add, change and remove while it runs."""

    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(
        self, path: str, html: str | bytes, content_type: str = "text/html; charset=utf-8"
    ) -> None:
        """Serve a page with ETag and Last-Modified, answering 304 to matching conditions."""
        body = html.encode() if isinstance(html, str) else html
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'

        def handle(headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            validators = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
            if headers.get("if-none-match") == etag:
                return 304, validators, b""
            return 200, {"Content-Type": content_type, **validators}, body

        self.routes[path] = handle

    def raw(self, path: str, status: int, body: bytes = b"", **headers: str) -> None:
        """Serve a fixed response (no validators)."""
        fixed = {k.replace("_", "-"): v for k, v in headers.items()}
        self.routes[path] = lambda _h: (status, fixed, body)

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        """Redirect a path."""
        self.raw(path, status, Location=to)

    def sequence(self, path: str, *responses: tuple[int, dict[str, str], bytes]) -> None:
        """Answer with each response in turn, then keep repeating the last."""
        queue = list(responses)

        def handle(_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.routes[path] = handle

    def remove(self, path: str) -> None:
        """Make a path answer 404."""
        self.routes.pop(path, None)

    def requests(self, path: str | None = None) -> list[Hit]:
        """The requests received (for one path, if given)."""
        with self.lock:
            return [h for h in self.hits if path is None or h.path == path]

    def bytes_sent(self) -> int:
        """Body bytes the server sent."""
        with self.lock:
            return sum(h.sent for h in self.hits)

    def clear(self) -> None:
        """Forget the request log."""
        with self.lock:
            self.hits.clear()


def _handler_class(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            hit = Hit(self.path, headers, time.monotonic())
            route = site.routes.get(self.path)
            status, extra, body = route(headers) if route else (404, {}, b"not found")
            hit.status, hit.sent = status, len(body)
            with site.lock:
                site.hits.append(hit)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if status != 304:
                    # In pieces, so a client hanging up early shows in `written`.
                    for start in range(0, len(body), 65536):
                        self.wfile.write(body[start : start + 65536])
                        hit.written += len(body[start : start + 65536])
            finally:
                hit.done.set()

        def handle(self) -> None:
            # The crawler hangs up on oversized pages on purpose.
            with contextlib.suppress(ConnectionError):
                super().handle()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    """An empty site on a free loopback port."""
    served = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(served))
    server.daemon_threads = True
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


def fixture_html(name: str) -> str:
    """A fixture page in the style of one docs generator."""
    return (FIXTURES / f"{name}.html").read_text(encoding="utf-8")


def doc_page(title: str, body: str, links: list[str] | None = None) -> str:
    """A small docs page with navigation chrome around its article."""
    nav = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links or [])
    return (
        f"<!doctype html><html><head><title>{title} | Test docs</title></head><body>"
        f"<nav><ul>{nav}</ul></nav><main><article><h1>{title}</h1><p>{body}</p>"
        f"</article></main><footer>Copyright</footer></body></html>"
    )


def urlset(urls: list[str]) -> str:
    """A sitemap naming these URLs."""
    entries = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    )


def sitemap_index(urls: list[str]) -> str:
    """A sitemap index naming these sitemaps."""
    entries = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}'
        "</sitemapindex>"
    )


def build_docs_site(site: Site, *, huge_bytes: int = 300_000) -> list[str]:
    """A docs site with every trap the crawler must handle; returns the pages it should keep."""
    base = site.url
    site.raw(
        "/robots.txt",
        200,
        (
            f"User-agent: *\nDisallow: /docs/private/\n\nSitemap: {base}/sitemap_index.xml\n"
        ).encode(),
        Content_Type="text/plain",
    )
    site.raw(
        "/sitemap_index.xml",
        200,
        sitemap_index([f"{base}/sitemaps/pages.xml", f"{base}/sitemaps/more.xml.gz"]).encode(),
        Content_Type="application/xml",
    )
    site.raw(
        "/sitemaps/pages.xml",
        200,
        urlset(
            [
                f"{base}/docs/",
                f"{base}/docs/install.html",
                f"{base}/docs/deploying/",
                f"{base}/docs/old-install.html",
                f"{base}/docs/moved.html",
                f"{base}/docs/missing.html",
                f"{base}/docs/flaky.html",
                f"{base}/docs/manual.pdf",
                f"{base}/docs/huge.html",
                f"{base}/docs/loop-a.html",
                f"{base}/docs/private/secret.html",
                f"{base}/docs/empty.html",
                f"{base}/docs/install.html?utm_source=newsletter#configuration",
            ]
        ).encode(),
        Content_Type="application/xml",
    )
    site.raw(
        "/sitemaps/more.xml.gz",
        200,
        gzip.compress(urlset([f"{base}/docs/quick-start", f"{base}/blog/post.html"]).encode()),
        Content_Type="application/gzip",
    )
    site.page(
        "/docs/",
        doc_page(
            "Welcome",
            "Start with the install guide, then read about deploying.",
            ["install.html#configuration", "linked-only.html", "https://elsewhere.example/"],
        ),
    )
    site.page("/docs/install.html", fixture_html("sphinx"))
    site.page("/docs/deploying/", fixture_html("mkdocs"))
    site.page("/docs/quick-start", fixture_html("docusaurus"))
    site.page("/docs/linked-only.html", doc_page("Linked only", "Found through a link alone."))
    site.redirect("/docs/old-install.html", "/docs/install.html")
    site.redirect("/docs/moved.html", "/docs/new-home.html", 302)
    site.page("/docs/new-home.html", doc_page("New home", "This page moved here recently."))
    site.sequence(
        "/docs/flaky.html",
        (500, {}, b"oops"),
        (200, {"Content-Type": "text/html"}, doc_page("Flaky", "It works on a retry.").encode()),
    )
    site.raw("/docs/manual.pdf", 200, b"%PDF-1.4 binary", Content_Type="application/pdf")
    filler = "<p>" + "lorem ipsum " * 100 + "</p>"
    site.page("/docs/huge.html", doc_page("Huge", filler * (huge_bytes // len(filler) + 1)))
    site.redirect("/docs/loop-a.html", "/docs/loop-b.html")
    site.redirect("/docs/loop-b.html", "/docs/loop-a.html")
    site.page("/docs/private/secret.html", doc_page("Secret", "Nobody should read this text."))
    site.page("/docs/empty.html", "<html><head><title>Empty</title></head><body></body></html>")
    site.page("/blog/post.html", doc_page("Blog", "Not part of the docs at all."))
    return [
        f"{base}/docs/",
        f"{base}/docs/install.html",
        f"{base}/docs/deploying/",
        f"{base}/docs/quick-start",
        f"{base}/docs/linked-only.html",
        f"{base}/docs/new-home.html",
        f"{base}/docs/flaky.html",
    ]


@pytest.fixture
def docs_site(site: Site) -> tuple[Site, list[str]]:
    """The trap-laden docs site and the URLs a crawl should keep."""
    return site, build_docs_site(site)


def small_site(site: Site, count: int = 4) -> list[str]:
    """A plain site of `count` pages with a sitemap; returns their URLs."""
    paths = [f"/docs/page-{i}.html" for i in range(count)]
    site.raw("/robots.txt", 404)
    site.raw(
        "/sitemap.xml",
        200,
        urlset([site.url + "/docs/", *(site.url + p for p in paths)]).encode(),
        Content_Type="application/xml",
    )
    site.page("/docs/", doc_page("Home", "The home page of the small test documentation."))
    for i, path in enumerate(paths):
        site.page(path, doc_page(f"Page {i}", f"Page number {i} explains topic number {i}."))
    return [site.url + "/docs/", *(site.url + p for p in paths)]
