"""robots.txt read per RFC 9309 (wildcards, `$`, longest match, Allow on a tie) by a live crawl."""

from __future__ import annotations

import pytest

from scraper.crawl import CrawlError, CrawlOptions, crawl
from tests.scraper.conftest import Site, doc_page

FAST = CrawlOptions(backoff=0.01)

RULES = """\
User-agent: *
Disallow: /

# Our own group wins over `*`, whatever the order.
User-agent: docschat
Disallow: /docs/*?print=
Disallow: /docs/guide/
Allow: /docs/guide/public/
Disallow: /docs/*.php$
Disallow: /docs/tie
Allow: /docs/tie
"""


def _serve(site: Site, links: list[str]) -> None:
    site.raw("/robots.txt", 200, RULES.encode(), Content_Type="text/plain")
    site.page("/docs/", doc_page("Home", "Links to every kind of rule the site has.", links))
    for link in links:
        path = "/docs/" + link
        site.page(path, doc_page(f"Page {link}", f"The page served at {path} for the test."))


def test_wildcards_end_anchors_longest_match_and_ties(site: Site):
    allowed = ["a.html", "guide/public/open.html", "page.php?v=2", "tie"]
    forbidden = ["a.html?print=1", "guide/private.html", "page.php", "guide/"]
    _serve(site, allowed + forbidden)
    report = crawl(site.url + "/docs/", FAST)
    fetched = sorted(r.url.removeprefix(site.url + "/docs/") for r in report.pages)
    assert fetched == sorted(["", *allowed])
    asked = {h.path for h in site.requests()}
    for link in forbidden:
        assert "/docs/" + link not in asked, link


def test_a_group_for_everyone_else_does_not_apply(site: Site):
    _serve(site, ["tie"])
    site.raw("/robots.txt", 200, b"User-agent: otherbot\nDisallow: /\n", Content_Type="text/plain")
    report = crawl(site.url + "/docs/", FAST)
    assert len(report.pages) == 2


def test_a_failing_robots_txt_closes_the_site(site: Site):
    _serve(site, ["tie"])
    site.raw("/robots.txt", 503, b"down")
    with pytest.raises(CrawlError, match=r"robots\.txt does not allow docschat"):
        crawl(site.url + "/docs/", CrawlOptions(backoff=0.01, retries=0))
    assert site.requests("/docs/") == []
