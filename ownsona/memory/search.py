"""Hybrid recall, as pure functions: the FTS5 query, the fusion of BM25 and vectors, the dedup cut-off.

The store runs the two searches and calls these; nothing here touches SQLite or an embedder, so
every choice below can be measured offline. Each one was decided on `bench/quality` (1,009
personal facts, one question each, worded unlike its fact) and `bench/dedup_threshold`; the
figures are quoted next to the choice.

Stable interface:

    FTS_TOKENIZER: str
        The `tokenize=` argument of the `fts5` virtual table.
    fts_query(text: str) -> str | None
        A MATCH expression for user text: its content words, each quoted (so FTS5 syntax in the
        text is inert), OR-ed. None when nothing searchable is left; skip the FTS query then.
    fuse(bm25_hits, vector_hits, limit) -> list[tuple[int, float]]
        bm25_hits:   (id, bm25) best first, bm25 as FTS5's `bm25()` returns it (<= 0, lower is
                     better; the sign is ignored, so -bm25() works too).
        vector_hits: (id, cosine similarity) best first. Include the cosine of every BM25 hit when
                     it is cheap (brute force has them all); a BM25 hit absent from vector_hits
                     counts as cosine 0.
        Returns at most `limit` (id, score) pairs, best first, ties broken by ascending id;
        `score` is a similarity in [0, 1], so `min_score` thresholds it.
    NEAR_DUPLICATE_THRESHOLD: float
        Builtin model: cosine at or above which an active memory (or a tombstone) is listed in
        `candidates` (`previously_corrected`) of a new one.
    SKIP_IF_NEAR_THRESHOLD: float
        Builtin model: cosine at or above which `skip_if_near` skips the write. Higher than the
        candidates threshold on purpose (see below).
    dedup_thresholds(provider: str) -> tuple[float, float]
        (candidates, skip_if_near) thresholds for the provider that made the vectors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# --- FTS5 ---------------------------------------------------------------------------------------

# bench/quality, fused with vectors (hit@5 / hit@8 / MRR): unicode61 92.3 / 97.7 / 0.673, porter
# stemming 91.6 / 96.1 / 0.666, trigram 91.3 / 96.6 / 0.666. Porter does better alone (BM25 hit@1
# 31.6 against 26.0) but once vectors cover related word forms it mostly conflates words across
# facts ("a living" meets "lives in", "travel" meets "travelling"): the fused ranking wants BM25 as
# the exact-term signal. Prefix queries (`"term"*`) lose 1.5 points with every tokenizer.
# Diacritics are folded so "Zurich" finds "Zürich".
FTS_TOKENIZER = "unicode61 remove_diacritics 2"

# Words that carry no subject in a question to a memory. Kept short on purpose: a personal fact's
# subject is often a small word ("I", "my" are dropped, "car", "rent", "key" are kept).
STOP_WORDS = frozenset(
    """a about an and any are as at be been being but by can could did do does doing for from had has
    have how i if in into is it its me my mine myself of on or our ours s should so than that the their
    them then there these they this those to too was we were what when where which while who whom
    whose why will with would you your yours""".split()
)

_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str) -> list[str]:
    """The words of `text` that count for full-text search: lower-cased, no stop words, no repeats.

    Words are split the way FTS5's unicode61 tokenizer splits them (letters and digits; an
    apostrophe or a hyphen separates), so every term can match an indexed token.
    """
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOP_WORDS and word not in seen and any(ch.isalnum() for ch in word):
            seen[word] = None
    return list(seen)


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression for free text, or None when no word is left to search.

    Each term is a quoted string, so `AND`, `NEAR`, `*`, `:` or quotes typed by a user are matched
    as text, never parsed as query syntax. Terms are OR-ed: BM25 already ranks a fact matching more
    of them higher, and requiring all of them loses every question with one word the fact lacks.
    """
    terms = [term.replace('"', '""') for term in query_terms(text)]
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)


# --- fusion -------------------------------------------------------------------------------------

