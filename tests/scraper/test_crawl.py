"""The crawler against sites served on loopback: discovery, traps, politeness, re-fetching."""

from __future__ import annotations

import gzip

import pytest

from scraper.crawl import (
    CrawlError,
    CrawlOptions,
    Known,
    SitemapError,
    crawl,
    map_sitemap_url,
    normalize_url,
    parse_sitemap,
)
from tests.scraper.conftest import Site, doc_page, small_site, urlset
from tests.support import free_port

FAST = CrawlOptions(backoff=0.01, max_bytes=100_000)


def _reasons(report) -> dict[str, str]:
    return {r.url: r.reason for r in report.results if r.status != "fetched"}


def test_finds_the_docs_and_skips_the_traps_with_reasons(docs_site):
    site, expected = docs_site
    report = crawl(site.url + "/docs/", FAST)
    assert sorted(r.url for r in report.pages) == sorted(expected), _reasons(report)

    reasons = _reasons(report)
    base = site.url + "/docs"
    assert reasons[f"{base}/missing.html"] == "not found (404)"
    assert reasons[f"{base}/huge.html"].startswith("too large")
    assert reasons[f"{base}/loop-a.html"] == "redirect loop"
    assert reasons[f"{base}/old-install.html"] == f"duplicate: redirects to {base}/install.html"
    assert reasons[f"{base}/empty.html"] == "no text content"
    assert not report.stats.failed

    # robots.txt, scope and normalisation keep these from ever being asked for.
    assert site.requests("/docs/private/secret.html") == []
    assert site.requests("/blog/post.html") == []
    assert site.requests("/docs/manual.pdf") == []
    assert len(site.requests("/docs/install.html")) == 1
    # The flaky page answered 500 first and was retried.
    assert [h.status for h in site.requests("/docs/flaky.html")] == [500, 200]
    assert f"{site.url}/sitemaps/more.xml.gz" in report.sitemaps


def test_pages_carry_clean_markdown(docs_site):
    site, _ = docs_site
    report = crawl(site.url + "/docs/", FAST)
    pages = {r.url: r.page for r in report.pages}
    install = pages[site.url + "/docs/install.html"]
    assert install is not None and install.title == "Installing"
    assert "```python\nfrom widgets import Widget" in install.text
    assert "Quick search" not in install.text
    quick = pages[site.url + "/docs/quick-start"]
    assert quick is not None and "```bash\nnpm install --global sprocket" in quick.text


def test_rerun_sends_conditional_requests_and_downloads_little(site: Site):
    urls = small_site(site, 6)
    first = crawl(site.url + "/docs/", FAST)
    assert {r.status for r in first.pages} == {"fetched"}
    known = {
        r.url: Known(r.url, r.etag, r.last_modified, r.page.text if r.page else "")
        for r in first.pages
    }
    site.clear()
    again = crawl(site.url + "/docs/", FAST, known)
    assert sorted(r.url for r in again.pages) == sorted(urls)
    assert {r.status for r in again.pages} == {"unchanged"}
    page_hits = [
        h
        for h in site.requests()
        if h.path.startswith("/docs/") and "sitemap" not in h.path and "llms" not in h.path
    ]
    assert page_hits and all(h.headers.get("if-none-match") for h in page_hits)
    assert {h.status for h in page_hits} == {304}
    assert sum(h.sent for h in page_hits) == 0


