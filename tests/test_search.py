"""Hybrid recall helpers: the FTS5 query is always safe, fusion scores stay similarities, and the
dedup thresholds sort real paraphrases, restatements and updates the way bench/dedup_threshold says."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownsona.embeddings.builtin import BuiltinEmbedder
from ownsona.memory.search import (
    BM25_SATURATION,
    FTS_TOKENIZER,
    NEAR_DUPLICATE_THRESHOLD,
    SKIP_IF_NEAR_THRESHOLD,
    VECTOR_WEIGHT,
    dedup_thresholds,
    fts_query,
    fuse,
    query_terms,
)

FACTS = {
    1: "My sister Maria was born on 14 March 1988.",
    2: "Maria works as a nurse at St. Mary's Hospital.",
    3: "I always book an aisle seat on flights.",
    4: "Our office moved to Zürich last spring.",
    5: "Tom runs the Atlas project; it ships on 3 May.",
    6: 'Notes about "quotes" AND operators OR NEAR(things) * col:value',
}


@pytest.fixture
def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE facts USING fts5(text, tokenize = '{FTS_TOKENIZER}')")
    db.executemany("INSERT INTO facts (rowid, text) VALUES (?, ?)", FACTS.items())
    return db


def search(db: sqlite3.Connection, text: str) -> list[int]:
    match = fts_query(text)
    if match is None:
        return []
    rows = db.execute("SELECT rowid FROM facts WHERE facts MATCH ? ORDER BY bm25(facts), rowid", (match,))
    return [rowid for (rowid,) in rows]


def test_query_keeps_content_words_quoted_and_ored() -> None:
    assert query_terms("When is Maria's birthday, and what does MARIA do?") == ["maria", "birthday"]
    assert fts_query("When is Maria's birthday?") == '"maria" OR "birthday"'
    assert fts_query("what is it?") is None
    assert fts_query("   ") is None


def test_diacritics_fold_and_words_match_whole(fts: sqlite3.Connection) -> None:
    assert search(fts, "When did we move to Zurich?") == [4]  # ü folds to u
    assert search(fts, "Who runs Atlas?")[0] == 5
    assert search(fts, "which flight seat") == [3]  # no stemming: "seat" matches, "seats" would not


@pytest.mark.parametrize(
    "text",
    ['"', 'a" OR "b', "NEAR(a b)", "col:value", "*", "^start", "a AND", "(unbalanced", "x - y + z",
     "ünï 日本語 🎉"],
)
def test_query_syntax_typed_by_a_user_is_inert(fts: sqlite3.Connection, text: str) -> None:
    search(fts, text)  # raises sqlite3.OperationalError if the text leaked into FTS5 syntax


def test_operators_in_text_are_matched_as_words(fts: sqlite3.Connection) -> None:
    assert search(fts, 'quotes "AND" NEAR col') == [6]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_query_fts5_accepts(text: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE facts USING fts5(text, tokenize = '{FTS_TOKENIZER}')")
    match = fts_query(text)
    if match is not None:
        db.execute("SELECT rowid FROM facts WHERE facts MATCH ?", (match,)).fetchall()


def test_fusion_ranks_agreement_first_and_scores_stay_similarities() -> None:
    bm25 = [(7, -9.0), (3, -4.0), (9, -1.0)]
    vectors = [(3, 0.82), (5, 0.80), (7, 0.40), (9, -0.2)]
    fused = fuse(bm25, vectors, limit=10)
    # 3 is strong in both lists; 5 (a close vector, no keyword) outranks 7 (best keywords, far vector)
    assert [memory_id for memory_id, _ in fused] == [3, 5, 7, 9]
    assert all(0.0 <= score <= 1.0 for _, score in fused)
    assert fuse(bm25, vectors, limit=2) == fused[:2]
    assert fuse([], [], limit=5) == [] and fuse(bm25, vectors, limit=0) == []


def test_fusion_scores_are_absolute_not_relative_to_the_query() -> None:
    """So a `min_score` means the same whether or not the query had a word in common."""
    expected = [(1, round(VECTOR_WEIGHT * 0.8, 6)), (2, round(VECTOR_WEIGHT * 0.6, 6))]
    assert fuse([], [(1, 0.8), (2, 0.6)], limit=5) == expected
    weak_keyword_only = fuse([(1, -0.5)], [], limit=1)[0][1]
    assert weak_keyword_only == round((1 - VECTOR_WEIGHT) * 0.5 / (0.5 + BM25_SATURATION), 6)
    assert weak_keyword_only < 0.05  # the only keyword hit of its query, and still weak


def test_fusion_breaks_ties_by_ascending_id() -> None:
    assert [memory_id for memory_id, _ in fuse([], [(9, 0.5), (4, 0.5), (6, 0.5)], limit=3)] == [4, 6, 9]


def test_a_keyword_hit_missing_from_vector_hits_counts_as_cosine_zero() -> None:
    assert fuse([(1, -5.0)], [], limit=1) == fuse([(1, -5.0)], [(1, 0.0)], limit=1)
    assert fuse([(1, -5.0)], [(1, -0.3)], limit=1) == fuse([(1, -5.0)], [(1, 0.0)], limit=1)  # clamped


hits = st.lists(st.tuples(st.integers(1, 50), st.floats(-30, 30)), max_size=20, unique_by=lambda hit: hit[0])


@settings(max_examples=300, deadline=None)
@given(hits, hits.map(lambda xs: [(i, max(-1.0, min(1.0, s / 30))) for i, s in xs]), st.integers(1, 30))
def test_fusion_properties(bm25, vectors, limit) -> None:
    fused = fuse(bm25, vectors, limit)
    ids = [memory_id for memory_id, _ in fused]
    assert len(ids) == len(set(ids)) == min(limit, len({i for i, _ in bm25} | {i for i, _ in vectors}))
    assert all(0.0 <= score <= 1.0 for _, score in fused)
    assert fused == sorted(fused, key=lambda item: (-item[1], item[0]))


@pytest.fixture(scope="module")
def embedder() -> BuiltinEmbedder:
    return BuiltinEmbedder.load()


def cosine(embedder: BuiltinEmbedder, a: str, b: str) -> float:
    first, second = embedder.embed_sync([a, b])
    return float(np.dot(first, second))


BIRTHDAY = "My sister Maria was born on 14 March 1988."


@pytest.mark.parametrize(
    ("other", "candidate", "skipped"),
    [
        # restatements: same words, other order or punctuation -> skip_if_near skips them
        ("Maria, my sister, was born on 14 March 1988.", True, True),
        ("My sister Maria was born on 14 March 1988!", True, True),
        # a real paraphrase: listed as a candidate under `ask`, never silently skipped
        ("My sister Maria's birthday is 14 March; she was born in 1988.", True, False),
        # an update of the same fact: shown as a candidate so the client can update it, not skipped
        ("My sister Maria was born on 22 June 1988.", True, False),
        # a different fact about the same person
        ("Maria works as a nurse at St. Mary's Hospital.", False, False),
    ],
)
def test_builtin_dedup_thresholds_on_real_sentences(embedder, other: str, candidate: bool, skipped: bool) -> None:
    similarity = cosine(embedder, BIRTHDAY, other)
    assert (similarity >= NEAR_DUPLICATE_THRESHOLD) is candidate, similarity
    assert (similarity >= SKIP_IF_NEAR_THRESHOLD) is skipped, similarity


def test_thresholds_per_provider() -> None:
    assert dedup_thresholds("builtin") == (NEAR_DUPLICATE_THRESHOLD, SKIP_IF_NEAR_THRESHOLD)
    assert dedup_thresholds("openai") == (0.90, 0.90)
    assert dedup_thresholds("something-else") == (0.90, 0.90)
    assert NEAR_DUPLICATE_THRESHOLD < SKIP_IF_NEAR_THRESHOLD
