"""The emulator answering from docschat's own docs as the demo uploads them: right page, whole
sentences, silence on what the docs do not cover, a new topic searched on its own words."""

from __future__ import annotations

import re

import pytest
from emulator_helpers import sdk
from openai import OpenAI

from emulator.search import NOT_FOUND, Answer, Bm25Index, answer, split_passages
from emulator.server import RunningEmulator
from proxy.cli.demo import build_site
from proxy.upstream.knowledge import PageFile, file_content
from scraper.extract import extract

BASE = "http://docs.test/"

# (question, the page it must cite, a word the answer must hold)
ON_TOPIC = [
    ("How do I set DATABASE_URL for PostgreSQL?", "deploying", "DATABASE_URL"),
    ("How do I run many processes on PostgreSQL?", "deploying", "Procfile"),
    ("How do I put the chat button on the left side of the page?", "widget", "bottom-left"),
    ("How do I set a keyboard shortcut to open the chat?", "widget", "data-shortcut"),
    ("What does the --max-pages flag do?", "scraping", "--max-pages"),
    ("How does the crawler handle robots.txt?", "scraping", "robots.txt"),
    ("What happens to pages that disappear from the site?", "scraping", "disappeared"),
    ("How do I run database migrations?", "deploying", "migrations"),
    ("When do I need Redis?", "deploying", "REDIS_URL"),
    ("Which header do the admin endpoints need?", "security", "DOCSCHAT_ADMIN_TOKEN"),
    ("How do I try docschat locally without an API key?", "getting-started", "demo"),
    (
        "How do I crawl a local build whose sitemap names the production host?",
        "scraping",
        "--map-sitemap",
    ),
]
OFF_TOPIC = [
    "What is the capital of France?",
    "Write me a short poem about cats.",
    "Who won the football world cup?",
]
# Close to the docs, but about something they never mention.
NEAR_MISS = [
    "How do I deploy docschat on Kubernetes?",
    "Does the widget support Vue components?",
    "How do I configure SAML single sign-on?",
]


@pytest.fixture(scope="module")
def pages() -> list[PageFile]:
    """The bundled docs rendered as the demo serves them, extracted as the crawler does."""
    found = []
    for name, (_, html) in build_site().pages.items():
        page = extract(html, BASE + name)
        found.append(PageFile(page.url, page.title, page.text))
    return found


@pytest.fixture(scope="module")
def index(pages: list[PageFile]) -> Bm25Index:
    """The pages as uploaded files (with the uploader's header lines), searchable."""
    passages = []
    for n, page in enumerate(pages):
        text = file_content(page).decode()
        passages += split_passages(f"file_{n}", page.url.rsplit("/", 1)[-1], text)
    return Bm25Index(passages)


def _cited_pages(reply: Answer) -> list[str]:
    return [s.citation.filename.removesuffix(".html") for s in reply.segments if s.citation]


@pytest.mark.parametrize(("question", "page", "word"), ON_TOPIC)
def test_questions_about_the_docs_cite_the_page_that_answers(
    index: Bm25Index, question: str, page: str, word: str
) -> None:
    reply = answer(question, index)
    assert _cited_pages(reply)[0] == page
    assert word in reply.text
    # Passages, not metadata: the uploader's header lines are never read out.
    assert "Title:" not in reply.text and "URL: http" not in reply.text


@pytest.mark.parametrize(("question", "page", "word"), ON_TOPIC)
def test_answers_are_one_to_three_whole_sentences(
    index: Bm25Index, question: str, page: str, word: str
) -> None:
    reply = answer(question, index)
    # Each segment is a sentence or a table row (or a code block that its sentence introduces).
    quoted = [s for s in reply.segments if not s.text.strip().startswith("```")]
    assert 1 <= len(quoted) <= 3, reply.text
    for segment in reply.segments:
        text = segment.text.strip()
        if not text or text.startswith("```"):
            continue
        # Starts like a sentence, ends like one: no "(several are." or "when it It adds".
        assert re.match(r"[A-Z0-9`*\"(]", text), text
        assert text[-1] in ".!?:)`", text
        if segment.citation is not None:
            assert text[-1] in ".!?:", "a citation sits where its sentence ends"


