"""`docschat demo`: the emulator, the bundled docs crawled and uploaded, the widget on :8000."""

from __future__ import annotations

import html
import re
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from flask import Flask, Response
from werkzeug.serving import make_server

from emulator.options import EmulatorOptions
from emulator.server import serve_in_thread
from proxy.answers.render import to_html
from proxy.config import Settings
from proxy.documents.scrape import scrape_site
from proxy.storage.db import Database
from proxy.web.app import create_app

# Package data: docs/ of the repository (linked here), so an installed wheel can run the demo.
DOCS = Path(str(resources.files("proxy") / "cli" / "demo_docs"))
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><nav><a href="./">docschat docs</a></nav>
<main><article>{body}</article></main></body></html>
"""
DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>docschat demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/demo.css"></head>
<body><header><strong>docschat</strong> demo</header>
<main><h1>Ask the docs</h1>
<p>This page stands in for your documentation site. The button in the corner opens the chat;
it answers from the {count} pages of docschat's own documentation, crawled from
<a href="{site}">{site}</a> a moment ago, with links to the pages it used.</p>
<ul>{links}</ul></main>
<script src="/widget.js" data-title="docschat assistant"
 data-welcome="Hi! Ask me anything about docschat." async></script>
</body></html>
"""
DEMO_CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1f2328}"
    "header{padding:12px 24px;border-bottom:1px solid #d0d7de}"
    "main{max-width:720px;margin:32px auto;padding:0 24px}a{color:#0969da}"
)


def build_site(target: Path) -> list[str]:
    """Render docs/*.md to HTML pages with a sitemap; returns the page names."""
    names: list[str] = []
    for source in sorted(DOCS.glob("*.md")):
        text = source.read_text(encoding="utf-8")
        match = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        title = match.group(1).strip() if match else source.stem
        name = f"{source.stem}.html"
        body = to_html(text)
        (target / name).write_text(PAGE.format(title=html.escape(title), body=body), "utf-8")
        names.append(name)
    links = "".join(f'<li><a href="{n}">{n}</a></li>' for n in names)
    # Served at "/" as well as /index.html; the sitemap names only "/", so it is crawled once.
    index = PAGE.format(title="docschat docs", body=f"<h1>docschat docs</h1><ul>{links}</ul>")
    (target / "index.html").write_text(index, "utf-8")
    return names


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_site(root: Path) -> tuple[str, ThreadingHTTPServer]:
    """Serve a folder on a free loopback port; writes its sitemap for that address."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    names = sorted("" if p.name == "index.html" else p.name for p in root.glob("*.html"))
    urls = "".join(f"<url><loc>{base}{name}</loc></url>" for name in names)
    (root / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
        "utf-8",
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return base, server


def add_demo_page(app: Flask, site: str, names: list[str]) -> None:
    """Show the widget on a docs-like page at the proxy's root."""
    links = "".join(f'<li><a href="{site}{n}">{html.escape(n)}</a></li>' for n in names)
    page = DEMO_PAGE.format(count=len(names), site=site, links=links)

    def index() -> Response:
        response = Response(page, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; frame-src 'self'; "
            "connect-src 'self'"
        )
        return response

    app.add_url_rule("/", "demo_index", index)
    app.add_url_rule("/demo.css", "demo_css", lambda: Response(DEMO_CSS, mimetype="text/css"))


def run_demo(host: str, port: int, database_url: str) -> int:
    """Run the whole product locally until interrupted."""
    began = time.monotonic()
    emulator = serve_in_thread(EmulatorOptions(latency_ms=800, tokens_per_second=60))
    settings = Settings.from_env(
        {},
        openai_base_url=emulator.base_url,
        openai_api_key="demo-key",
        database_url=database_url,
        allowed_origins=f"http://{host}:{port}",
    )
    root = Path(tempfile.mkdtemp(prefix="docschat-demo-"))
    names = build_site(root)
    site, _site_server = serve_site(root)
    db = Database(settings.database_url)
    db.upgrade()
    summary = scrape_site(site, settings, db)
    db.dispose()
    app = create_app(settings, with_worker=True)
    add_demo_page(app, site, names)
    # Werkzeug's server, not gunicorn: the demo is one person on loopback, and this process
    # also runs the emulator and the docs site in threads, which gunicorn's fork would not carry.
    server = make_server(host, port, app, threaded=True)
    took = time.monotonic() - began
    print(f"crawled {summary.get('pages', len(names))} pages from {site} in {took:.1f}s")
    print(f"docschat demo ready on http://{host}:{port}/  (Ctrl+C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["docschat"].close()
        emulator.stop()
    return 0
