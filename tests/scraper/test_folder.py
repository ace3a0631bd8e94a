"""Local folders of Markdown, MDX and built HTML read as a published site, then synced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.cli.main import parser
from scraper.folder import FolderOptions, read_folder
from tests.scraper.test_command import run

BASE = "https://docs.example.com/product/"

MDX = """\
---
title: "API reference"
---
import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';
export const version = "2.0";

# The API

{/* a note for the writers only */}
<Tabs groupId="lang">
  <TabItem value="py" label="Python">
Call `client.ask()` with the question.
  </TabItem>
</Tabs>

<Admonition type="tip">Keep the token secret.</Admonition>

```js
import { ask } from "docschat";
<Widget open />
```
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_docs(root: Path) -> None:
    write(
        root,
        {
            "index.md": "# Welcome\n\nThe product documentation starts here.\n",
            "guide/index.md": "# Guide\n\nEverything about using the product.\n",
            "guide/install.md": (
                "---\ntitle: Install the product\nsidebar_position: 2\n---\n# Installing\n\n"
                "Run the installer, then read [the configuration](../config.md#options).\n"
            ),
            "config.md": "# Configuration\n\n## Options\n\nEvery option the product has.\n",
            "api.mdx": MDX,
            "built/page.html": (
                "<html><head><title>Built page</title></head><body><main><h1>Built page</h1>"
                "<p>A page someone built to HTML already.</p></main></body></html>"
            ),
            "_drafts/wip.md": "# Draft\n\nNot ready to be read by anyone yet.\n",
            "_snippet.md": "A snippet that other pages include somewhere.\n",
            ".github/contributing.md": "# Contributing\n\nHow to send changes to us.\n",
            "img/shot.png": "not really a picture",
        },
    )


def test_a_folder_becomes_the_published_pages(tmp_path: Path):
    make_docs(tmp_path)
    report = read_folder(tmp_path, FolderOptions(BASE))
    pages = {r.url: r.page for r in report.pages}
    assert sorted(pages) == [
        BASE,
        BASE + "api/",
        BASE + "built/page.html",
        BASE + "config/",
        BASE + "guide/",
        BASE + "guide/install/",
    ]
    install = pages[BASE + "guide/install/"]
    assert install is not None
    assert install.title == "Install the product"  # the front matter wins over the heading
    assert "sidebar_position" not in install.text
    assert f"[the configuration]({BASE}config/#options)" in install.text
    assert pages[BASE + "config/"].title == "Configuration"
    assert pages[BASE + "built/page.html"].title == "Built page"

    api = pages[BASE + "api/"]
    assert api.title == "API reference"
    assert "import Tabs" not in api.text and "export const" not in api.text
    assert "<Tabs" not in api.text and "TabItem" not in api.text and "Admonition" not in api.text
    assert "for the writers" not in api.text
    assert "Call `client.ask()` with the question." in api.text
    assert "Keep the token secret." in api.text
    # Code blocks are left as they are.
    assert 'import { ask } from "docschat";\n<Widget open />' in api.text


def test_url_style_html_and_included_underscores(tmp_path: Path):
    make_docs(tmp_path)
    include = ("_drafts/*", "guide/*", "*.mdx", "index.md")
    options = FolderOptions(BASE, "html", include=include)
    report = read_folder(tmp_path, options)
    urls = sorted(r.url for r in report.pages)
    assert BASE + "guide/install.html" in urls and BASE + "api.html" in urls
    assert BASE in urls and BASE + "guide/" in urls
    assert BASE + "_drafts/wip.html" in urls
    # --include names the only files read (by path in the folder, or by URL path).
    assert not any("contributing" in u or "_snippet" in u or "config" in u for u in urls)


def test_scrape_a_folder_uploads_only_what_changed(tmp_path: Path, emulator, capsys):
    docs = tmp_path / "docs"
    make_docs(docs)
    db = tmp_path / "db"
    db.mkdir()

    def scrape(*extra: str) -> dict:
        code, out, err = run(capsys, db, emulator, "scrape", str(docs), "--base-url", BASE,
                             "--json", *extra)  # fmt: skip
        assert code == 0, out + err
        return json.loads(out)

    first = scrape()
    assert (first["pages"], first["new"], first["uploaded"]) == (6, 6, 6)

    (docs / "config.md").write_text("# Configuration\n\nEvery option, now with defaults.\n")
    (docs / "api.mdx").unlink()
    again = scrape()
    assert (again["changed"], again["uploaded"], again["unchanged"]) == (1, 1, 4)
    assert again["removed_pages"] == [BASE + "api/"]

    _code, out, _ = run(capsys, db, emulator, "docs", "--json")
    stored = {d["url"] for d in json.loads(out)}
    assert BASE + "api/" not in stored and BASE + "config/" in stored


def test_a_folder_needs_its_base_url(tmp_path: Path, emulator, capsys):
    make_docs(tmp_path / "docs")
    code, _, err = run(capsys, tmp_path, emulator, "scrape", str(tmp_path / "docs"))
    assert code == 2 and "give --base-url" in err
    # A path that is no folder is refused with the other arguments, before anything runs.
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["scrape", str(tmp_path / "nowhere"), "--base-url", BASE])
    assert exited.value.code == 2
    assert "not an http(s) URL or a folder" in capsys.readouterr().err
