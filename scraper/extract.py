"""Turn a documentation page's HTML into its title, clean Markdown and links (pure functions)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

# Pages with less text than this (after the chrome is gone) are not worth answering from.
MIN_TEXT_CHARS = 10

# Where the generators we know put the page's own content, most specific first:
# (tag or "", classes it must have, attribute it must have, tag and class of a required ancestor).
ContentRule = tuple[str, frozenset[str], tuple[str, str] | None, tuple[str, str] | None]
CONTENT_RULES: tuple[ContentRule, ...] = (
    # Material for MkDocs
    ("article", frozenset({"md-content__inner"}), None, None),
    ("div", frozenset({"md-content"}), None, None),
    # Docusaurus
    ("div", frozenset({"theme-doc-markdown"}), None, None),
    ("div", frozenset({"markdown"}), None, ("article", "")),
    # Sphinx (Read the Docs theme, Furo, Alabaster and friends)
    ("div", frozenset(), ("itemprop", "articleBody"), None),
    ("article", frozenset(), ("role", "main"), None),
    ("div", frozenset({"body"}), ("role", "main"), None),
    ("div", frozenset({"body"}), None, ("div", "document")),
    ("div", frozenset({"rst-content"}), None, None),
    # MkDocs' own themes and anything that marks its main region
    ("div", frozenset(), ("role", "main"), None),
    ("article", frozenset(), None, ("main", "")),
    ("article", frozenset(), None, None),
    ("main", frozenset(), None, None),
    ("", frozenset(), ("role", "main"), None),
)

ANY_TAG_RULES = tuple((rank, r) for rank, r in enumerate(CONTENT_RULES) if not r[0])
RULES_BY_TAG = {
    name: tuple((rank, r) for rank, r in enumerate(CONTENT_RULES) if r[0] in (name, ""))
    for name in {r[0] for r in CONTENT_RULES if r[0]}
}

# Page furniture that is never part of an answer.
CHROME_TAGS = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "nav",
        "footer",
        "aside",
        "form",
        "button",
        "svg",
        "iframe",
        "input",
        "select",
        "textarea",
        "dialog",
    }
)
CHROME_ROLES = frozenset({"navigation", "search", "banner", "contentinfo"})
CHROME_CLASSES = frozenset(
    {
        "headerlink",
        "hash-link",
        "anchor-link",
        "sphinxsidebar",
        "related",
        "rst-footer-buttons",
        "md-sidebar",
        "md-source-file",
        "md-content__button",
        "md-footer",
        "md-header",
        "md-tabs",
        "theme-edit-this-page",
        "theme-doc-footer",
        "theme-doc-breadcrumbs",
        "theme-doc-toc-mobile",
        "theme-doc-version-badge",
        "pagination-nav",
        "breadcrumbs",
        "edit-this-page",
        "toc",
        "sidebar",
        "linenos",
        "linenodiv",
        "copybutton",
        "skip-link",
        "visually-hidden",
        "sr-only",
    }
)
ANCHOR_CLASSES = frozenset({"headerlink", "hash-link", "anchor-link"})
LINE_NUMBER_CLASSES = frozenset({"linenos", "lineno", "gp-hidden"})
EDIT_LINK = re.compile(r"^\s*(edit (this page|on github|on gitlab)|view (page )?source)\s*$", re.I)

BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
LANGUAGE_CLASS = re.compile(r"^(?:language|lang|highlight|sourceCode)-([\w+#.-]+)$")
NOT_LANGUAGES = frozenset({"default", "none", "text", "plain", "notranslate", "highlight"})
TITLE_SUFFIX = re.compile(r"\s+(?:[|\u2014\u2013\u00b7\u00bb]|-)\s+[^|\u2014\u2013\u00b7\u00bb]+$")
WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Extracted:
    """What one HTML page yields: title, Markdown text, links, canonical URL, or a skip reason."""

    url: str
    title: str = ""
    text: str = ""
    content_hash: str = ""
    links: tuple[str, ...] = ()
    canonical: str | None = None
    skip_reason: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


def content_hash(title: str, text: str) -> str:
    """A stable fingerprint of what would be uploaded for a page."""
    return hashlib.sha256(f"{title}\n\n{text}".encode()).hexdigest()


def extract(html: str | bytes, url: str) -> Extracted:
    """Parse one page: main content as Markdown, its title, outgoing links and canonical URL."""
    # Splitting class and rel into lists costs a fifth of the parse; _words() splits on demand.
    soup = BeautifulSoup(html, "lxml", multi_valued_attributes=None)
    links = tuple(page_links(soup, url))
    canonical = _canonical(soup, url)
    robots = _meta(soup, "robots").lower()
    if "noindex" in robots:
        return Extracted(url, links=links, canonical=canonical, skip_reason="marked noindex")
    root = main_content(soup)
    page_title = title_of(soup, root)
    if root is None:
        return Extracted(url, page_title, links=links, canonical=canonical, skip_reason="no body")
    strip_chrome(root)
    try:
        text = to_markdown(root, url)
    except RecursionError:
        # Pathologically nested markup: keep the words, lose the structure.
        lines = (WHITESPACE.sub(" ", line).strip() for line in root.get_text("\n").splitlines())
        text = "\n\n".join(line for line in lines if line) + "\n"
    body_chars = len(WHITESPACE.sub("", _without_headings(text)))
    if body_chars < MIN_TEXT_CHARS:
        return Extracted(
            url, page_title, links=links, canonical=canonical, skip_reason="no text content"
        )
    return Extracted(
        url,
        page_title,
        text,
        content_hash(page_title, text),
        links,
        canonical,
    )


def _without_headings(markdown: str) -> str:
    """The Markdown without heading lines, to judge whether a page says anything."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("#"))


