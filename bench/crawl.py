"""Crawl benchmark: `docschat scrape` beside the seed's sequential fetch-and-get_text baseline.

A generated 1,000-page docs site (Sphinx-like pages of ~15 KB, a sitemap, ETag and Last-Modified)
is served on loopback by a separate process that waits 50 ms before every response. Both crawlers
run in child processes, sampled for CPU time and peak memory. docschat then scrapes the unchanged
site again, and the site's own counters give the re-run's requests and bytes; the emulator's give
its uploads.

    python bench/crawl.py [--pages 1000] [--latency-ms 50] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, start, wait_http, write_results

WORDS = [
    "widget",
    "configure",
    "deploy",
    "cluster",
    "token",
    "request",
    "answer",
    "index",
    "cache",
    "render",
    "template",
    "option",
    "server",
    "client",
    "release",
    "upgrade",
    "plugin",
    "schema",
    "migrate",
    "backup",
    "restore",
    "metric",
    "alert",
    "limit",
]


# --- the generated site ---------------------------------------------------------------------


def page_html(i: int, pages: int) -> str:
    """One Sphinx-like page: sidebar navigation, three sections, code, a table."""
    nav = "".join(
        f'<li class="toctree-l1"><a href="page-{j}.html">Topic {j}</a></li>'
        for j in range(max(0, i - 20), min(pages, i + 20))
    )

    def para(seed: int) -> str:
        words = [WORDS[(seed * 7 + k * 3) % len(WORDS)] for k in range(90)]
        return "<p>" + " ".join(words).capitalize() + f" (see page {seed}).</p>"

    sections = "".join(
        f'<section id="part-{s}"><h2>Part {s} of topic {i}'
        f'<a class="headerlink" href="#part-{s}">¶</a></h2>{para(i + s)}{para(i * 3 + s)}'
        f'<div class="highlight-python notranslate"><div class="highlight"><pre>'
        f"<span>import</span> docs\ndocs.topic({i}, part={s})\n</pre></div></div></section>"
        for s in range(3)
    )
    table = (
        "<table><thead><tr><th>Option</th><th>Default</th></tr></thead><tbody>"
        + "".join(f"<tr><td><code>opt_{k}</code></td><td>{k * i}</td></tr>" for k in range(6))
        + "</tbody></table>"
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Topic {i} - Bench docs</title>'
        '<link rel="stylesheet" href="_static/style.css"><script src="_static/app.js"></script>'
        "</head><body>"
        f'<div class="related" role="navigation"><a href="index.html">Bench docs</a></div>'
        '<div class="document"><div class="body" role="main">'
        f'<section id="topic-{i}"><h1>Topic {i}<a class="headerlink" href="#topic-{i}">¶</a></h1>'
        f"{para(i)}{sections}{table}</section></div>"
        f'<div class="sphinxsidebar" role="navigation"><ul>{nav}</ul></div></div>'
        '<div class="footer">Bench docs, generated.</div></body></html>'
    )


def serve_site(port: int, pages: int, latency: float) -> None:
    """Serve the generated site until killed (run in its own process)."""
    bodies: dict[str, bytes] = {}
    for i in range(pages):
        bodies[f"/docs/page-{i}.html"] = page_html(i, pages).encode()
    links = "".join(f'<li><a href="page-{i}.html">Topic {i}</a></li>' for i in range(pages))
    bodies["/docs/index.html"] = (
        "<!DOCTYPE html><html><head><title>Bench docs</title></head><body><main><h1>Bench docs"
        f"</h1><p>A generated site of {pages} pages for the crawl benchmark.</p><ul>{links}</ul>"
        "</main></body></html>"
    ).encode()
    base = f"http://127.0.0.1:{port}"
    locs = "".join(f"<url><loc>{base}{path}</loc></url>" for path in bodies)
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
    ).encode()
    etags = {p: '"' + hashlib.sha1(b).hexdigest()[:20] + '"' for p, b in bodies.items()}
    counters = {"requests": 0, "bytes": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/_stats":
                return self._send(200, json.dumps(counters).encode(), count=False)
            if self.path == "/_reset":
                with lock:
                    counters.update(requests=0, bytes=0)
                return self._send(200, b"{}", count=False)
            time.sleep(latency)
            if self.path == "/sitemap.xml":
                return self._send(200, sitemap, "application/xml")
            body = bodies.get(self.path)
            if body is None:
                return self._send(404, b"not found")
            etag = etags[self.path]
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", etag=etag)
            return self._send(200, body, "text/html; charset=utf-8", etag=etag)

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "text/plain",
            etag: str = "",
            count: bool = True,
        ) -> None:
            if count:
                with lock:
                    counters["requests"] += 1
                    counters["bytes"] += len(body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if etag:
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    server.serve_forever()


# --- the baseline ---------------------------------------------------------------------------


def baseline(sitemap_url: str) -> dict[str, Any]:
    """The seed's way: fetch each sitemap URL in turn and keep BeautifulSoup's get_text()."""
    import re

    from bs4 import BeautifulSoup

    began = time.monotonic()
    chars = pages = 0
    with httpx.Client(timeout=30) as client:
        urls = re.findall(r"<loc>(.*?)</loc>", client.get(sitemap_url).text)
        for url in urls:
            response = client.get(url)
            if response.status_code != 200:
                continue
            text = BeautifulSoup(response.text, "lxml").get_text()
            chars += len(text)
            pages += 1
    return {"pages": pages, "seconds": time.monotonic() - began, "chars": chars}


# --- the run --------------------------------------------------------------------------------


def _site_stats(url: str, path: str) -> dict[str, int]:
    return httpx.get(f"{url}/{path}", timeout=10).json()


def _child(args: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float]:
    """Run a child process to its end; returns exit code, CPU seconds and peak RSS in MB.

    wait4's resource usage is exact, and it counts the child's own reaped children too.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _scrape(url: str, env: dict[str, str], log: Path, concurrency: int) -> dict[str, Any]:
    """One `docschat scrape --json` run, sampled."""
    command = [sys.executable, "-m", "proxy.cli", "scrape", url, "--json"]
    code, cpu, rss = _child([*command, "--concurrency", str(concurrency)], env, log)
    text = log.read_text()
    if code != 0:
        raise SystemExit(f"docschat scrape failed ({code}):\n{text[-2000:]}")
    summary = json.loads(text[text.index("{") :])
    return {"summary": summary, "cpu_s": cpu, "peak_rss_mb": rss}


