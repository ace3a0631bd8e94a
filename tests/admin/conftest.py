"""Console fixtures: a live stack with an admin token, seeded with the questions an operator
looks at (uncovered, disliked, failed, hostile), and Chromium to drive the console page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.security.conftest import launch, shutdown
from tests.support import Stack

TOKEN = "console-token-0123456789-abcdefghijklmnop"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
HANDOFF = "https://support.example.com/new?subject={question}"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]

# Questions the sample docs cannot answer (nothing in them matches), in two topics.
WEATHER = ["What is the weather in Paris today?", "weather forecast for Paris", "Paris weather?"]
BREAD = ["How do I bake sourdough bread?", "sourdough bread baking tips"]
COVERED = "How do I install docschat?"
DISLIKE_COMMENT = "wanted more detail about Windows"
FAILED = "Which database does docschat use by default?"
# Stored hostile input: it must stay text wherever the console shows it.
HOSTILE_QUESTION = '<img src=x onerror="window.__pwned=1"> zebra migration <b>bold</b>'
HOSTILE_COMMENT = "<script>window.__pwned=2</script><svg onload=window.__pwned=3>"


@dataclass
class Seeded:
    """What the seeding asked, for assertions."""

    conversations: dict[str, str] = field(default_factory=dict)  # first question -> session id
    answers: dict[str, dict] = field(default_factory=dict)  # question -> its answer


def seed(stack: Stack, *, hostile: bool = True) -> Seeded:
    """Ask and rate as readers would; each conversation waits for its answers."""
    seeded = Seeded()

    def conversation(*questions: str) -> str:
        sid = stack.new_session()
        for i, q in enumerate(questions, 1):
            stack.ask(sid, q)
            seeded.answers[q] = stack.answers(sid, i)[i - 1]
        seeded.conversations[questions[0]] = sid
        return sid

    conversation(WEATHER[0], BREAD[0])
    conversation(WEATHER[1])
    conversation(WEATHER[2], BREAD[1])
    sid = conversation(COVERED)
    answer = seeded.answers[COVERED]
    assert answer["sources"], answer  # answered from the docs...
    r = stack.http.post(
        f"/api/sessions/{sid}/messages/{answer['id']}/feedback",
        json={"rating": "down", "comment": DISLIKE_COMMENT},
    )
    assert r.status_code == 200, r.text  # ...and still disliked
    stack.faults({"kind": "run_failed", "times": 20})
    conversation(FAILED)
    assert seeded.answers[FAILED]["status"] == "error"
    httpx.delete(f"{stack.emulator_url}/_emulator/faults", timeout=10).raise_for_status()
    if not hostile:
        return seeded
    sid = conversation(HOSTILE_QUESTION)
    answer = seeded.answers[HOSTILE_QUESTION]
    r = stack.http.post(
        f"/api/sessions/{sid}/messages/{answer['id']}/feedback",
        json={"rating": "down", "comment": HOSTILE_COMMENT},
    )
    assert r.status_code == 200, r.text
    return seeded


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Seeded]]:
    """One seeded proxy (SQLite) with the console on, shared by the console tests."""
    tmp = tmp_path_factory.mktemp("console")
    env = {
        "DOCSCHAT_ADMIN_TOKEN": TOKEN,
        "DOCSCHAT_HANDOFF_URL": HANDOFF,
        "DOCSCHAT_RETENTION_DAYS": "90",
        "DOCSCHAT_TRUSTED_PROXIES": "1",
    }
    stack = launch(tmp, f"sqlite:///{tmp / 'console.db'}", env)
    try:
        seeded = seed(stack)
        yield stack, seeded
    finally:
        shutdown(stack)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium (Debian's) per test module."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