def _tags(node: Tag) -> Iterator[Tag]:
    """Every element below `node` in document order (cheaper than find_all's filters)."""
    for item in node.descendants:
        if isinstance(item, Tag):
            yield item


def _head(soup: BeautifulSoup) -> Tag:
    """Where meta, link and base tags live; searching only there keeps big pages cheap."""
    return soup.head if isinstance(soup.head, Tag) else soup


def _words(value: object) -> list[str]:
    """A space-separated attribute (class, rel) as a list."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split() if value else []


def _meta(soup: BeautifulSoup, name: str) -> str:
    """The content of a `<meta name=...>` tag, or ''."""
    tag = _head(soup).find("meta", attrs={"name": name})
    value = tag.get("content") if isinstance(tag, Tag) else None
    return value if isinstance(value, str) else ""


def _canonical(soup: BeautifulSoup, url: str) -> str | None:
    """The page's `<link rel=canonical>` made absolute, if it has one."""
    for link in _head(soup).find_all("link", href=True):
        if "canonical" in (r.lower() for r in _words(link.get("rel"))):
            href = str(link["href"]).strip()
            if href:
                return urljoin(url, href)
    return None


def page_links(soup: BeautifulSoup, url: str) -> list[str]:
    """Every http(s) link of the page (navigation included), absolute and without fragments."""
    base = url
    base_tag = _head(soup).find("base", href=True)
    if isinstance(base_tag, Tag):
        base = urljoin(url, str(base_tag["href"]))
    hrefs: dict[str, None] = {}
    for a in _tags(soup):
        if a.name not in ("a", "area") or "nofollow" in _words(a.get("rel")):
            continue
        href = str(a.get("href") or "").strip().split("#", 1)[0]
        if href and not href.startswith(("mailto:", "javascript:", "tel:", "data:")):
            hrefs[href] = None
    links: dict[str, None] = {}
    for href in hrefs:
        absolute = urljoin(base, href)
        if absolute.startswith(("http://", "https://")):
            links[absolute] = None
    return list(links)


def main_content(soup: BeautifulSoup) -> Tag | None:
    """The element holding the page's own content, by generator conventions or by text mass."""
    # One walk over the tree checks every rule (CSS selectors would walk it once per rule).
    found: dict[int, Tag] = {}
    for tag in _tags(soup):
        for rank, rule in RULES_BY_TAG.get(tag.name, ANY_TAG_RULES):
            if rank not in found and _matches(tag, rule):
                found[rank] = tag
    for rank in sorted(found):
        if _text_length(found[rank]) >= MIN_TEXT_CHARS:
            return found[rank]
    body = soup.body or soup
    return _largest_block(body) if isinstance(body, Tag) else None


def _matches(tag: Tag, rule: ContentRule) -> bool:
    name, classes, attribute, ancestor = rule
    if name and tag.name != name:
        return False
    if classes and not classes.issubset(_classes(tag)):
        return False
    if attribute is not None and tag.get(attribute[0]) != attribute[1]:
        return False
    if ancestor is not None:
        parent_name, parent_class = ancestor
        return any(
            p.name == parent_name and (not parent_class or parent_class in _classes(p))
            for p in tag.parents
        )
    return True


def _text_length(tag: Tag) -> int:
    return len(WHITESPACE.sub("", tag.get_text()))