def main() -> None:
    """Run the benchmark and write bench/results/crawl.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_site(args.serve, args.pages, args.latency_ms / 1000)
        return
    if args.baseline:
        print(json.dumps(baseline(args.baseline)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="docschat-bench-crawl-"))
    port = free_port()
    site_url = f"http://127.0.0.1:{port}"
    site = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(port),
            "--pages",
            str(args.pages),
            "--latency-ms",
            str(args.latency_ms),
        ],
        cwd=ROOT,
    )
    emulator_port = free_port()
    emulator = start(
        ["emulator", "--port", str(emulator_port), "--latency-ms", "0"], {}, tmp / "emulator.log"
    )
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    try:
        wait_http(f"{site_url}/_stats")
        wait_http(f"{emulator_url}/_emulator/stats")
        env = {
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "OPENAI_BASE_URL": f"{emulator_url}/v1",
            "OPENAI_API_KEY": "sk-bench",
            "DOCSCHAT_LOG_LEVEL": "WARNING",
        }
        start_url = f"{site_url}/docs/index.html"

        print("baseline: sequential fetch + BeautifulSoup get_text ...", flush=True)
        _site_stats(site_url, "_reset")
        _code, cpu, rss = _child(
            [sys.executable, __file__, "--baseline", f"{site_url}/sitemap.xml"],
            {},
            tmp / "baseline.log",
        )
        base = json.loads((tmp / "baseline.log").read_text().strip().splitlines()[-1])
        base.update(cpu_s=cpu, peak_rss_mb=rss, **_site_stats(site_url, "_stats"))

        print("docschat: first scrape ...", flush=True)
        _site_stats(site_url, "_reset")
        first = _scrape(start_url, env, tmp / "first.log", args.concurrency)
        first.update(_site_stats(site_url, "_stats"))
        uploads_first = _uploads(emulator_url)

        print("docschat: re-run on the unchanged site ...", flush=True)
        _site_stats(site_url, "_reset")
        again = _scrape(start_url, env, tmp / "again.log", args.concurrency)
        again.update(_site_stats(site_url, "_stats"))
        uploads_again = _uploads(emulator_url) - uploads_first
    finally:
        site.terminate()
        emulator.terminate()
        site.wait()
        emulator.wait()

    report(args, base, first, again, uploads_first, uploads_again)


def _uploads(emulator_url: str) -> int:
    stats = httpx.get(f"{emulator_url}/_emulator/stats", timeout=10).json()["requests"]
    return int(stats.get("POST /v1/files", 0))


def report(
    args: argparse.Namespace,
    base: dict[str, Any],
    first: dict[str, Any],
    again: dict[str, Any],
    uploads_first: int,
    uploads_again: int,
) -> None:
    """Compute the figures, check the goals and write the results."""
    s1, s2 = first["summary"], again["summary"]
    base_rate = base["pages"] / base["seconds"]
    crawl_rate = s1["pages"] / s1["crawl_seconds"]
    total_rate = s1["pages"] / s1["seconds"]
    rerun_share = again["bytes"] / first["bytes"] if first["bytes"] else 0.0
    data = {
        "site": {"pages": args.pages, "latency_ms": args.latency_ms},
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "baseline": base | {"pages_per_s": base_rate},
        "docschat_first": {
            "pages": s1["pages"],
            "crawl_seconds": s1["crawl_seconds"],
            "seconds_with_store_and_upload": s1["seconds"],
            "crawl_pages_per_s": crawl_rate,
            "end_to_end_pages_per_s": total_rate,
            "cpu_s": first["cpu_s"],
            "peak_rss_mb": first["peak_rss_mb"],
            "requests": first["requests"],
            "bytes": first["bytes"],
            "uploads": uploads_first,
        },
        "docschat_rerun": {
            "pages": s2["pages"],
            "not_modified": s2["not_modified"],
            "seconds": s2["seconds"],
            "cpu_s": again["cpu_s"],
            "peak_rss_mb": again["peak_rss_mb"],
            "requests": again["requests"],
            "bytes": again["bytes"],
            "uploads": uploads_again,
        },
        "goals": {
            "speedup_vs_baseline": crawl_rate / base_rate,
            "speedup_goal": 8.0,
            "rerun_bytes_share": rerun_share,
            "rerun_bytes_goal": 0.05,
            "rerun_uploads": uploads_again,
            "met": crawl_rate / base_rate >= 8 and rerun_share < 0.05 and uploads_again == 0,
        },
    }
    rows = [
        ("baseline (sequential + get_text)", base["pages"], base["seconds"], base_rate,
         base["cpu_s"], base["peak_rss_mb"], base["requests"], base["bytes"], "-"),
        ("docschat first scrape (crawl)", s1["pages"], s1["crawl_seconds"], crawl_rate,
         first["cpu_s"], first["peak_rss_mb"], first["requests"], first["bytes"], uploads_first),
        ("docschat re-run, unchanged site", s2["pages"], s2["seconds"], s2["pages"] / s2["seconds"],
         again["cpu_s"], again["peak_rss_mb"], again["requests"], again["bytes"], uploads_again),
    ]  # fmt: skip
    table = [
        f"Crawl benchmark: {args.pages} pages, {args.latency_ms} ms per response, "
        f"docschat --concurrency {args.concurrency}, {os.cpu_count()} CPUs",
        "",
        "| run | pages | seconds | pages/s | CPU s | peak RSS MB | requests | bytes | uploads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, pages, secs, rate, cpu, rss, reqs, size, ups in rows:
        table.append(
            f"| {name} | {pages} | {secs:.1f} | {rate:.1f} | {cpu:.1f} | {rss:.0f} | {reqs} "
            f"| {size:,} | {ups} |"
        )
    goals = data["goals"]
    table += [
        "",
        f"- speed-up over the baseline: **{goals['speedup_vs_baseline']:.1f}x** (goal >= 8x); "
        f"end to end with storing and uploading: {total_rate:.1f} pages/s "
        f"({s1['seconds']:.1f} s)",
        f"- re-run downloads **{rerun_share:.2%}** of the first run's bytes (goal < 5%) and "
        f"uploads **{uploads_again}** files (goal 0)",
        f"- goals met: {'yes' if goals['met'] else 'NO'}",
    ]
    write_results("crawl", data, "\n".join(table))


if __name__ == "__main__":
    main()
