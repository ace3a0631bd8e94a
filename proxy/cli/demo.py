"""`docschat demo`: the bundled docs served with the widget on each page, crawled and uploaded,
answered by the built-in emulator (or OpenAI, when asked)."""

from __future__ import annotations

import html
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TextIO

from flask import Flask, Response, abort
from markdown_it import MarkdownIt
from werkzeug.serving import make_server

from emulator.options import EmulatorOptions
from emulator.server import serve_in_thread
from proxy.config import Settings
from proxy.documents.scrape import scrape_site
from proxy.storage.db import Database
from proxy.web.app import create_app

# Package data: docs/ of the repository (linked here), so an installed wheel can run the demo.
DOCS = Path(str(resources.files("proxy") / "cli" / "demo_docs"))
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-src 'self'; "
    "connect-src 'self'"
)
WIDGET = (
    '<script src="/widget.js" data-title="docschat assistant"'
    ' data-welcome="Hi! Ask me anything about docschat." async></script>'
)
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>{robots}
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/demo.css"></head>
<body><header><a href="/"><strong>docschat</strong> docs</a> <span>demo</span></header>
<main><article>{body}</article></main>
{widget}
</body></html>
"""
FRONT = """<h1>docschat docs</h1>
<p>This is the docschat demo: docschat's own documentation, served the way your docs site would
be, with the chat widget on every page. The button in the corner opens the chat; it answers from
the {count} pages below, crawled and uploaded a moment ago, with links to the pages it used.
Answers come from {upstream}.</p>
<ul>{links}</ul>"""
DEMO_CSS = (
    "body{font:16px/1.6 system-ui,sans-serif;margin:0;color:#1f2328}"
    "header{padding:12px 24px;border-bottom:1px solid #d0d7de}header a{color:inherit;"
    "text-decoration:none}header span{color:#59636e;margin-left:6px}"
    "main{max-width:760px;margin:24px auto;padding:0 24px}a{color:#0969da}"
    "pre{background:#f6f8fa;padding:12px;overflow:auto}code{font-size:90%}"
    "table{border-collapse:collapse;display:block;overflow:auto}"
    "td,th{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top}img{max-width:100%}"
)
# Our own docs, so images and tables render as on a docs site (raw HTML stays off all the same).
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_MD_LINK = re.compile(r'href="([\w.-]+)\.md(#[^"]*)?"')


_HEADING = re.compile(r"<h([1-6])>(.*?)</h\1>", re.S)


def _with_anchors(body: str) -> str:
    """Headings with GitHub-style ids, so a link to a section (#redis-optional) lands on it."""

    def anchored(m: re.Match[str]) -> str:
        words = html.unescape(re.sub(r"<[^>]+>", "", m.group(2))).lower()
        slug = re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", words).strip())
        return f'<h{m.group(1)} id="{html.escape(slug)}">{m.group(2)}</h{m.group(1)}>'

    return _HEADING.sub(anchored, body)


@dataclass(frozen=True)
class DocsSite:
    """The bundled docs rendered to HTML pages: name -> (title, page), and the front page."""

    pages: dict[str, tuple[str, str]]
    front: str


def build_site(upstream: str = "the built-in emulator") -> DocsSite:
    """Render docs/*.md to pages with the widget on each, and a front page listing them."""
    pages: dict[str, tuple[str, str]] = {}
    for source in sorted(DOCS.glob("*.md")):
        text = source.read_text(encoding="utf-8")
        match = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        title = match.group(1).strip() if match else source.stem
        # Links between the Markdown files lead to their pages here.
        body = _MD_LINK.sub(
            lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"',
            _with_anchors(_MARKDOWN.render(text)),
        )
        page = PAGE.format(title=html.escape(title), robots="", body=body, widget=WIDGET)
        pages[f"{source.stem}.html"] = (title, page)
    links = "".join(
        f'<li><a href="{name}">{html.escape(title)}</a></li>' for name, (title, _) in pages.items()
    )
    front_body = FRONT.format(count=len(pages), links=links, upstream=html.escape(upstream))
    # The front page only lists the docs: marked noindex, so the crawl uploads the pages alone.
    robots = '\n<meta name="robots" content="noindex">'
    front = PAGE.format(title="docschat docs", robots=robots, body=front_body, widget=WIDGET)
    return DocsSite(pages, front)


def add_docs_site(app: Flask, site: DocsSite, base: str) -> None:
    """Serve the docs pages (widget on each), their images and a sitemap from the proxy."""

    def html_page(text: str) -> Response:
        response = Response(text, mimetype="text/html")
        response.headers["Content-Security-Policy"] = CSP
        return response

    def page(name: str) -> Response:
        found = site.pages.get(f"{name}.html")
        if found is None:
            abort(404)
        return html_page(found[1])

    def image(name: str) -> Response:
        path = DOCS / f"{name}.png"
        if "/" in name or not path.is_file():
            abort(404)
        return Response(path.read_bytes(), mimetype="image/png")

    urls = "".join(f"<url><loc>{base}{name}</loc></url>" for name in site.pages)
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )
    app.add_url_rule("/", "demo_index", lambda: html_page(site.front))
    app.add_url_rule("/<name>.html", "demo_page", page)
    app.add_url_rule("/<name>.png", "demo_image", image)
    app.add_url_rule(
        "/sitemap.xml", "demo_sitemap", lambda: Response(sitemap, mimetype="application/xml")
    )
    app.add_url_rule("/demo.css", "demo_css", lambda: Response(DEMO_CSS, mimetype="text/css"))