def _largest_block(body: Tag) -> Tag:
    """The descendant whose paragraphs hold the most text (a readability-style fallback)."""
    scores: dict[int, tuple[int, Tag]] = {}
    for p in body.find_all(["p", "pre", "li", "td"]):
        parent = p.parent
        if not isinstance(parent, Tag) or parent.name in ("nav", "footer", "header", "aside"):
            continue
        length = _text_length(p)
        for owner, weight in ((parent, 1.0), (parent.parent, 0.5)):
            if isinstance(owner, Tag):
                score, _ = scores.get(id(owner), (0, owner))
                scores[id(owner)] = (score + int(length * weight), owner)
    if not scores:
        return body
    return max(scores.values(), key=lambda pair: pair[0])[1]


def strip_chrome(root: Tag) -> None:
    """Remove navigation, headers, footers, sidebars, edit links, scripts and styles in place."""
    for comment in [c for c in root.descendants if isinstance(c, Comment)]:
        comment.extract()
    doomed = [tag for tag in _tags(root) if _is_chrome(tag)]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()
    # A site header carries no heading of the page's own; Docusaurus wraps its h1 in <header>.
    headers = [t for t in _tags(root) if t.name == "header"]
    for header in headers:
        if not header.decomposed and not any(t.name in HEADINGS for t in _tags(header)):
            header.decompose()
    for a in [t for t in _tags(root) if t.name == "a"]:
        if not a.decomposed and EDIT_LINK.match(a.get_text()):
            a.decompose()


def _is_chrome(tag: Tag) -> bool:
    if tag.name in CHROME_TAGS or tag.get("role") in CHROME_ROLES:
        return True
    if tag.get("aria-hidden") == "true" or tag.has_attr("hidden"):
        return True
    return not CHROME_CLASSES.isdisjoint(_classes(tag))


def _drop_classed(tag: Tag, classes: frozenset[str]) -> None:
    """Remove the descendants of `tag` that have one of `classes`."""
    for found in [t for t in _tags(tag) if not classes.isdisjoint(_classes(t))]:
        if not found.decomposed:
            found.decompose()


def title_of(soup: BeautifulSoup, root: Tag | None) -> str:
    """The page's title: its first h1, else og:title, else <title> without the site suffix."""
    if root is not None:
        h1 = next((t for t in _tags(root) if t.name == "h1"), None)
        if isinstance(h1, Tag):
            _drop_classed(h1, ANCHOR_CLASSES)
            text = _clean(h1.get_text(" ")).strip("¶#§ ")
            if text:
                return text
    og = _head(soup).find("meta", attrs={"property": "og:title"})
    if isinstance(og, Tag) and isinstance(og.get("content"), str) and og["content"].strip():
        return _clean(str(og["content"]))
    if soup.title is not None:
        return TITLE_SUFFIX.sub("", _clean(soup.title.get_text()))
    return ""


def _clean(text: str) -> str:
    return WHITESPACE.sub(" ", text).strip()


def to_markdown(root: Tag, url: str) -> str:
    """Render an element's content as Markdown with absolute links."""
    blocks = _Renderer(url).blocks(root)
    text = "\n\n".join(b for b in blocks if b.strip())
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


