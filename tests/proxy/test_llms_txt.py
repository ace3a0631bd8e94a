"""GET /llms.txt and /llms-full.txt, and `docschat llms-txt`: the stored docs for tools to read."""

from __future__ import annotations

from collections.abc import Callable

from proxy.documents.llms import Page, description, llms_txt, site_title
from tests.support import Stack, run_docschat


def test_llms_txt_lists_every_stored_page_with_its_first_sentence(
    start_stack: Callable[..., Stack],
) -> None:
    stack = start_stack(DOCSCHAT_SITE_SUMMARY="How to install and configure docschat.")
    r = stack.http.get("/llms.txt")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["access-control-allow-origin"] == "*"
    # The shallowest page names the site when no name is set; pages come in address order.
    assert r.text == (
        "# Configuration\n\n"
        "> How to install and configure docschat.\n\n"
        "## Docs\n\n"
        "- [Configuration](<http://docs.test/config>): The DATABASE_URL setting chooses the "
        "database.\n"
        "- [Installing](<http://docs.test/install>): Install the package with pip install "
        "docschat.\n"
    )
    full = stack.http.get("/llms-full.txt")
    assert full.status_code == 200
    assert "Source: <http://docs.test/install>" in full.text
    assert "Then run docschat demo to start the local demo on port 8000." in full.text
    assert full.text.index("## Configuration") < full.text.index("## Installing")

    # The command prints the same files for a docs build to publish.
    printed = run_docschat("llms-txt", env=stack.env)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == r.text
    printed_full = run_docschat("llms-txt", "--full", env=stack.env)
    assert printed_full.stdout == full.text

    # Described with the rest of the API.
    paths = stack.http.get("/api/openapi.json").json()["paths"]
    assert {"/llms.txt", "/llms-full.txt"} <= paths.keys()


def test_the_site_name_setting_wins_and_an_empty_store_is_still_a_valid_file(
    start_stack: Callable[..., Stack],
) -> None:
    stack = start_stack(DOCSCHAT_SITE_NAME="Acme Docs")
    assert stack.http.get("/llms.txt").text.startswith("# Acme Docs\n\n## Docs\n")
    assert site_title([], "") == "Documentation"
    assert llms_txt([], "Documentation", "") == "# Documentation\n\n## Docs\n\n"


def test_descriptions_are_one_plain_sentence_and_titles_cannot_break_their_links() -> None:
    text = (
        "# Guide\n\n- a list item\n\n```\ncode\n```\n\n"
        "Use **`docschat serve`** with [gunicorn](https://gunicorn.org) in production. More."
    )
    assert description(text) == "Use docschat serve with gunicorn in production."
    assert description("# Only a heading") == ""
    long = description("word " * 100)
    assert long.endswith("…") and len(long) <= 161
    page = Page("http://docs.test/x", "Evil](javascript:alert(1)) [x", "Body.")
    assert "- [Evil)(javascript:alert(1)) (x](<http://docs.test/x>): Body." in llms_txt(
        [page], "T", ""
    )