def test_binaries_cost_no_download_and_no_second_request(site: Site):
    site.raw("/robots.txt", 404)
    links = ["img/shot.png", "guide.PDF", "dist/app.tar.gz", "files/report", "usage.html"]
    site.page("/docs/", doc_page("Home", "Screenshots, a guide and a report.", links))
    site.page("/docs/usage.html", doc_page("Usage", "How to use it, with a picture."))
    for path in ("/docs/img/shot.png", "/docs/guide.PDF", "/docs/dist/app.tar.gz"):
        site.raw(path, 200, b"\x89PNG" * 1000, Content_Type="image/png")
    big = 20_000_000
    site.raw("/docs/files/report", 200, b"%PDF" * (big // 4), Content_Type="application/pdf")
    report = crawl(site.url + "/docs/", FAST)
    assert sorted(r.url for r in report.pages) == [
        site.url + "/docs/",
        site.url + "/docs/usage.html",
    ]
    # Known binary extensions are not even asked for.
    asked = {h.path for h in site.requests()}
    assert not asked & {"/docs/img/shot.png", "/docs/guide.PDF", "/docs/dist/app.tar.gz"}
    # A binary without an extension is dropped once its headers are in: the download stops.
    report_url = site.url + "/docs/files/report"
    assert _reasons(report)[report_url] == "not HTML (application/pdf)"
    assert report.not_pages == [report_url]
    (hit,) = site.requests("/docs/files/report")
    assert hit.done.wait(10)
    assert hit.written < big // 4
    assert report.stats.bytes < 10_000

    site.clear()
    again = crawl(site.url + "/docs/", FAST, not_pages=report.not_pages)
    assert len(again.pages) == 2
    assert site.requests("/docs/files/report") == []


def test_retry_after_is_honoured(site: Site):
    site.raw("/robots.txt", 404)
    site.sequence(
        "/docs/",
        (429, {"Retry-After": "1"}, b"slow down"),
        (200, {"Content-Type": "text/html"}, doc_page("Home", "Served after a pause.").encode()),
    )
    report = crawl(site.url + "/docs/", FAST)
    assert [r.url for r in report.pages] == [site.url + "/docs/"]
    first, second = site.requests("/docs/")
    assert second.at - first.at >= 0.9


def test_sitemap_of_another_host_is_mapped_onto_the_crawled_one(site: Site):
    site.raw("/robots.txt", 404)
    site.page("/docs/", doc_page("Home", "The start page links to nothing at all."))
    site.page("/docs/a.html", doc_page("A", "Only the sitemap knows this page."))
    site.raw(
        "/sitemap.xml",
        200,
        urlset(["https://docs.example.com/docs/", "https://docs.example.com/docs/a.html"]).encode(),
    )
    plain = crawl(site.url + "/docs/", FAST)
    assert [r.url for r in plain.pages] == [site.url + "/docs/"]
    assert any("--map-sitemap https://docs.example.com=" in note for note in plain.notes)

    mapped = crawl(
        site.url + "/docs/",
        CrawlOptions(backoff=0.01, map_sitemap=("https://docs.example.com", site.url)),
    )
    assert sorted(r.url for r in mapped.pages) == [site.url + "/docs/", site.url + "/docs/a.html"]


def test_include_exclude_and_max_pages(site: Site):
    small_site(site, 8)
    report = crawl(
        site.url + "/docs/",
        CrawlOptions(backoff=0.01, include=("/docs/page-*",), exclude=("*/page-3.html",)),
    )
    kept = sorted(r.url.rsplit("/", 1)[1] for r in report.pages)
    assert kept == [f"page-{i}.html" for i in range(8) if i != 3]
    assert site.requests("/docs/page-3.html") == []

    limited = crawl(site.url + "/docs/", CrawlOptions(backoff=0.01, max_pages=3))
    assert len(limited.pages) == 3 and limited.truncated


def test_start_redirect_sets_the_scope_and_canonical_dedupes(site: Site):
    site.raw("/robots.txt", 404)
    site.redirect("/docs", "/docs/")
    site.page("/docs/", doc_page("Home", "Welcome to the docs home page.", ["index.html"]))
    site.page(
        "/docs/index.html",
        '<html><head><link rel="canonical" href="/docs/"></head><body><main>'
        "<p>Welcome to the docs home page, again.</p></main></body></html>",
    )
    report = crawl(site.url + "/docs", FAST)
    assert report.scope.prefix == "/docs/"
    assert [r.url for r in report.pages] == [site.url + "/docs/"]
    assert _reasons(report)[site.url + "/docs/index.html"] == f"duplicate of {site.url}/docs/"


def test_failures_to_start_are_clear(site: Site):
    with pytest.raises(CrawlError, match="cannot reach"):
        crawl(f"http://127.0.0.1:{free_port()}/docs/", FAST)
    with pytest.raises(CrawlError, match="not an http"):
        crawl("docs.example.com", FAST)

    site.raw("/robots.txt", 200, b"User-agent: *\nDisallow: /\n")
    with pytest.raises(CrawlError, match=r"robots\.txt does not allow"):
        crawl(site.url + "/docs/", FAST)

    site.raw("/robots.txt", 404)
    site.raw("/api", 200, b'{"hello": "json"}', Content_Type="application/json")
    with pytest.raises(CrawlError, match=r"no documentation pages .*not HTML \(application/json"):
        crawl(site.url + "/api", FAST)

    site.page("/docs/", doc_page("Home", "A perfectly fine start page here."))
    site.raw("/sitemap.xml", 200, b"<urlset><url><loc>broken", Content_Type="application/xml")
    with pytest.raises(SitemapError, match="malformed sitemap"):
        crawl(site.url + "/docs/", FAST)


def test_a_catch_all_html_sitemap_is_ignored(site: Site):
    site.raw("/robots.txt", 404)
    site.page("/docs/", doc_page("Home", "The start page of an SPA-like site."))
    site.page("/sitemap.xml", "<!doctype html><html><body>app shell</body></html>")
    report = crawl(site.url + "/docs/", FAST)
    assert [r.url for r in report.pages] == [site.url + "/docs/"]


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("HTTP://Docs.Example.COM:80/a/./b/../c.html#top", "http://docs.example.com/a/c.html"),
        ("https://x.org/p?utm_source=a&id=3&fbclid=z", "https://x.org/p?id=3"),
        ("https://x.org", "https://x.org/"),
        ("https://x.org:8443/a b", "https://x.org:8443/a%20b"),
    ],
)
def test_normalize_url(raw: str, normal: str):
    assert normalize_url(raw) == normal