@pytest.mark.parametrize("question", OFF_TOPIC + NEAR_MISS)
def test_questions_the_docs_do_not_answer_get_no_citation(index: Bm25Index, question: str):
    reply = answer(question, index)
    assert reply.text == NOT_FOUND
    assert not reply.found


def test_a_new_topic_is_searched_on_its_own_words(index: Bm25Index) -> None:
    first = "How do I set DATABASE_URL for PostgreSQL?"
    assert answer(first, index).found
    switched = answer("What is the capital of France?", index, previous=first)
    assert switched.text == NOT_FOUND
    widget = answer("How do I set a keyboard shortcut to open the chat?", index, previous=first)
    assert _cited_pages(widget)[0] == "widget" and "DATABASE_URL" not in widget.text


def test_a_follow_up_leans_on_the_question_before(index: Bm25Index) -> None:
    earlier = "How do I change the accent colour of the widget?"
    follow = answer("What about the dark theme?", index, previous=earlier)
    assert _cited_pages(follow) == ["widget"] and "dark" in follow.text
    # ... but a follow-up about something the docs never mention is still not found.
    assert answer("and on macOS?", index, previous="How do I install docschat?").text == NOT_FOUND


def test_a_table_row_is_the_whole_answer_when_it_answers(index: Bm25Index) -> None:
    reply = answer("How do I put the chat button on the left side of the page?", index)
    assert reply.text.startswith("`data-position`")
    assert "`bottom-right` or `bottom-left`" in reply.text and "|" not in reply.text


def test_a_code_block_comes_whole_with_its_lead_sentence(index: Bm25Index) -> None:
    reply = answer("How do I run many processes on PostgreSQL?", index)
    assert "```\nrelease: docschat db upgrade\nweb: gunicorn" in reply.text
    assert reply.text.rstrip().endswith("```")
    lead = next(s for s in reply.segments if s.citation)
    assert lead.text.endswith("release command:")


def test_same_documents_and_question_give_the_same_answer(pages: list[PageFile]) -> None:
    def fresh() -> Bm25Index:
        passages = []
        for n, page in enumerate(pages):
            passages += split_passages(f"file_{n}", page.url, file_content(page).decode())
        return Bm25Index(passages)

    for question, _, _ in ON_TOPIC:
        assert answer(question, fresh()) == answer(question, fresh())


def test_the_api_switches_topic_and_marks_citations_at_sentence_ends(
    emu: RunningEmulator, pages: list[PageFile]
) -> None:
    client: OpenAI = sdk(emu)
    ids = [
        client.files.create(file=(f"page{n}.md", file_content(p)), purpose="assistants").id
        for n, p in enumerate(pages)
    ]
    store = client.vector_stores.create(name="docs", file_ids=ids)
    conversation = client.conversations.create()
    tools = [{"type": "file_search", "vector_store_ids": [store.id]}]

    def ask(question: str):
        return client.responses.create(
            model="gpt-4.1-mini", input=question, tools=tools, conversation=conversation.id
        )

    first = ask("How do I set DATABASE_URL for PostgreSQL?")
    text = first.output[-1].content[0]
    assert "DATABASE_URL" in text.text
    for note in text.annotations:
        assert note.type == "file_citation"
        assert text.text[note.index - 1] in ".!?:", "the marker belongs where a sentence ends"
    second = ask("What is the capital of France?")
    assert second.output_text == NOT_FOUND
    assert second.output[-1].content[0].annotations == []


def test_a_number_the_docs_never_hold_does_not_silence_a_question(index: Bm25Index) -> None:
    plain = answer("How do I install docschat with pip?", index)
    assert plain.found
    for n in (48213, 90817):  # numbers no page holds: the same answer as without them
        reply = answer(f"How do I install docschat with pip? ({n})", index)
        assert reply.found and reply.text == plain.text, (n, reply.text)
    for n in range(50):  # as the scale tests number their questions: never silenced
        assert answer(f"How do I install docschat? ({n})", index).found, n
