"""Crawl benchmark: `docschat scrape` beside the seed's sequential fetch-and-get_text baseline.

A generated 1,000-page docs site (Sphinx-like pages of ~15 KB, a sitemap, ETag and Last-Modified)
is served on loopback by a separate process that waits 50 ms before every response. Both crawlers
run in child processes, sampled for CPU time and peak memory. docschat then scrapes the unchanged
site again, and the site's own counters give the re-run's requests and bytes; the emulator's give
its uploads. A second copy of the site whose pages each link an image, a PDF and a download
without an extension (served as a PDF) is scraped twice too: the re-run's share of bytes with
linked binaries. The site counts the body bytes it got onto the wire, so a download the crawler
hangs up on counts what crossed before the hang-up.

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

from bench.common import write_results
from tests.support import ROOT, docschat, free_port, wait_http

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


IMAGE_BYTES = 60_000
PDF_BYTES = 300_000


def page_html(i: int, pages: int, binaries: bool = False) -> str:
    """One Sphinx-like page: sidebar navigation, three sections, code, a table (and binaries)."""
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
    if binaries:
        # As MkDocs themes link figures to their full size, and manuals link their PDF.
        table += (
            f'<p><a href="img/figure-{i}.png"><img src="img/figure-{i}.png" alt="Figure"></a> '
            f'<a href="files/topic-{i}.pdf">PDF</a> <a href="download/{i}">Download</a></p>'
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


def serve_site(port: int, pages: int, latency: float, binaries: bool = False) -> None:
    """Serve the generated site until killed (run in its own process)."""
    bodies: dict[str, bytes] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for i in range(pages):
        bodies[f"/docs/page-{i}.html"] = page_html(i, pages, binaries).encode()
        if binaries:
            files[f"/docs/img/figure-{i}.png"] = ("image/png", b"\x89PNG" * (IMAGE_BYTES // 4))
            pdf = b"%PDF" * (PDF_BYTES // 4)
            files[f"/docs/files/topic-{i}.pdf"] = ("application/pdf", pdf)
            files[f"/docs/download/{i}"] = ("application/pdf", pdf)
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
            time.sleep(latency)  # the simulated server's response time, the load under test
            if self.path == "/sitemap.xml":
                return self._send(200, sitemap, "application/xml")
            if self.path in files:
                content_type, data = files[self.path]
                return self._send(200, data, content_type)
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
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if etag:
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status == 304:
                return
            # In pieces, counting what got onto the wire: a client may hang up part way.
            for offset in range(0, len(body), 65536):
                piece = body[offset : offset + 65536]
                try:
                    self.wfile.write(piece)
                except OSError:
                    self.close_connection = True
                    return
                if count:
                    with lock:
                        counters["bytes"] += len(piece)

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
    parser.add_argument("--binaries", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_site(args.serve, args.pages, args.latency_ms / 1000, args.binaries)
        return
    if args.baseline:
        print(json.dumps(baseline(args.baseline)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="docschat-bench-crawl-"))
    site, site_url = _site(args, binaries=False)
    linking, linking_url = _site(args, binaries=True)
    emulator_port = free_port()
    emulator = docschat(
        ["emulator", "--port", str(emulator_port), "--latency-ms", "0"], {}, tmp / "emulator.log"
    )
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    try:
        wait_http(f"{site_url}/_stats", proc=site)
        wait_http(f"{linking_url}/_stats", proc=linking)
        wait_http(f"{emulator_url}/_emulator/stats", proc=emulator, log=tmp / "emulator.log")

        def env(database: str) -> dict[str, str]:
            return {
                "DATABASE_URL": f"sqlite:///{tmp / database}",
                "OPENAI_BASE_URL": f"{emulator_url}/v1",
                "OPENAI_API_KEY": "sk-bench",
                "DOCSCHAT_LOG_LEVEL": "WARNING",
            }

        print("baseline: sequential fetch + BeautifulSoup get_text ...", flush=True)
        _site_stats(site_url, "_reset")
        _code, cpu, rss = _child(
            [sys.executable, __file__, "--baseline", f"{site_url}/sitemap.xml"],
            {},
            tmp / "baseline.log",
        )
        base = json.loads((tmp / "baseline.log").read_text().strip().splitlines()[-1])
        base.update(cpu_s=cpu, peak_rss_mb=rss, **_site_stats(site_url, "_stats"))

        runs: dict[str, dict[str, Any]] = {}
        for name, url, database in (
            ("plain", site_url, "bench.db"),
            ("binaries", linking_url, "bench-binaries.db"),
        ):
            start_url = f"{url}/docs/index.html"
            for attempt in ("first", "again"):
                label = "first scrape" if attempt == "first" else "re-run on the unchanged site"
                print(f"docschat: {label} ({name}) ...", flush=True)
                before = _uploads(emulator_url)
                _site_stats(url, "_reset")
                run = _scrape(
                    start_url, env(database), tmp / f"{name}-{attempt}.log", args.concurrency
                )
                run.update(_site_stats(url, "_stats"))
                run["uploads"] = _uploads(emulator_url) - before
                runs[f"{name}-{attempt}"] = run
    finally:
        for process in (site, linking, emulator):
            process.terminate()
            process.wait()

    report(args, base, runs)


def _site(args: argparse.Namespace, *, binaries: bool) -> tuple[subprocess.Popen[bytes], str]:
    """Start a generated site in its own process; returns it and its URL."""
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port), "--pages", str(args.pages)]
    command += ["--latency-ms", str(args.latency_ms)] + (["--binaries"] if binaries else [])
    return subprocess.Popen(command, cwd=ROOT), f"http://127.0.0.1:{port}"


def _uploads(emulator_url: str) -> int:
    stats = httpx.get(f"{emulator_url}/_emulator/stats", timeout=10).json()["requests"]
    return int(stats.get("POST /v1/files", 0))


def report(args: argparse.Namespace, base: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
    """Compute the figures, check the goals and write the results."""
    first, again = runs["plain-first"], runs["plain-again"]
    s1 = first["summary"]
    base_rate = base["pages"] / base["seconds"]
    crawl_rate = s1["pages"] / s1["crawl_seconds"]
    total_rate = s1["pages"] / s1["seconds"]
    shares = {
        name: runs[f"{name}-again"]["bytes"] / runs[f"{name}-first"]["bytes"]
        if runs[f"{name}-first"]["bytes"]
        else 0.0
        for name in ("plain", "binaries")
    }
    rerun_uploads = again["uploads"] + runs["binaries-again"]["uploads"]

    def figures(run: dict[str, Any]) -> dict[str, Any]:
        summary = run["summary"]
        return {
            "pages": summary["pages"],
            "not_modified": summary["not_modified"],
            "skipped": summary["skipped"],
            "crawl_seconds": summary["crawl_seconds"],
            "seconds_with_store_and_upload": summary["seconds"],
            "cpu_s": run["cpu_s"],
            "peak_rss_mb": run["peak_rss_mb"],
            "requests": run["requests"],
            "bytes": run["bytes"],
            "uploads": run["uploads"],
        }

    met = (
        crawl_rate / base_rate >= 8
        and all(share < 0.05 for share in shares.values())
        and rerun_uploads == 0
    )
    data = {
        "site": {"pages": args.pages, "latency_ms": args.latency_ms},
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "baseline": base | {"pages_per_s": base_rate},
        "docschat": {name: figures(run) for name, run in runs.items()},
        "goals": {
            "speedup_vs_baseline": crawl_rate / base_rate,
            "speedup_goal": 8.0,
            "crawl_pages_per_s": crawl_rate,
            "end_to_end_pages_per_s": total_rate,
            "rerun_bytes_share": shares["plain"],
            "rerun_bytes_share_with_binaries": shares["binaries"],
            "rerun_bytes_goal": 0.05,
            "rerun_uploads": rerun_uploads,
            "met": met,
        },
    }
    names = {
        "plain-first": "docschat first scrape (crawl)",
        "plain-again": "docschat re-run, unchanged site",
        "binaries-first": "docschat first scrape, pages linking binaries (crawl)",
        "binaries-again": "docschat re-run, pages linking binaries",
    }
    rows = [
        ("baseline (sequential + get_text)", base["pages"], base["seconds"], base["cpu_s"],
         base["peak_rss_mb"], base["requests"], base["bytes"], "-"),
    ]  # fmt: skip
    for key, name in names.items():
        run = runs[key]
        summary = run["summary"]
        seconds = summary["crawl_seconds"] if key.endswith("first") else summary["seconds"]
        rows.append((name, summary["pages"], seconds, run["cpu_s"], run["peak_rss_mb"],
                     run["requests"], run["bytes"], run["uploads"]))  # fmt: skip
    table = [
        f"Crawl benchmark: {args.pages} pages, {args.latency_ms} ms per response, "
        f"docschat --concurrency {args.concurrency}, {os.cpu_count()} CPUs",
        "",
        "| run | pages | seconds | pages/s | CPU s | peak RSS MB | requests | bytes | uploads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, pages, secs, cpu, rss, reqs, size, ups in rows:
        table.append(
            f"| {name} | {pages} | {secs:.1f} | {pages / secs:.1f} | {cpu:.1f} | {rss:.0f} "
            f"| {reqs} | {size:,} | {ups} |"
        )
    table += [
        "",
        f"- speed-up over the baseline: **{crawl_rate / base_rate:.1f}x** (goal >= 8x); "
        f"end to end with storing and uploading: {total_rate:.1f} pages/s "
        f"({s1['seconds']:.1f} s)",
        f"- re-run downloads **{shares['plain']:.2%}** of the first run's bytes, "
        f"**{shares['binaries']:.2%}** when every page links an image, a PDF and a download "
        f"(goal < 5%), and uploads **{rerun_uploads}** files (goal 0); the first run with "
        "binaries counts the downloads without an extension whole: on loopback the socket "
        "buffers take a 300 KB body before the crawler's hang-up arrives",
        f"- goals met: {'yes' if met else 'NO'}",
    ]
    write_results("crawl", data, "\n".join(table))


if __name__ == "__main__":
    main()