class _Renderer:
    """A small HTML-to-Markdown renderer tuned for documentation pages."""

    def __init__(self, url: str) -> None:
        self.url = url

    # --- blocks -----------------------------------------------------------------------------

    def blocks(self, node: Tag) -> list[str]:
        """Render a container's children as a list of Markdown blocks."""
        out: list[str] = []
        inline: list[str] = []

        def flush() -> None:
            text = _squash("".join(inline))
            if text:
                out.append(text)
            inline.clear()

        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            if child.name in BLOCK_TAGS or self._has_block(child):
                flush()
                out.extend(self.block(child))
            else:
                inline.append(self.inline(child))
        flush()
        return out

    def _has_block(self, tag: Tag) -> bool:
        """Whether an inline-looking element (a span, a link) wraps block content."""
        return tag.name in ("span", "a", "font") and any(t.name in BLOCK_TAGS for t in _tags(tag))

    def block(self, tag: Tag) -> list[str]:
        """Render one block element."""
        name = tag.name
        if name in HEADINGS:
            return [self.heading(tag)]
        if name == "p":
            text = _squash(self.inline_children(tag))
            return [text] if text else []
        if name == "pre":
            return [self.code_block(tag)]
        if name in ("ul", "ol"):
            text = self.list_block(tag)
            return [text] if text else []
        if name == "table":
            return self.table(tag)
        if name == "hr":
            return ["---"]
        if name == "blockquote" or _is_admonition(tag):
            inner = "\n\n".join(self.blocks(tag))
            return [_prefix(inner, "> ")] if inner.strip() else []
        if name == "dl":
            return self.definitions(tag)
        if _is_code_container(tag):
            pre = tag.find("pre")
            if isinstance(pre, Tag):
                return [self.code_block(pre, _language(tag))]
        return self.blocks(tag)

    def heading(self, tag: Tag) -> str:
        """`## Title {#anchor}`: the anchor lets answers link to the section."""
        level = int(tag.name[1])
        anchor = _anchor(tag)
        _drop_classed(tag, ANCHOR_CLASSES)
        text = _squash(self.inline_children(tag)).strip("¶§ ")
        if not text:
            return ""
        suffix = f" {{#{anchor}}}" if anchor else ""
        return f"{'#' * level} {text}{suffix}"

    def code_block(self, pre: Tag, language: str = "") -> str:
        """A fenced block, with the language its highlighter named."""
        language = language or _language(pre) or _language_around(pre)
        for br in pre.find_all("br"):
            br.replace_with("\n")
        _drop_classed(pre, LINE_NUMBER_CLASSES)
        code = pre.get_text().strip("\n")
        fence = "```"
        while fence in code:
            fence += "`"
        return f"{fence}{language}\n{code}\n{fence}"

    def list_block(self, tag: Tag) -> str:
        """A (nested) bullet or numbered list."""
        ordered = tag.name == "ol"
        start = _int(tag.get("start"), 1) if ordered else 1
        lines: list[str] = []
        number = start
        for li in tag.find_all("li", recursive=False):
            marker = f"{number}. " if ordered else "- "
            number += 1
            # Tight lists: the item's paragraphs and nested lists follow on the next lines.
            text = "\n".join(self.blocks(li)) or "\u200b"
            lines.append(marker + _indent_rest(text, " " * len(marker)))
        return "\n".join(lines)

    def table(self, tag: Tag) -> list[str]:
        """A pipe table; its first row (or the thead) is the header."""
        rows: list[list[str]] = []
        header_rows = 0
        for tr in tag.find_all("tr"):
            if tr.find_parent("table") is not tag:
                continue
            cells = tr.find_all(["th", "td"], recursive=False)
            if not cells:
                continue
            row = [self.cell(c) for c in cells]
            for c in cells:
                # A cell spanning columns keeps the grid square.
                row.extend([""] * (_int(c.get("colspan"), 1) - 1))
            if tr.find_parent("thead") is not None:
                header_rows += 1
            rows.append(row)
        if not rows:
            return []
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        header = rows[0]
        body = rows[1:] if header_rows or len(rows) > 1 else []
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * width]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        caption = tag.find("caption")
        out = [_squash(self.inline_children(caption))] if isinstance(caption, Tag) else []
        return [*out, "\n".join(lines)]

    def cell(self, cell: Tag) -> str:
        """One table cell on one line (blocks joined with <br>)."""
        parts = [b.replace("\n", " ") for b in self.blocks(cell)]
        return " <br> ".join(p for p in parts if p).replace("|", "\\|")

    def definitions(self, tag: Tag) -> list[str]:
        """A definition list: each term in bold, its description indented under it."""
        out: list[str] = []
        for child in tag.find_all(["dt", "dd"], recursive=False):
            if child.name == "dt":
                term = _squash(self.inline_children(child))
                if term:
                    out.append(term if term.startswith("`") else f"**{term}**")
            else:
                inner = "\n\n".join(self.blocks(child))
                if inner.strip():
                    out.append(_prefix(inner, ": ", "  "))
        return out

    # --- inline -----------------------------------------------------------------------------

    def inline_children(self, tag: Tag) -> str:
        """The inline rendering of an element's children."""
        parts: list[str] = []
        for child in tag.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                parts.append(str(child))
            elif isinstance(child, Tag):
                parts.append(self.inline(child))
        return "".join(parts)

    def inline(self, tag: Tag) -> str:
        """Render one inline element."""
        name = tag.name
        if name == "br":
            return "\n"
        if name == "code" or name in ("kbd", "samp", "tt"):
            return _code_span(tag.get_text())
        if name == "a":
            return self.link(tag)
        if name == "img":
            alt = _clean(str(tag.get("alt") or ""))
            return f"![{alt}]({urljoin(self.url, str(tag.get('src') or ''))})" if alt else ""
        if name in ("strong", "b"):
            return _wrap(self.inline_children(tag), "**")
        if name in ("em", "i"):
            return _wrap(self.inline_children(tag), "*")
        if name in ("del", "s", "strike"):
            return _wrap(self.inline_children(tag), "~~")
        if name in BLOCK_TAGS:
            # A block inside an inline context (a table cell, a link): keep its text in line.
            return " " + " ".join(self.blocks(tag)) + " "
        return self.inline_children(tag)

    def link(self, tag: Tag) -> str:
        """`[text](absolute-url)`; links without text or target keep just their text."""
        text = self.inline_children(tag)
        href = str(tag.get("href") or "").strip()
        label = _squash(text)
        if not label:
            return ""
        if not href or href.startswith(("javascript:", "data:")):
            return text
        target = urljoin(self.url, href)
        if target == label:
            return f"<{target}>"
        return f"[{label}]({target.replace(' ', '%20').replace(')', '%29')})"


