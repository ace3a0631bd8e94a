"""Find and fetch a documentation site's pages: sitemaps, links, robots.txt, retries, re-fetch."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import random
import re
import time
import zlib
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from lxml import etree
from protego import Protego

from scraper.extract import Extracted, extract

USER_AGENT = "docschat-scraper/0.2 (+https://github.com/docschat/docschat)"
ROBOTS_AGENT = "docschat"
HTML_TYPES = ("text/html", "application/xhtml+xml")
NOT_HTML = "not HTML"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
MAX_URL_CHARS = 2048
DRAIN_BYTES = 64 * 1024  # the documents table's url column
MAX_SITEMAPS = 200
MAX_SITEMAP_BYTES = 50_000_000  # the protocol's own limit, uncompressed
TRACKING_PARAMS = frozenset(
    {
        "gclid",
        "dclid",
        "fbclid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
    }
)
MARKDOWN_LINK = re.compile(r"\]\((https?://[^)\s]+)\)|<(https?://[^>\s]+)>")
# Any Markdown link target, relative ones too (llms.txt lists its pages this way).
LLMS_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# Worker processes only pay off once a crawl is big enough to amortise starting them.
EXECUTOR_MIN_PAGES = 100
CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.I)
# Files no docs generator serves as pages: never asked for, whatever the server would say.
_BINARY_EXTENSIONS = """
    png jpg jpeg gif webp avif bmp ico tif tiff svg psd heic
    pdf ps eps epub mobi doc docx xls xlsx ppt pptx odt ods odp
    zip tar gz tgz bz2 tbz2 xz txz zst 7z rar jar war whl egg deb rpm apk dmg iso img msi exe
    bin dll so dylib pkg
    mp4 m4v mov avi mkv webm wmv flv mpg mpeg ogv
    mp3 m4a wav flac ogg oga opus aac
    woff woff2 ttf otf eot
    wasm
"""
BINARY_EXTENSIONS = frozenset(_BINARY_EXTENSIONS.split())


class CrawlError(Exception):
    """The crawl cannot go on: the site is unreachable, blocks us, or is not a docs site."""


@dataclass(frozen=True)
class CrawlOptions:
    """How to crawl: limits, filters, politeness and retry settings."""

    max_pages: int = 5000
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    concurrency: int = 8
    per_host: int | None = None  # defaults to `concurrency`
    map_sitemap: tuple[str, str] | None = None
    follow_links: bool = True
    user_agent: str = USER_AGENT
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 0.5
    max_retry_after: float = 60.0
    max_crawl_delay: float = 10.0
    max_bytes: int = 5_000_000


@dataclass(frozen=True)
class Known:
    """What the documents table remembers of a page, for conditional requests."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    text: str = ""


@dataclass
class PageResult:
    """The outcome for one URL: fetched (with its page), unchanged (304), skipped or failed."""

    url: str
    status: str
    reason: str = ""
    page: Extracted | None = None
    etag: str | None = None
    last_modified: str | None = None
    requested: str = ""


@dataclass
class CrawlStats:
    """Running counts, shown by the progress bar and in the summary."""

    found: int = 0
    fetched: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    requests: int = 0
    bytes: int = 0
    retries: int = 0
    not_modified: int = 0


@dataclass
class CrawlReport:
    """Everything a crawl learned: per-URL results, counts, sitemaps and notes."""

    start_url: str
    scope: Scope
    results: list[PageResult] = field(default_factory=list)
    stats: CrawlStats = field(default_factory=CrawlStats)
    sitemaps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    seconds: float = 0.0

    @property
    def not_pages(self) -> list[str]:
        """URLs whose response headers said they are not pages (worth not asking again)."""
        return [
            r.requested or r.url
            for r in self.results
            if r.status == "skipped" and r.reason.startswith(NOT_HTML)
        ]

    @property
    def pages(self) -> list[PageResult]:
        """Results that are live documentation pages (fetched or unchanged)."""
        return [r for r in self.results if r.status in ("fetched", "unchanged")]


# --- URLs ------------------------------------------------------------------------------------


