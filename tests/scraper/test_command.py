"""`docschat scrape` and `docschat docs` as an operator runs them: clear output, clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.cli.main import parser
from proxy.config import Settings
from tests.scraper.conftest import Site, doc_page, small_site
from tests.support import ROOT, free_port


def docschat(tmp_path: Path, emulator: Any, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the real command line in a child process."""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_API_KEY": "sk-test",
        "DOCSCHAT_LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "proxy.cli", *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run(capsys, tmp_path: Path, emulator: Any, *argv: str, **overrides: str):
    """Run one command in this process (as `docschat` would); returns code, stdout, stderr."""
    args = parser().parse_args(list(argv))
    values = {
        "database_url": f"sqlite:///{tmp_path / 'cli.db'}",
        "openai_base_url": emulator.base_url,
        "openai_api_key": "sk-test",
        **overrides,
    }
    code = args.run(args, Settings.from_env({}, **values))
    out, err = capsys.readouterr()
    return code, out, err


def test_scrape_then_list_the_docs(tmp_path, emulator, site: Site, capsys):
    urls = small_site(site, 3)
    done = docschat(tmp_path, emulator, "scrape", site.url + "/docs/", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["pages"], summary["new"], summary["uploaded"]) == (4, 4, 4)
    listed = docschat(tmp_path, emulator, "docs", "--json")
    docs = json.loads(listed.stdout)
    assert sorted(d["url"] for d in docs) == sorted(urls)
    assert all(d["file_id"] and d["characters"] > 0 and d["updated"] for d in docs)

    code, out, _ = run(capsys, tmp_path, emulator, "scrape", site.url + "/docs/")
    assert code == 0
    assert "4 not modified" in out and "0 files uploaded" in out
    code, out, _ = run(capsys, tmp_path, emulator, "docs")
    assert code == 0 and "Page 2" in out and "4 documents, 4 uploaded" in out


def _bad_sites(site: Site, case: str) -> str:
    site.raw("/robots.txt", 404)
    if case == "robots":
        site.raw("/robots.txt", 200, b"User-agent: docschat\nDisallow: /\n")
        site.page("/docs/", doc_page("Home", "A page we are not allowed to read."))
        return site.url + "/docs/"
    if case == "not docs":
        site.raw("/api/", 200, b'{"ok": true}', Content_Type="application/json")
        return site.url + "/api/"
    if case == "sitemap":
        site.page("/docs/", doc_page("Home", "A page with a broken sitemap next to it."))
        site.raw("/sitemap.xml", 200, b"<?xml version='1.0'?><urlset><url><loc>x</url>")
        return site.url + "/docs/"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unreachable", "cannot reach"),
        ("robots", "robots.txt does not allow docschat"),
        ("not docs", "no documentation pages found"),
        ("sitemap", "malformed sitemap"),
        ("upstream", "upstream error"),
    ],
)
def test_bad_input_ends_with_one_clear_line(tmp_path, emulator, site: Site, capsys, case, message):
    env: dict[str, str] = {}
    if case == "unreachable":
        url = f"http://127.0.0.1:{free_port()}/docs/"
    elif case == "upstream":
        small_site(site, 1)
        url = site.url + "/docs/"
        env["openai_base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    else:
        url = _bad_sites(site, case)
    code, _, err = run(capsys, tmp_path, emulator, "scrape", url, **env)
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["http://x.test/", "--map-sitemap", "nonsense"], "FROM=TO"),
        (["http://x.test/", "--concurrency", "0"], "at least 1"),
        (["docs.example.com/guide"], "not an http(s) URL or a folder"),
        (["http://x.test/", "--base-url", "docs.example.com"], "not an http(s) URL"),
        (["http://x.test:port/"], "not an http(s) URL"),
    ],
)
def test_bad_flags_are_refused_by_the_parser(capsys, flags, message):
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["scrape", *flags])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_json_errors_are_json_too(tmp_path, emulator, capsys):
    url = f"http://127.0.0.1:{free_port()}/"
    code, out, _ = run(capsys, tmp_path, emulator, "scrape", url, "--json")
    assert code == 2
    assert "cannot reach" in json.loads(out)["error"]


def test_a_rerun_does_not_ask_again_for_what_was_not_a_page(tmp_path, emulator, site: Site, capsys):
    urls = small_site(site, 2)
    site.page("/docs/", doc_page("Home", "The home page links a report.", ["files/report"]))
    site.raw("/docs/files/report", 200, b"%PDF-1.7" * 5000, Content_Type="application/pdf")
    code, out, _ = run(capsys, tmp_path, emulator, "scrape", site.url + "/docs/", "--json")
    assert code == 0
    skipped = json.loads(out)["skipped_pages"]
    assert {"url": site.url + "/docs/files/report", "reason": "not HTML (application/pdf)"} in (
        skipped
    )
    site.clear()
    code, out, _ = run(capsys, tmp_path, emulator, "scrape", site.url + "/docs/", "--json")
    assert code == 0 and json.loads(out)["pages"] == len(urls)
    assert site.requests("/docs/files/report") == []
    assert site.requests("/docs/page-1.html")


@pytest.mark.parametrize(
    "args",
    [
        ["not-a-url"],
        ["ftp://docs.example.com/"],
        ["http://x.test/", "--max-pages", "0"],
        ["no/such/folder", "--base-url", "https://docs.example.com/"],
    ],
)
def test_bad_arguments_are_refused_before_any_write_or_upstream_call(tmp_path, emulator, args):
    done = docschat(tmp_path, emulator, "scrape", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: argument" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "cli.db").exists()
    assert not httpx.get(f"{emulator.url}/_emulator/stats").json()["requests"]


def test_a_refused_api_key_says_which_settings_to_check(tmp_path, emulator, refusing_upstream):
    done = docschat(
        tmp_path, emulator, "scrape", "http://x.test/docs/", OPENAI_BASE_URL=refusing_upstream
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "401" in lines[0], done.stderr
    assert "check OPENAI_API_KEY" in lines[0] and "OPENAI_BASE_URL" in lines[0]