# score = VECTOR_WEIGHT * cosine + (1 - VECTOR_WEIGHT) * b / (b + BM25_SATURATION), b = |bm25()|.
# bench/quality, 1,009 questions (hit@1 / hit@5 / hit@8 / MRR):
#   vectors alone                               48.9 / 87.1 / 93.5 / 0.643
#   BM25 alone                                  26.0 / 76.0 / 90.7 / 0.467
#   reciprocal rank fusion, k = 60              41.7 / 90.4 / 97.0 / 0.611
#   0.8 cosine + 0.2 BM25 / query's best BM25   48.1 / 91.9 / 97.6 / 0.656 (best weight of that form)
#   this: 0.7 cosine + 0.3 saturated BM25       50.6 / 92.3 / 97.7 / 0.673
# RRF throws the cosine away and ranks a weak vector hit like a strong one; dividing by the query's
# best BM25 stretches a weak keyword match to 1. The saturating map is absolute, so a score means
# the same across queries and `min_score` keeps its sense. Every weight in 0.6-0.8 with a
# saturation in 1-5 is within a point of this; the choice sits in the middle of that plateau.
# Stop words: dropping them (`fts_query`) beats sending every word, fused: 92.3 / 97.7 against
# 91.1 / 97.1.
VECTOR_WEIGHT = 0.7
BM25_SATURATION = 5.0


def fuse(
    bm25_hits: Sequence[tuple[int, float]],
    vector_hits: Sequence[tuple[int, float]],
    limit: int,
) -> list[tuple[int, float]]:
    """Combine keyword and vector hits into one ranking whose scores are similarities in [0, 1]."""
    if limit <= 0:
        return []
    keyword = {memory_id: abs(bm25) for memory_id, bm25 in bm25_hits}
    cosine = {memory_id: max(0.0, min(1.0, similarity)) for memory_id, similarity in vector_hits}
    scores: dict[int, float] = {}
    for memory_id in keyword.keys() | cosine.keys():
        relevance = keyword.get(memory_id, 0.0)
        saturated = relevance / (relevance + BM25_SATURATION)
        score = VECTOR_WEIGHT * cosine.get(memory_id, 0.0) + (1.0 - VECTOR_WEIGHT) * saturated
        # Rounded before sorting, so scores that print equal are ordered by id, stably.
        scores[memory_id] = round(score, 6)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]


# --- semantic dedup -----------------------------------------------------------------------------

# bench/dedup_threshold, builtin model. Median cosines: paraphrase 0.806; "update", the same
# sentence about the same subject with another value, 0.633 (but 10 % of updates, those that change
# only a number or a date, reach 0.90); each fact's nearest *distinct* fact among 1,009: 0.603.
# A static model averages word vectors, so no single cut separates "reworded" from "the same
# sentence with a new date": hence two thresholds.
#
# `candidates` / `previously_corrected` are advice, and an update *should* surface the fact it
# changes. The noise to avoid is a distinct fact shown as a candidate: 0.82 is the lowest threshold
# that flags at most 5 % of the distinct facts (4.6 %); it flags 46 % of paraphrases, 18 % of updates.
NEAR_DUPLICATE_THRESHOLD = 0.82
# `skip_if_near` drops the write, so it must not drop an update: 0.98 is the lowest threshold that
# drops at most 2 % of them (0.5 %). It skips restatements (the same words in another order, other
# punctuation) and almost no real paraphrase (0.3 %); `ask` is the policy that surfaces those.
SKIP_IF_NEAR_THRESHOLD = 0.98

# Other providers: the Java defaults (OpenAI embeddings), not re-measured here.
DEDUP_THRESHOLDS: dict[str, tuple[float, float]] = {
    "builtin": (NEAR_DUPLICATE_THRESHOLD, SKIP_IF_NEAR_THRESHOLD),
    "openai": (0.90, 0.90),
}


def dedup_thresholds(provider: str) -> tuple[float, float]:
    """(candidates threshold, skip_if_near threshold) for vectors made by `provider`."""
    return DEDUP_THRESHOLDS.get(provider, DEDUP_THRESHOLDS["openai"])
