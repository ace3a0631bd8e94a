"""Answers become numbered source links and HTML that cannot run script or load remote content."""

import json

import pytest
from bs4 import BeautifulSoup

from proxy.answers import render
from proxy.answers.render import ALLOWLIST, allowlist, render_answer, to_html, visible
from proxy.upstream.base import Answer, Citation

PAGES = {"file-a": ("Installing", "https://docs.example/install", "")}


def test_assistants_markers_become_numbered_links():
    text = "Run pip install docschat【4:0†install.md】. Done."
    start = text.index("【")
    end = text.index("】") + 1
    out = render_answer(Answer("msg_1", text, [Citation(start, end, "file-a")]), PAGES)
    assert out.text == "Run pip install docschat [\\[1\\]](https://docs.example/install). Done."
    assert '<a href="https://docs.example/install" rel="noopener noreferrer">[1]</a>' in out.html
    assert out.sources == [{"title": "Installing", "url": "https://docs.example/install"}]


def test_point_citations_and_unknown_files_are_numbered_once_each():
    text = "First fact. Second fact. Third fact."
    cites = [
        Citation(11, 11, "file-a"),
        Citation(24, 24, "file-x", "other.md"),
        Citation(36, 36, "file-a"),
    ]
    out = render_answer(Answer("resp_1", text, cites), PAGES)
    assert out.sources == [
        {"title": "Installing", "url": "https://docs.example/install"},
        {"title": "other.md", "url": ""},
    ]
    assert out.text.count("[\\[1\\]]") == 2 and "\\[2\\]" in out.text


def test_html_is_inert():
    payloads = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "![remote](https://evil.example/x.png)",
        '<a href="https://x" onclick="alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
    ]
    for payload in payloads:
        soup = BeautifulSoup(to_html(payload), "html.parser")
        assert not soup.find_all(["script", "img", "iframe", "object", "embed", "style"]), payload
        for tag in soup.find_all(True):
            assert not [a for a in tag.attrs if a.startswith("on")], payload
            assert not tag.get("href", "").startswith("javascript:"), payload


def test_visible_text_hides_markers_even_half_written():
    assert visible("Hello【4:0†a.md】 world") == "Hello world"
    assert visible("Hello【4:0†a") == "Hello"


def test_markdown_keeps_tables_code_and_lists():
    html = to_html(
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(1)\n```\n\n- one\n  - two\n"
    )
    assert (
        "<table>" in html and '<code class="language-python">' in html and html.count("<ul>") == 2
    )


def test_pages_named_by_search_results_link_when_the_table_does_not_know_them():
    answer = Answer(
        "resp_2",
        "Use PostgreSQL.",
        [Citation(15, 15, "file-z")],
        {"file-z": ("Deploying", "https://docs.example/deploy")},
    )
    out = render_answer(answer, {})
    assert out.sources == [{"title": "Deploying", "url": "https://docs.example/deploy"}]


def test_the_allowlist_is_the_widgets_file():
    listed = json.loads(ALLOWLIST.read_text(encoding="utf-8"))
    allowed = allowlist()
    assert allowed.tags == set(listed["tags"])
    assert allowed.attributes == {tag: set(names) for tag, names in listed["attributes"].items()}
    assert allowed.url_schemes == set(listed["url_schemes"])


def test_a_tag_taken_off_the_allowlist_file_is_stripped(tmp_path, monkeypatch: pytest.MonkeyPatch):
    listed = json.loads(ALLOWLIST.read_text(encoding="utf-8"))
    listed["tags"].remove("table")
    shorter = tmp_path / "allowlist.json"
    shorter.write_text(json.dumps(listed))
    monkeypatch.setattr(render, "ALLOWLIST", shorter)
    allowlist.cache_clear()
    try:
        html = to_html("| a |\n|---|\n| 1 |\n")
    finally:
        allowlist.cache_clear()  # the next caller reads the real file again
    assert "<table>" not in html and "<td>1</td>" in html