def normalize_url(url: str) -> str:
    """One spelling per page: lower-case scheme and host, no default port, fragment or tracking."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    path = quote(_remove_dot_segments(parts.path or "/"), safe="/%:@!$&'()*+,;=~")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    return urlunsplit((scheme, netloc, path or "/", urlencode(query, doseq=True), ""))


def _remove_dot_segments(path: str) -> str:
    """Resolve `.` and `..` path segments (RFC 3986, section 5.2.4)."""
    if "." not in path:
        return path
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    result = "/".join(out)
    if path.endswith(("/.", "/..")):
        result += "/"
    return result if result.startswith("/") else "/" + result


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Scope:
    """Which URLs belong to the crawl: the start URL's scheme, host and path prefix, and globs."""

    origin: str
    prefix: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, url: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Scope:
        """The scope a start URL implies: its directory (the path up to the last slash)."""
        path = urlsplit(url).path or "/"
        prefix = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"
        return cls(origin_of(url), prefix, include, exclude)

    def contains(self, url: str) -> bool:
        """Whether a (normalized) URL is under the start URL's origin and path prefix."""
        return origin_of(url) == self.origin and urlsplit(url).path.startswith(self.prefix)

    def rejects(self, url: str) -> str | None:
        """Why --include/--exclude rule a URL out, or None when they let it in."""
        path = urlsplit(url).path
        if self.include and not any(_glob(url, path, g) for g in self.include):
            return "not matched by --include"
        for pattern in self.exclude:
            if _glob(url, path, pattern):
                return f"excluded by --exclude {pattern}"
        return None


def _glob(url: str, path: str, pattern: str) -> bool:
    """Match a glob against the whole URL when it names a scheme, else against the path."""
    return fnmatchcase(url if "://" in pattern else path, pattern)


def binary_extension(url: str) -> str | None:
    """The extension of a URL whose path names a well-known binary file, else None."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    _, dot, extension = name.rpartition(".")
    extension = extension.lower()
    return extension if dot and extension in BINARY_EXTENSIONS else None


def page_of_llms_link(url: str) -> str:
    """The page an llms.txt link stands for: `a.html.md` -> `a.html`, `index.html.md` -> `./`."""
    # The llms.txt proposal links Markdown copies published beside the HTML pages.
    parts = urlsplit(url)
    path = parts.path
    if path.endswith(".html.md"):
        path = path[: -len(".md")]
        if path.endswith("/index.html"):
            path = path[: -len("index.html")]
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def map_sitemap_url(url: str, mapping: tuple[str, str] | None) -> str:
    """Rewrite a sitemap's production base URL onto the crawled one (`--map-sitemap FROM=TO`)."""
    if mapping and url.startswith(mapping[0]):
        return mapping[1] + url[len(mapping[0]) :]
    return url


# --- sitemaps and robots.txt ----------------------------------------------------------------


class SitemapError(CrawlError):
    """A sitemap that exists but cannot be read."""


def parse_sitemap(data: bytes, url: str) -> tuple[list[str], list[str]]:
    """The page URLs and nested sitemap URLs of a sitemap (XML, gzipped XML or plain text)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = _gunzip(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise SitemapError(f"malformed sitemap {url}: bad gzip data ({exc})") from exc
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped.startswith(b"<"):
        lines = [line.strip() for line in stripped.decode("utf-8", "replace").splitlines()]
        urls = [line for line in lines if line]
        if urls and all(u.startswith(("http://", "https://")) for u in urls):
            return urls, []
        raise SitemapError(f"malformed sitemap {url}: neither XML nor a list of URLs")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(stripped, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"malformed sitemap {url}: {exc.msg or exc}") from exc
    kind = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"malformed sitemap {url}: root element <{kind}> is not a sitemap")
    child = "url" if kind == "urlset" else "sitemap"
    locs = []
    for entry in root:
        if not isinstance(entry.tag, str) or etree.QName(entry).localname != child:
            continue
        for loc in entry:
            if isinstance(loc.tag, str) and etree.QName(loc).localname == "loc" and loc.text:
                locs.append(loc.text.strip())
    return (locs, []) if kind == "urlset" else ([], locs)


def _gunzip(data: bytes) -> bytes:
    """Decompress at most MAX_SITEMAP_BYTES, so a zip bomb cannot fill memory."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        out = f.read(MAX_SITEMAP_BYTES + 1)
    if len(out) > MAX_SITEMAP_BYTES:
        raise OSError("sitemap larger than 50 MB uncompressed")
    return out