def choose_upstream(use_openai: bool | None, env: Mapping[str, str], stdin: TextIO) -> bool:
    """Whether to answer with OpenAI: the flag when given; else, with OPENAI_API_KEY set, ask
    on a terminal (never when stdin is not one: the emulator, and a hint)."""
    if use_openai is not None:
        return use_openai
    if not env.get("OPENAI_API_KEY"):
        return False
    if not stdin.isatty():
        print("OPENAI_API_KEY is set: run `docschat demo --openai` to answer with OpenAI.")
        return False
    print("OPENAI_API_KEY is set. Answer with OpenAI instead of the emulator? [y/N] ", end="")
    sys.stdout.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def run_demo(host: str, port: int, database_url: str, use_openai: bool | None = None) -> int:
    """Run the whole product locally until interrupted."""
    began = time.monotonic()
    openai = choose_upstream(use_openai, os.environ, sys.stdin)
    emulator = None
    if openai:
        upstream = "OpenAI (the Responses API)"
        settings = Settings.from_env(
            dict(os.environ),
            database_url=database_url,
            allowed_origins=f"http://{host}:{port}",
            api="responses",
        )
    else:
        upstream = "the built-in emulator"
        emulator = serve_in_thread(EmulatorOptions(latency_ms=800, tokens_per_second=60))
        settings = Settings.from_env(
            {},
            openai_base_url=emulator.base_url,
            openai_api_key="demo-key",
            database_url=database_url,
            allowed_origins=f"http://{host}:{port}",
        )
    print(f"answering with {upstream}", flush=True)
    site = build_site(upstream)
    db = Database(settings.database_url)
    db.upgrade()
    db.dispose()
    app = create_app(settings, with_worker=True)
    # The docs are crawled from the proxy itself, so citations lead to pages with the widget.
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{local}:{port}/"
    add_docs_site(app, site, base)
    # Werkzeug's server, not gunicorn: the demo is one person on loopback, and this process
    # also runs the emulator in a thread, which gunicorn's fork would not carry.
    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        db = Database(settings.database_url)
        summary = scrape_site(base, settings, db)
        db.dispose()
        took = time.monotonic() - began
        print(f"crawled {summary.get('pages', len(site.pages))} pages from {base} in {took:.1f}s")
        print(f"docschat demo ready on http://{host}:{port}/  (Ctrl+C stops it)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        app.extensions["docschat"].close()
        if emulator is not None:
            emulator.stop()
    return 0
