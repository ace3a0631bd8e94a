"""Section deep links: a cited page's source links to the section its retrieved text came from,
for crawled sites and local folders, in both upstream modes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.cli.main import parser
from proxy.config import Settings
from scraper.sections import add_anchors, headings, slug
from tests.scraper.conftest import Site
from tests.support import Live, live_env

CONFIG_HTML = """<!doctype html><html><head><title>Configuration | Test docs</title></head>
<body><nav><a href="/docs/">Home</a></nav><main><article>
<h1 id="configuration">Configuration</h1>
<p>Every setting of the product lives in one file that the server reads at start.</p>
<h2 id="site_name">site_name<a class="headerlink" href="#site_name">#</a></h2>
<p>The site_name option sets the title shown in the widget header and in the browser tab.</p>
<h2 id="database-url">Database URL</h2>
<p>The storage connection string chooses PostgreSQL or a SQLite file for the pages.</p>
</article></main></body></html>"""

CONFIG_MD = """---
title: Configuration
---
# Configuration

Every setting of the product lives in one file that the server reads at start.

## site_name

The site_name option sets the title shown in the widget header and in the browser tab.

## Database URL

The storage connection string chooses PostgreSQL or a SQLite file for the pages.

```bash
## not a heading
```

## Database URL

A second section with the same heading, about connection pools and their timeouts.
"""

QUESTION = "What does the site_name option set in the widget header?"


@pytest.fixture
def ask(tmp_path: Path, emulator) -> Iterator:
    """Scrape a source into a fresh database, then ask one question through docschat's worker;
    returns the finished answer."""
    lives: list[Live] = []

    def run(api: str, *scrape_args: str) -> dict:
        env = live_env(f"sqlite:///{tmp_path / f'{api}.db'}", emulator, DOCSCHAT_API=api)
        args = parser().parse_args(["scrape", *scrape_args])
        assert args.run(args, Settings.from_env(env)) == 0
        live = Live(env, emulator)
        lives.append(live)
        sid = live.chat.create_session()
        live.chat.ask(sid, QUESTION)
        [answer] = live.answers(sid)
        assert answer["status"] == "done", answer
        return answer

    yield run
    for live in lives:
        live.close()


@pytest.mark.parametrize("api", ["assistants", "responses"])
def test_a_crawled_page_is_cited_at_its_section(ask, site: Site, api: str):
    site.raw("/robots.txt", 404)
    site.page("/docs/config/", CONFIG_HTML)
    answer = ask(api, site.url + "/docs/config/", "--max-pages", "1")
    url = site.url + "/docs/config/#site_name"
    assert {"title": "Configuration", "url": url, "section": "site_name"} in answer["sources"]
    # The numbered link in the answer goes to the section too.
    assert f'href="{url}"' in answer["html"]


@pytest.mark.parametrize("api", ["assistants", "responses"])
def test_a_folder_page_is_cited_at_its_generated_anchor(ask, tmp_path: Path, api: str):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "config.md").write_text(CONFIG_MD, encoding="utf-8")
    (docs / "index.md").write_text("# Home\n\nThe start page of the test docs.\n")
    base = "https://docs.example.com/product/"
    answer = ask(api, str(docs), "--base-url", base)
    wanted = {"title": "Configuration", "url": base + "config/#site_name", "section": "site_name"}
    assert wanted in answer["sources"]


def test_a_page_nobody_can_place_links_to_the_page(ask, site: Site):
    # Without headings there is no section to name: the source is the page itself.
    site.raw("/robots.txt", 404)
    site.page(
        "/docs/plain/",
        "<html><body><main><h1>Plain</h1><p>The site_name option sets the title shown in the "
        "widget header.</p></main></body></html>",
    )
    answer = ask("responses", site.url + "/docs/plain/", "--max-pages", "1")
    assert answer["sources"] == [{"title": "Plain", "url": site.url + "/docs/plain/"}]


def test_markdown_headings_get_the_slugs_generators_make():
    text = add_anchors(CONFIG_MD.split("---\n", 2)[2])
    found = [(h.level, h.title, h.anchor) for h in headings(text)]
    assert found == [
        (1, "Configuration", "configuration"),
        (2, "site_name", "site_name"),
        (2, "Database URL", "database-url"),
        (2, "Database URL", "database-url-1"),
    ]
    assert "## not a heading\n" in text  # code blocks keep their lines as they are
    assert slug("What's new in `v2.0`?") == "whats-new-in-v20"
    assert slug("Use [the API](https://x.test/api) now") == "use-the-api-now"
    # A heading that names its own anchor keeps it, and later repeats number past it.
    assert headings(add_anchors("## Intro {#intro}\n\n## Intro\n"))[1].anchor == "intro-1"
