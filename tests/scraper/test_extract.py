"""Extraction on fixture pages of the common docs generators."""

from __future__ import annotations

import pytest

from scraper.extract import content_hash, extract
from tests.scraper.conftest import fixture_html


def test_sphinx_page_keeps_code_tables_lists_and_anchors():
    page = extract(fixture_html("sphinx"), "https://w.example/docs/install.html")
    assert page.skip_reason is None
    assert page.title == "Installing"
    text = page.text
    assert text.startswith("# Installing {#installing}\n")
    assert "## Configuration {#configuration}" in text
    assert "```console\n$ pip install widgets\n```" in text
    assert "```python\nfrom widgets import Widget\n\nw = Widget(size=3)\n```" in text
    assert (
        "| Option | Default | Meaning |\n|---|---|---|\n| `size` | 1 | How big the widget is |"
        in text
    )
    assert "- Supported platforms:\n  - Linux\n  - macOS" in text
    assert "[PyPI](https://pypi.org/project/widgets/)" in text
    assert "[Usage](https://w.example/docs/usage.html#usage)" in text
    assert "> Widgets never phones home." in text
    for chrome in ("Quick search", "Sidebar home link", "Created using Sphinx", "¶", "Navigation"):
        assert chrome not in text
    assert page.canonical == "https://w.example/docs/install.html"


def test_mkdocs_material_page_drops_line_numbers_and_edit_links():
    page = extract(fixture_html("mkdocs"), "https://g.example/deploying/")
    text = page.text
    assert page.title == "Deploying"
    assert "```yaml\nservices:\n  gizmo:\n    image: gizmo:latest\n```" in text
    assert "1. Download the binary.\n2. Create the service file:\n   - user `gizmo`" in text
    assert "restart *always*" in text
    assert "> Set `GIZMO_SECRET` before the first start." in text
    for chrome in (
        "Edit this page",
        "Home nav entry",
        "Table of contents",
        "Last update",
        "Made with",
    ):
        assert chrome not in text
    assert "__codelineno" not in text


def test_docusaurus_page_keeps_its_header_title_and_prism_code():
    page = extract(fixture_html("docusaurus"), "https://s.example/docs/quick-start")
    text = page.text
    assert page.title == "Quick start"
    assert text.startswith("# Quick start\n")
    assert "## Install the CLI {#install-the-cli}" in text
    assert "```bash\nnpm install --global sprocket\nsprocket --version\n```" in text
    assert '```js\nexport default { name: "web" };\n```' in text
    assert "| `sprocket up` | Starts everything |" in text
    for chrome in ("Home crumb", "Sidebar intro", "Edit this page", "Previous", "Copy", "\u200b"):
        assert chrome not in text
    assert page.canonical == "https://s.example/docs/quick-start"
    assert "https://s.example/docs/intro" in page.links


def test_generic_page_falls_back_to_the_largest_text_block():
    page = extract(fixture_html("generic"), "https://acme.example/faq.html")
    assert page.title == "Frobnicator FAQ"
    assert "### How do I reset it?" in page.text
    assert "Hold the reset button" in page.text
    assert "Copyright" not in page.text and "B link" not in page.text
    assert "https://acme.example/products" in page.links


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("<html><body><nav><a href='/x'>Home</a></nav><main></main></body></html>", "no text"),
        (
            "<html><head><meta name='robots' content='noindex'></head><body>x</body></html>",
            "noindex",
        ),
    ],
)
def test_pages_without_content_are_skipped_with_a_reason(html: str, reason: str):
    page = extract(html, "https://x.example/")
    assert page.skip_reason is not None and reason in page.skip_reason


def test_code_fences_survive_backticks_and_title_falls_back_to_title_tag():
    html = (
        "<html><head><title>Fences - Site</title></head><body><main>"
        "<p>Some text around a code block with backticks inside.</p>"
        "<pre><code class='language-markdown'>```\ninner\n```</code></pre></main></body></html>"
    )
    page = extract(html, "https://x.example/f")
    assert page.title == "Fences"
    assert "````markdown\n```\ninner\n```\n````" in page.text


def test_content_hash_follows_the_text():
    one = extract(fixture_html("sphinx"), "https://w.example/a")
    again = extract(fixture_html("sphinx"), "https://w.example/a")
    changed = extract(fixture_html("sphinx").replace("blue", "red"), "https://w.example/a")
    assert one.content_hash == again.content_hash == content_hash(one.title, one.text)
    assert changed.content_hash != one.content_hash


def test_pathologically_nested_markup_keeps_its_words():
    html = "<html><body><main>" + "<div>" * 3000 + "<p>Deep words survive here.</p>"
    page = extract(html + "</div>" * 3000 + "</main></body></html>", "https://x.example/")
    assert page.skip_reason is None and "Deep words survive here." in page.text
