"""Passages, BM25 ranking and the cited answers built from them."""

from __future__ import annotations

from emulator_helpers import CONFIG, INSTALL

from emulator.search import NOT_FOUND, Bm25Index, answer, split_passages, split_tokens, terms


def _index() -> Bm25Index:
    return Bm25Index(
        split_passages("file_i", "install.md", INSTALL)
        + split_passages("file_c", "config.md", CONFIG)
    )


def test_tokens_join_back_to_the_text() -> None:
    text = "Install it: pip install docschat, then run `docschat demo`.  Done!"
    tokens = split_tokens(text)
    assert "".join(tokens) == text
    assert len(tokens) > 10


def test_terms_drop_stop_words_and_meet_across_word_forms() -> None:
    assert terms("How do I install it?") == terms("installing")
    assert terms("the of and") == []


def test_passages_follow_headings() -> None:
    passages = split_passages("f", "install.md", INSTALL)
    assert [p.heading for p in passages] == ["Installing", "Upgrading"]
    assert "pip install docschat" in passages[0].text


def test_best_passage_wins_and_is_cited() -> None:
    reply = answer("Which database is the default?", _index())
    assert reply.found
    assert reply.segments[-1].citation is not None
    assert reply.segments[-1].citation.file_id == "file_c"
    assert "SQLite is the default" in reply.text


def test_answers_are_deterministic() -> None:
    assert answer("How do I upgrade?", _index()) == answer("How do I upgrade?", _index())


def test_no_overlap_means_not_found() -> None:
    reply = answer("What is the capital of France?", _index())
    assert reply.text == NOT_FOUND
    assert not reply.found and reply.results == ()


def test_short_follow_up_uses_the_previous_question() -> None:
    alone = answer("and postgres?", _index())
    assert not alone.found
    follow = answer("what about upgrading?", _index(), previous="How do I install docschat?")
    assert follow.segments[-1].citation is not None
    assert follow.segments[-1].citation.file_id == "file_i"
