"""Grouping of similar questions: paraphrases meet, distinct questions sharing a name do not."""

from __future__ import annotations

from proxy.answers.grouping import THRESHOLD, content_words, group, similarity, weights

PARAPHRASE_SETS = [
    [
        "How do I install docschat?",
        "installing docschat",
        "How can I install docschat with pip?",
        "docschat installation steps",
        "What's the way to install DocsChat?",
    ],
    [
        "How do I change the port docschat listens on?",
        "Which port does docschat listen on, and can I change it?",
        "change docschat port",
    ],
    [
        "Can I use PostgreSQL as the database?",
        "Does it support a PostgreSQL database?",
        "postgresql database support",
    ],
    [
        "How do I configure the allowed origins?",
        "configuring allowed origins",
        "Where is the allowed origins configuration?",
    ],
]
# Each names the product; each asks about something else.
DISTINCT = [
    "How do I install docschat?",
    "How do I configure docschat's database?",
    "Does docschat support Redis?",
    "How do I change docschat's port?",
    "Can docschat answer in French?",
    "How much does docschat cost?",
    "docschat widget colors",
    "Is docschat open source?",
]


def test_words_are_normalized() -> None:
    assert content_words("How do I INSTALL docschat?") == content_words("installing DocsChat")
    assert content_words("installation") == content_words("install")
    assert content_words("configure") == content_words("configuration")
    assert content_words("the of and to") == frozenset()


def test_each_paraphrase_set_is_one_group() -> None:
    for paraphrases in PARAPHRASE_SETS:
        groups = group(paraphrases)
        assert len(groups) == 1, (paraphrases, [g.items for g in groups])
        assert groups[0].items == list(range(len(paraphrases)))


def test_distinct_questions_sharing_the_product_name_stay_apart() -> None:
    groups = group(DISTINCT)
    assert len(groups) == len(DISTINCT), [[DISTINCT[i] for i in g.items] for g in groups]


def test_mixed_questions_fall_into_their_sets() -> None:
    # Interleaved, as readers ask them; every set is found whole and nothing else joins it.
    mixed = [q for qs in zip(*[s[:3] for s in PARAPHRASE_SETS], strict=True) for q in qs]
    others = [q for q in DISTINCT if "port" not in q and "install" not in q]
    mixed += others
    groups = group(mixed)
    found = sorted(sorted(mixed[i] for i in g.items) for g in groups)
    expected = sorted([sorted(s[:3]) for s in PARAPHRASE_SETS] + [[q] for q in others])
    assert found == expected


def test_grouping_is_deterministic_and_ids_are_stable() -> None:
    questions = [q for s in PARAPHRASE_SETS for q in s] + DISTINCT
    first = group(questions)
    again = group(list(questions))
    assert [(g.id, g.items, g.label) for g in first] == [(g.id, g.items, g.label) for g in again]
    # A later question does not rename the group it joins.
    more = group([*questions, "how to install docschat on windows"])
    assert {g.id for g in first} <= {g.id for g in more}


def test_threshold_separates_the_sets() -> None:
    words = [content_words(q) for q in DISTINCT]
    weight = weights(words)
    for i, a in enumerate(words):
        for b in words[i + 1 :]:
            assert similarity(a, b, weight) < THRESHOLD