def _squash(text: str) -> str:
    """Collapse HTML whitespace, keeping the line breaks that <br> produced."""
    lines = [WHITESPACE.sub(" ", line).strip() for line in text.split("\n")]
    return "  \n".join(line for line in lines if line)


def _wrap(text: str, mark: str) -> str:
    inner = text.strip()
    if not inner:
        return text
    lead = " " if text[:1].isspace() else ""
    trail = " " if text[-1:].isspace() else ""
    return f"{lead}{mark}{_squash(inner)}{mark}{trail}"


def _code_span(text: str) -> str:
    """Inline code, fenced with enough backticks for what it contains."""
    code = WHITESPACE.sub(" ", text).strip()
    if not code:
        return ""
    ticks = "`"
    while ticks in code:
        ticks += "`"
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{ticks}{pad}{code}{pad}{ticks}"


def _prefix(text: str, first: str, rest: str | None = None) -> str:
    """Prefix every line (the first with `first`, the others with `rest`, default `first`)."""
    rest = first if rest is None else rest
    lines = text.split("\n")
    return "\n".join(
        (first if i == 0 else rest).rstrip() if not line else (first if i == 0 else rest) + line
        for i, line in enumerate(lines)
    )


def _indent_rest(text: str, pad: str) -> str:
    """Indent every line but the first, so nested blocks stay inside their list item."""
    lines = text.split("\n")
    return "\n".join([lines[0], *((pad + line) if line else "" for line in lines[1:])])


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _classes(tag: Tag) -> list[str]:
    return _words(tag.get("class"))


def _language(tag: Tag) -> str:
    """The language a highlighter recorded in the classes of `tag` or its <code> child."""
    candidates = [tag]
    code = tag.find("code", recursive=False)
    if isinstance(code, Tag):
        candidates.insert(0, code)
    for candidate in candidates:
        for cls in _classes(candidate):
            match = LANGUAGE_CLASS.match(cls)
            if match and match.group(1).lower() not in NOT_LANGUAGES:
                return match.group(1).lower()
        lang = candidate.get("data-lang") or candidate.get("data-language")
        if isinstance(lang, str) and lang.strip():
            return lang.strip().lower()
    return ""


def _language_around(pre: Tag) -> str:
    """Sphinx and MkDocs put the language on a wrapper a few levels above the <pre>."""
    parent = pre.parent
    for _ in range(4):
        if not isinstance(parent, Tag):
            break
        found = _language(parent)
        if found:
            return found
        parent = parent.parent
    return ""


def _is_code_container(tag: Tag) -> bool:
    """A highlighter's wrapper around one code block (possibly with a line-number table)."""
    if tag.name not in ("div", "figure"):
        return False
    classes = _classes(tag)
    return any(c.startswith(("highlight", "language-")) or c == "codehilite" for c in classes)


def _is_admonition(tag: Tag) -> bool:
    classes = _classes(tag)
    return tag.name == "details" or any(
        c in ("admonition", "theme-admonition", "note", "warning", "tip") for c in classes
    )


def _anchor(tag: Tag) -> str:
    """A heading's anchor: its id, its header link's target, or its section's id."""
    value = tag.get("id")
    if isinstance(value, str) and value:
        return value
    link = tag.find("a", href=re.compile(r"^#."))
    if isinstance(link, Tag):
        return str(link["href"])[1:]
    parent = tag.parent
    if isinstance(parent, Tag) and parent.name in ("section", "div"):
        first = parent.find(HEADINGS)
        pid = parent.get("id")
        if first is tag and isinstance(pid, str) and pid:
            return pid
    return ""