def _looks_like_html(content_type: str, data: bytes) -> bool:
    """A catch-all page served where a sitemap was expected."""
    head = data[:512].lstrip().lower()
    return content_type in HTML_TYPES or head.startswith((b"<!doctype html", b"<html"))


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _decode(body: bytes, content_type_header: str) -> str:
    """Page bytes to text: the charset the server or the page declares, else UTF-8."""
    charset = ""
    for param in content_type_header.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    if not charset:
        match = CHARSET.search(body[:4096])
        charset = match.group(1).decode("ascii", "ignore") if match else "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


# --- fetching -------------------------------------------------------------------------------


@dataclass
class _Response:
    """A finished request: status, headers and (for accepted content) the body."""

    status: int
    headers: httpx.Headers
    body: bytes = b""
    skip: str | None = None


class _Failed(Exception):
    """A request that failed for good (after its retries)."""


class _Host:
    """Politeness state of one host: a concurrency limit, Crawl-delay and Retry-After pauses."""

    def __init__(self, limit: int) -> None:
        self.gate = asyncio.Semaphore(limit)
        self.delay = 0.0
        self.not_before = 0.0
        self.lock = asyncio.Lock()

    async def wait_turn(self) -> None:
        """Sleep until the host may be asked again."""
        while True:
            now = time.monotonic()
            if now >= self.not_before:
                if self.delay:
                    async with self.lock:
                        now = time.monotonic()
                        wait = self.not_before - now
                        if wait > 0:
                            await asyncio.sleep(wait)
                        self.not_before = max(time.monotonic(), self.not_before) + self.delay
                return
            await asyncio.sleep(self.not_before - now)

    def pause(self, seconds: float) -> None:
        """Ask nothing of this host for `seconds` (the server said Retry-After)."""
        self.not_before = max(self.not_before, time.monotonic() + seconds)


Progress = Callable[[CrawlStats], None]