def test_sitemap_formats():
    xml = urlset(["https://a.test/1", "https://a.test/2"]).encode()
    assert parse_sitemap(xml, "s") == (["https://a.test/1", "https://a.test/2"], [])
    assert parse_sitemap(gzip.compress(xml), "s")[0] == ["https://a.test/1", "https://a.test/2"]
    assert parse_sitemap(b"https://a.test/1\nhttps://a.test/2\n", "s")[0] == [
        "https://a.test/1",
        "https://a.test/2",
    ]
    with pytest.raises(SitemapError):
        parse_sitemap(b"<rss><channel/></rss>", "s")
    with pytest.raises(SitemapError):
        parse_sitemap(b"\x1f\x8bnot really gzip", "s")
    assert map_sitemap_url("https://prod/docs/a", ("https://prod", "http://local:1")) == (
        "http://local:1/docs/a"
    )


def test_llms_txt_links_seed_the_crawl(site: Site):
    site.raw("/robots.txt", 404)
    site.page("/docs/", doc_page("Home", "A home page that links to nothing else."))
    site.raw(
        "/docs/llms.txt",
        200,
        (
            "# Test docs\n\n> Docs for the test.\n\n## Guides\n\n"
            "- [Install](install.html): how to install\n"
            f"- [API]({site.url}/docs/api/index.html.md)\n"
            '- [Guide](/docs/guide.html.md "the guide")\n'
            "- [Elsewhere](https://other.example/page.html)\n"
        ).encode(),
        Content_Type="text/plain; charset=utf-8",
    )
    site.page("/docs/install.html", doc_page("Install", "Found through llms.txt only."))
    site.page("/docs/api/", doc_page("API", "The API page, listed as its Markdown copy."))
    site.page("/docs/guide.html", doc_page("Guide", "The guide, listed as its Markdown copy."))
    report = crawl(site.url + "/docs/", FAST)
    assert sorted(r.url.removeprefix(site.url) for r in report.pages) == [
        "/docs/",
        "/docs/api/",
        "/docs/guide.html",
        "/docs/install.html",
    ]
    assert site.url + "/docs/llms.txt" in report.sitemaps


def test_an_html_page_at_llms_txt_is_ignored(site: Site):
    small_site(site, 1)
    site.page("/docs/llms.txt", doc_page("Not found", "[A link](nowhere.html) in a catch-all."))
    report = crawl(site.url + "/docs/", FAST)
    assert len(report.pages) == 2
    assert site.requests("/docs/nowhere.html") == []
