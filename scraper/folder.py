"""Read a folder of Markdown, MDX and built HTML as the pages of a site published at a base URL."""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urljoin, urlsplit

from scraper.crawl import CrawlError, CrawlReport, PageResult, Scope, normalize_url
from scraper.extract import MIN_TEXT_CHARS, Extracted, content_hash, extract
from scraper.sections import add_anchors, without_anchor

MARKDOWN_SUFFIXES = (".md", ".mdx", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
URL_STYLES = ("dir", "html")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
FRONT_MATTER_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.M)
ATX_HEADING = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.M)
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
# MDX: module lines, JSX comments, and tags of components (capitalised or dotted names).
MDX_MODULE_LINE = re.compile(r"^(?:import|export)\s")
MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.S)
MDX_TAG = re.compile(r"</?[A-Z][\w.]*(?:\s(?:[^<>{}]|\{[^{}]*\})*)?/?>")
MARKDOWN_LINK_TARGET = re.compile(r"(\]\()([^)\s]+)(\))")


@dataclass(frozen=True)
class FolderOptions:
    """Where the folder is published, how its URLs are spelt, and which files to read."""

    base_url: str
    url_style: str = "dir"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_pages: int = 5000


def page_url(relative: PurePosixPath, base_url: str, url_style: str = "dir") -> str:
    """The published URL of a file: `guide/install.md` -> `{base}guide/install/` (or `.html`)."""
    parts = list(relative.parts)
    name = relative.name
    stem, suffix = name.rsplit(".", 1)[0], "." + name.rsplit(".", 1)[-1].lower()
    if stem.lower() == "index":
        path = "/".join(parts[:-1])
        path = path + "/" if path else ""
    elif suffix in HTML_SUFFIXES:
        path = "/".join(parts)  # built HTML is already at its published address
    elif url_style == "html":
        path = "/".join([*parts[:-1], stem + ".html"])
    else:
        path = "/".join([*parts[:-1], stem]) + "/"
    return normalize_url(urljoin(base_url, quote(path)))


def split_front_matter(source: str) -> tuple[str, str]:
    """The front matter's `title` (or "") and the Markdown after the front matter."""
    match = FRONT_MATTER.match(source)
    if not match:
        return "", source
    title = FRONT_MATTER_TITLE.search(match.group(1))
    value = title.group(1).strip() if title else ""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value, source[match.end() :]


def strip_mdx(source: str) -> str:
    """MDX to Markdown: import/export lines and component tags go, the text inside them stays."""
    out: list[str] = []
    fence = ""
    for line in MDX_COMMENT.sub("", source).splitlines():
        opened = FENCE.match(line)
        if fence:
            out.append(line)
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened.group(1)
            out.append(line)
            continue
        if MDX_MODULE_LINE.match(line):
            continue
        stripped = MDX_TAG.sub("", line)
        if stripped.strip() or not line.strip():
            out.append(stripped.strip() if stripped != line else line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _absolute_links(markdown: str, url: str, base_url: str, url_style: str) -> str:
    """Relative links to other Markdown files become the published URLs of those pages."""

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(2)
        if "://" in target or target.startswith(("#", "mailto:")):
            return match.group(0)
        path, hash_, fragment = target.partition("#")
        absolute = urljoin(url, path)
        if path.lower().endswith(MARKDOWN_SUFFIXES):
            # The link names the source file: point at the page it is published as.
            relative = absolute[len(base_url) :] if absolute.startswith(base_url) else ""
            if relative and not relative.startswith("../"):
                absolute = page_url(PurePosixPath(relative), base_url, url_style)
        return f"{match.group(1)}{absolute}{hash_}{fragment}{match.group(3)}"

    return MARKDOWN_LINK_TARGET.sub(rewrite, markdown)


def _source_url(relative: PurePosixPath, base_url: str) -> str:
    """Where a source file sits under the base URL (for resolving its relative links)."""
    return urljoin(base_url, quote(str(relative)))


def read_markdown(source: str, relative: PurePosixPath, options: FolderOptions) -> Extracted:
    """One Markdown or MDX file as a page: title, text with absolute links."""
    url = page_url(relative, options.base_url, options.url_style)
    title, body = split_front_matter(source)
    if relative.suffix.lower() == ".mdx":
        body = strip_mdx(body)
    heading = ATX_HEADING.search(body)
    title = title or (without_anchor(heading.group(1)) if heading else "") or relative.stem
    # Headings keep the anchors the published site gives them, so answers can link to sections.
    body = add_anchors(body.strip()) + "\n"
    text = _absolute_links(
        body, _source_url(relative, options.base_url), options.base_url, options.url_style
    )
    if len(re.sub(r"\s+", "", ATX_HEADING.sub("", text))) < MIN_TEXT_CHARS:
        return Extracted(url, title, skip_reason="no text content")
    return Extracted(url, title, text, content_hash(title, text))


def _hidden(relative: PurePosixPath) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.parts)