class Crawler:
    """One crawl of one site; `await crawler.run()` returns its report."""

    def __init__(
        self,
        start_url: str,
        options: CrawlOptions | None = None,
        known: Mapping[str, Known] | None = None,
        progress: Progress | None = None,
        executor: Executor | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        not_pages: Collection[str] = (),
    ) -> None:
        self.options = options or CrawlOptions()
        self.start_url = self._check_start(start_url)
        self.scope = Scope.of(self.start_url, self.options.include, self.options.exclude)
        self.known = dict(known or {})
        # URLs an earlier run found not to be pages: asked for no more.
        self.not_pages = frozenset(not_pages)
        self.progress = progress
        self.executor = executor
        self.transport = transport
        self.report = CrawlReport(self.start_url, self.scope)
        self.stats = self.report.stats
        self.seen: set[str] = set()
        self.raw_seen: set[str] = set()
        self.claimed: set[str] = set()
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.hosts: dict[str, _Host] = {}
        self.robots: dict[str, Protego | None] = {}
        self.robots_lock = asyncio.Lock()
        self.client: httpx.AsyncClient | None = None

    @staticmethod
    def _check_start(url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CrawlError(f"not an http(s) URL: {url!r}")
        return normalize_url(url)

    # --- the crawl --------------------------------------------------------------------------

    async def run(self) -> CrawlReport:
        """Crawl the site: robots.txt, the start page, sitemaps, then every page found."""
        began = time.monotonic()
        limits = httpx.Limits(
            max_connections=self.options.concurrency + 4,
            max_keepalive_connections=self.options.concurrency + 4,
        )
        async with httpx.AsyncClient(
            headers={"User-Agent": self.options.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=self.options.timeout,
            follow_redirects=False,
            limits=limits,
            transport=self.transport,
        ) as client:
            self.client = client
            await self._begin()
            workers = [asyncio.create_task(self._work()) for _ in range(self.options.concurrency)]
            try:
                await self.queue.join()
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        self.report.seconds = time.monotonic() - began
        self._tick()
        if not self.report.pages:
            raise CrawlError(self._nothing_found())
        return self.report

    def _nothing_found(self) -> str:
        start = next((r for r in self.report.results if r.requested == self.start_url), None)
        why = f" (start page: {start.reason})" if start and start.reason else ""
        return f"no documentation pages found at {self.start_url}{why}"

    async def _begin(self) -> None:
        """Check the start URL first, so a wrong URL fails fast with a clear reason."""
        origin = origin_of(self.start_url)
        robots = await self._robots(origin, required=True)
        if robots is not None and not self._allowed(self.start_url):
            raise CrawlError(
                f"{origin}/robots.txt does not allow docschat to crawl {self.start_url}"
            )
        self.seen.add(self.start_url)
        self.stats.found += 1
        try:
            start = await self._page(self.start_url, is_start=True)
        except CrawlError:
            raise
        except Exception as exc:  # reported like any other page that broke
            start = PageResult(self.start_url, "failed", f"{type(exc).__name__}: {exc}")
        start.requested = self.start_url
        self._record(start)
        if start.status == "failed" and start.reason.startswith("cannot connect"):
            raise CrawlError(f"cannot reach {self.start_url}: {start.reason}")
        await self._sitemaps()
        await self._llms_txt()
        for url in self.known:
            self._enqueue(url, from_known=True)

    async def _work(self) -> None:
        while True:
            url = await self.queue.get()
            try:
                self._record(await self._page(url))
            except Exception as exc:  # one bad page must not end the crawl
                self._record(PageResult(url, "failed", f"{type(exc).__name__}: {exc}"))
            finally:
                self.queue.task_done()

    def _record(self, result: PageResult) -> None:
        self.report.results.append(result)
        if result.status in ("fetched", "unchanged", "skipped", "failed"):
            setattr(self.stats, result.status, getattr(self.stats, result.status) + 1)
        self._tick()

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(self.stats)

    def _enqueue(self, url: str, *, from_known: bool = False) -> None:
        """Queue a URL once, if it is in scope, allowed, and under --max-pages."""
        # Most links are nav links seen on every page: skip them before normalising.
        if url in self.raw_seen:
            return
        self.raw_seen.add(url)
        try:
            url = normalize_url(url)
        except ValueError:
            return
        if url in self.seen or not self.scope.contains(url) or len(url) > MAX_URL_CHARS:
            return
        self.seen.add(url)
        reason = self.scope.rejects(url)
        if reason is None and (extension := binary_extension(url)):
            reason = f"{NOT_HTML} (a .{extension} file)"
        if reason is None and url in self.not_pages:
            reason = f"{NOT_HTML} (known from an earlier run)"
        if reason is None and not self._allowed(url):
            reason = "blocked by robots.txt"
        if reason is not None:
            # Only report filtered pages the documents table has, so they can be removed.
            if from_known:
                self._record(PageResult(url, "skipped", reason, requested=url))
            return
        if self.stats.found >= self.options.max_pages:
            self.report.truncated = True
            return
        self.stats.found += 1
        self.queue.put_nowait(url)

    def _allowed(self, url: str) -> bool:
        robots = self.robots.get(origin_of(url))
        return robots is None or robots.can_fetch(url, ROBOTS_AGENT)

    # --- robots.txt and sitemaps ----------------------------------------------------------

    async def _robots(self, origin: str, *, required: bool = False) -> Protego | None:
        """The origin's robots.txt rules (None: no rules), fetched once per origin."""
        async with self.robots_lock:
            if origin in self.robots:
                return self.robots[origin]
            try:
                # The first contact retries once: a wrong URL should fail in about a second.
                retries = min(1, self.options.retries) if required else None
                response = await self._get(
                    f"{origin}/robots.txt", {}, kind="robots", retries=retries
                )
            except _Failed as exc:
                if required:
                    raise CrawlError(f"cannot reach {origin}: {exc}") from exc
                self.robots[origin] = None
                return None
            parser: Protego | None = None
            if response.status == 200:
                # Protego follows RFC 9309: wildcards, `$`, the longest match, Allow on a tie.
                parser = Protego.parse(response.body.decode("utf-8", "replace"))
                delay = parser.crawl_delay(ROBOTS_AGENT)
                if delay:
                    self._host(origin).delay = min(float(delay), self.options.max_crawl_delay)
            elif response.status >= 500:
                # RFC 9309: an unreachable robots.txt means the whole site is off limits.
                parser = Protego.parse("User-agent: *\nDisallow: /\n")
            self.robots[origin] = parser
            return parser

    async def _sitemaps(self) -> None:
        """Queue every page the site's sitemaps name (robots.txt lines, then the usual places)."""
        origin = self.scope.origin
        robots = self.robots.get(origin)
        candidates = list(robots.sitemaps) if robots is not None else []
        candidates.append(f"{origin}/sitemap.xml")
        if self.scope.prefix != "/":
            candidates.append(f"{origin}{self.scope.prefix}sitemap.xml")
        pending = [map_sitemap_url(u, self.options.map_sitemap) for u in candidates]
        visited: set[str] = set()
        outside = 0
        outside_example = ""
        while pending and len(visited) < MAX_SITEMAPS:
            url = pending.pop(0)
            if url in visited:
                continue
            visited.add(url)
            try:
                response = await self._get(url, {}, kind="sitemap")
            except _Failed as exc:
                self.report.notes.append(f"sitemap {url} could not be read: {exc}")
                continue
            if response.status != 200 or response.skip:
                continue
            pages, nested = parse_sitemap(response.body, url)
            self.report.sitemaps.append(url)
            pending.extend(map_sitemap_url(u, self.options.map_sitemap) for u in nested)
            for page in pages:
                mapped = map_sitemap_url(page, self.options.map_sitemap)
                try:
                    inside = self.scope.contains(normalize_url(mapped))
                except ValueError:
                    inside = False
                if not inside:
                    outside += 1
                    outside_example = outside_example or page
                self._enqueue(mapped)
        if outside:
            hint = ""
            if origin_of(outside_example) != origin:
                other = origin_of(outside_example)
                hint = (
                    f"; if {other} is another copy of this site, use --map-sitemap {other}={origin}"
                )
            self.report.notes.append(
                f"{outside} sitemap URLs are outside {origin}{self.scope.prefix} "
                f"(e.g. {outside_example}){hint}"
            )

    async def _llms_txt(self) -> None:
        """Queue the pages a site's /llms.txt links to (in the start folder, then at the root)."""
        origin = self.scope.origin
        candidates = [f"{origin}{self.scope.prefix}llms.txt", f"{origin}/llms.txt"]
        for url in dict.fromkeys(candidates):
            if not self._allowed(url):
                continue
            try:
                response = await self._get(url, {}, kind="llms")
            except _Failed as exc:
                self.report.notes.append(f"{url} could not be read: {exc}")
                continue
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if (
                response.status != 200
                or response.skip
                or _looks_like_html(content_type, response.body)
            ):
                continue
            text = _decode(response.body, response.headers.get("content-type", ""))
            links = [page_of_llms_link(urljoin(url, m.group(1))) for m in LLMS_LINK.finditer(text)]
            self.report.sitemaps.append(url)
            for link in links:
                self._enqueue(link)
            return

    # --- one page -------------------------------------------------------------------------

    async def _page(self, url: str, *, is_start: bool = False) -> PageResult:
        """Fetch a page (following redirects), then extract it and queue its links."""
        requested = url
        chain = [url]
        for _ in range(MAX_REDIRECTS + 1):
            known = self.known.get(url)
            headers = {}
            if known is not None:
                if known.etag:
                    headers["If-None-Match"] = known.etag
                if known.last_modified:
                    headers["If-Modified-Since"] = known.last_modified
            try:
                response = await self._get(url, headers, kind="page")
            except _Failed as exc:
                return PageResult(url, "failed", str(exc), requested=requested)
            if response.status not in REDIRECT_STATUSES:
                break
            location = response.headers.get("location", "").strip()
            if not location:
                return PageResult(url, "failed", "redirect without a Location", requested=requested)
            target = normalize_url(urljoin(url, location))
            if target in chain:
                return PageResult(requested, "skipped", "redirect loop", requested=requested)
            chain.append(target)
            if is_start:
                # The start URL's final address defines the scope (/docs -> /docs/).
                self.scope = Scope.of(target, self.options.include, self.options.exclude)
                self.report.scope = self.scope
                await self._robots(origin_of(target))
            elif not self.scope.contains(target):
                return PageResult(
                    requested, "skipped", f"redirects outside the site to {target}", requested=url
                )
            else:
                await self._robots(origin_of(target))
            if not self._allowed(target):
                return PageResult(requested, "skipped", "redirect blocked by robots.txt")
            if target in self.claimed or (target in self.seen and target != requested):
                return PageResult(
                    requested, "skipped", f"duplicate: redirects to {target}", requested=requested
                )
            self.seen.add(target)
            url = target
        else:
            return PageResult(requested, "skipped", "too many redirects", requested=requested)
        return await self._handle(url, requested, response)

    async def _handle(self, url: str, requested: str, response: _Response) -> PageResult:
        """Turn a final response into a result."""
        status = response.status
        etag = response.headers.get("etag")
        modified = response.headers.get("last-modified")
        if status == 304:
            known = self.known.get(url)
            if known is None:
                return PageResult(url, "failed", "304 without a conditional request")
            self.stats.not_modified += 1
            self.claimed.add(url)
            # A 304 has no body: follow the links the stored text still holds.
            for match in MARKDOWN_LINK.finditer(known.text):
                self._enqueue(match.group(1) or match.group(2))
            return PageResult(
                url,
                "unchanged",
                etag=etag or known.etag,
                last_modified=modified or known.last_modified,
                requested=requested,
            )
        if status in (404, 410):
            return PageResult(url, "skipped", f"not found ({status})", requested=requested)
        if status != 200:
            # Only 404 and 410 say a page is gone; a 403 or a 5xx may pass, so the page is kept.
            return PageResult(url, "failed", f"HTTP {status}", requested=requested)
        if response.skip:
            return PageResult(url, "skipped", response.skip, requested=requested)
        html = _decode(response.body, response.headers.get("content-type", ""))
        page = await self._extract(html, url)
        if self.options.follow_links:
            for link in page.links:
                self._enqueue(link)
        final = url
        if page.canonical:
            canonical = normalize_url(page.canonical)
            if canonical != url and self.scope.contains(canonical):
                if canonical in self.claimed or canonical in self.seen:
                    return PageResult(
                        url, "skipped", f"duplicate of {canonical}", requested=requested
                    )
                self.seen.add(canonical)
                final = canonical
        if final in self.claimed:
            return PageResult(url, "skipped", f"duplicate of {final}", requested=requested)
        self.claimed.add(final)
        rejected = self.scope.rejects(final)
        if rejected:
            return PageResult(final, "skipped", rejected, requested=requested)
        if page.skip_reason:
            return PageResult(final, "skipped", page.skip_reason, requested=requested)
        if final != url:
            page = Extracted(
                final, page.title, page.text, page.content_hash, page.links, page.canonical
            )
        return PageResult(
            final, "fetched", page=page, etag=etag, last_modified=modified, requested=requested
        )

    async def _extract(self, html: str, url: str) -> Extracted:
        if self.executor is None or self.stats.found < EXECUTOR_MIN_PAGES:
            return extract(html, url)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, extract, html, url)

    # --- HTTP -----------------------------------------------------------------------------

    def _host(self, origin: str) -> _Host:
        host = self.hosts.get(origin)
        if host is None:
            host = _Host(self.options.per_host or self.options.concurrency)
            self.hosts[origin] = host
        return host

    async def _get(
        self, url: str, headers: dict[str, str], *, kind: str, retries: int | None = None
    ) -> _Response:
        """GET with retries and backoff on 429/5xx and connection errors; honours Retry-After."""
        assert self.client is not None
        host = self._host(origin_of(url))
        attempts = (self.options.retries if retries is None else retries) + 1
        last = ""
        for attempt in range(attempts):
            await host.wait_turn()
            try:
                async with host.gate:
                    self.stats.requests += 1
                    request = self.client.build_request("GET", url, headers=headers)
                    response = await self.client.send(request, stream=True)
                    try:
                        if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                            wait = _retry_after(response.headers.get("retry-after"))
                            if wait is not None:
                                host.pause(min(wait, self.options.max_retry_after))
                            last = f"HTTP {response.status_code}"
                            delay = wait if wait is not None else self._backoff(attempt)
                            await self._drain(response)
                        else:
                            return await self._read(response, kind)
                    finally:
                        await response.aclose()
            except httpx.TimeoutException:
                last = "timed out"
                delay = self._backoff(attempt)
            except (httpx.TransportError, OSError) as exc:
                last = f"cannot connect ({_short(exc)})"
                delay = self._backoff(attempt)
            if attempt + 1 < attempts:
                self.stats.retries += 1
                await asyncio.sleep(min(delay, self.options.max_retry_after))
        raise _Failed(f"{last} after {attempts} attempts" if attempts > 1 else last)

    async def _drain(self, response: httpx.Response) -> None:
        """Read a small unwanted body (a 304, a redirect, an error page) to the end.

        A response closed before its end closes its connection too: without this, every 304 of
        a re-run would open a new connection.
        """
        if not _small(response):
            return
        with contextlib.suppress(httpx.HTTPError):
            async for chunk in response.aiter_raw():
                self.stats.bytes += len(chunk)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so retries from many workers spread out."""
        return self.options.backoff * (2**attempt) * (0.5 + random.random())

    async def _read(self, response: httpx.Response, kind: str) -> _Response:
        """Read the body of an accepted response, skipping non-HTML and oversized ones."""
        status = response.status_code
        result = _Response(status, response.headers)
        if status != 200:
            await self._drain(response)
            return result
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "page" and content_type and content_type not in HTML_TYPES:
            # Closing the unread stream (in _get) hangs up before the body crosses the wire.
            result.skip = f"{NOT_HTML} ({content_type})"
            return result
        limit = MAX_SITEMAP_BYTES if kind == "sitemap" else self.options.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            result.skip = f"too large ({int(declared):,} bytes)"
            return result
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            self.stats.bytes += len(chunk)
            if size > limit:
                result.skip = f"too large (over {limit:,} bytes)"
                return result
            chunks.append(chunk)
        try:
            body = _decompress(
                b"".join(chunks), response.headers.get("content-encoding", ""), limit
            )
        except zlib.error:
            result.skip = "undecodable compressed body"
            return result
        if len(body) > limit:
            result.skip = f"too large (over {limit:,} bytes)"
            return result
        if kind == "sitemap" and _looks_like_html(content_type, body):
            result.skip = "an HTML page, not a sitemap"
        result.body = body
        return result


def _small(response: httpx.Response) -> bool:
    """Whether a response's body is small enough to read just to keep its connection."""
    if response.status_code in (204, 304) or response.request.method == "HEAD":
        return True
    declared = response.headers.get("content-length", "")
    return declared.isdigit() and int(declared) <= DRAIN_BYTES


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding ourselves (byte counts stay what crossed the wire), up to limit+1."""
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return body
    if encoding == "deflate" and body[:1] != b"\x78":
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
    else:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding != "deflate" else 15)
    return inflater.decompress(body, limit + 1)


def _short(exc: BaseException) -> str:
    """A one-line description of a connection error."""
    text = str(exc) or type(exc).__name__
    for inner in (exc.__cause__, exc.__context__):
        if inner is not None and str(inner):
            text = str(inner)
    return text.splitlines()[0][:200]


def crawl(
    start_url: str,
    options: CrawlOptions | None = None,
    known: Mapping[str, Known] | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    not_pages: Collection[str] = (),
) -> CrawlReport:
    """Crawl a site synchronously (runs its own event loop)."""
    crawler = Crawler(start_url, options, known, progress, executor, not_pages=not_pages)
    return asyncio.run(crawler.run())