def _included(relative: PurePosixPath, url: str, include: tuple[str, ...]) -> bool:
    """Whether an --include glob names the file (its relative path) or its page (URL or path)."""
    path = urlsplit(url).path
    return any(
        fnmatchcase(str(relative), g) or fnmatchcase(url if "://" in g else path, g)
        for g in include
    )


def read_folder(root: Path, options: FolderOptions, known: Collection[str] = ()) -> CrawlReport:
    """Every page of a folder as a crawl report; `known` pages with no file left are `skipped`."""
    began = time.monotonic()
    base = options.base_url
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CrawlError(f"--base-url must be an http(s) URL, not {base!r}")
    if options.url_style not in URL_STYLES:
        raise CrawlError(f"--url-style must be one of {', '.join(URL_STYLES)}")
    if not root.is_dir():
        raise CrawlError(f"not a folder: {root}")
    base = normalize_url(base if base.endswith("/") else base + "/")
    options = replace(options, base_url=base)
    scope = Scope.of(base, options.include, options.exclude)
    report = CrawlReport(base, scope)
    claimed: dict[str, PurePosixPath] = {}
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        suffix = relative.suffix.lower()
        if suffix not in MARKDOWN_SUFFIXES + HTML_SUFFIXES or not path.is_file():
            continue
        url = page_url(relative, base, options.url_style)
        if _hidden(relative) and not (
            options.include and _included(relative, url, options.include)
        ):
            continue
        report.stats.found += 1
        rejected = scope.rejects(url)
        if rejected == "not matched by --include" and _included(relative, url, options.include):
            rejected = None
        excluded = [g for g in options.exclude if fnmatchcase(str(relative), g)]
        rejected = rejected or (f"excluded by --exclude {excluded[0]}" if excluded else None)
        if rejected:
            report.results.append(PageResult(url, "skipped", rejected, requested=url))
            continue
        if url in claimed:
            reason = f"duplicate: {claimed[url]} is published at the same URL"
            report.results.append(PageResult(url, "skipped", reason, requested=url))
            continue
        if len(claimed) >= options.max_pages:
            report.truncated = True
            break
        claimed[url] = relative
        source = path.read_bytes().decode("utf-8", errors="replace")
        if suffix in HTML_SUFFIXES:
            page = extract(source, url)
        else:
            page = read_markdown(source, relative, options)
        if page.skip_reason:
            report.results.append(PageResult(url, "skipped", page.skip_reason, requested=url))
            continue
        report.results.append(PageResult(url, "fetched", page=page, requested=url))
    for url in known:
        if url not in claimed and scope.contains(url) and not report.truncated:
            # Its file was removed or renamed: the page is gone, as a 404 says on a site.
            report.results.append(PageResult(url, "skipped", "no file any more", requested=url))
    for result in report.results:
        if result.status in ("fetched", "skipped"):
            setattr(report.stats, result.status, getattr(report.stats, result.status) + 1)
    report.seconds = time.monotonic() - began
    return report
