"""MemoryService against a real SQLite file and the real builtin embedder."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from memory_fixtures import Clock, CountingEmbedder

from ownsona.config import Settings
from ownsona.db import Database
from ownsona.memory.errors import ServiceError
from ownsona.memory.inputs import UNSET, Filters, RememberItem, UpdateItem
from ownsona.memory.schema import MEMORY_SCHEMA
from ownsona.memory.service import MemoryService
from ownsona.memory.reembed import ReembedError
from ownsona.memory.timestamps import to_iso

ALICE, BOB = "alice", "bob"


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_path, [MEMORY_SCHEMA])
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_service(db: Database, embedder: CountingEmbedder, clock: Clock, make_settings: Callable[..., Settings]):
    def factory(**env: str) -> MemoryService:
        return MemoryService(db, embedder, make_settings(**env), clock=clock)

    return factory


@pytest.fixture
def service(make_service: Callable[..., MemoryService]) -> MemoryService:
    return make_service()


async def remember(service: MemoryService, text: str, user: str = ALICE, **fields: Any) -> dict[str, Any]:
    return await service.remember(user, RememberItem(text=text, **fields))


async def fails(coro: Any, code: str, match: str = "") -> ServiceError:
    with pytest.raises(ServiceError) as info:
        await coro
    assert info.value.code == code, info.value.message
    assert match in info.value.message
    return info.value


async def inject_failure(db: Database, text: str) -> None:
    """Make any INSERT or UPDATE that writes `text` fail inside SQLite, like a real DB error."""

    def create(conn: sqlite3.Connection) -> None:
        for event in ("INSERT", "UPDATE"):
            conn.execute(
                f"CREATE TRIGGER fail_{event.lower()} BEFORE {event} ON memories "
                f"WHEN NEW.text = '{text}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )

    await db.write(create)


async def inject_delete_failure(db: Database, memory_id: int) -> None:
    await db.write(lambda c: c.execute(
        f"CREATE TRIGGER fail_delete BEFORE UPDATE OF deleted_at ON memories WHEN NEW.id = {memory_id} "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    ))


# --- remember ----------------------------------------------------------------------------------


async def test_remember_stores_cleaned_text_with_normalised_tags(service: MemoryService) -> None:
    result = await remember(service, "  I prefer tea over coffee.  ", tags=["Prefs", " TECH ", "", None, "tech"],
                            importance=0.8, capture_mode="explicit", session_id=" s1 ", source_provider="chatgpt")
    assert result == {"ok": True, "memory_id": 1, "message": "Ok"}
    memory = (await service.get_memory(ALICE, 1))["memory"]
    assert memory["text"] == "I prefer tea over coffee."
    assert memory["tags"] == ["preferences", "software"]
    assert memory["importance"] == 0.8
    assert memory["capture_mode"] == "explicit"
    assert memory["session_id"] == "s1"
    assert memory["source_provider"] == "chatgpt"
    assert memory["score"] == 0.0
    assert "last_confirmed_at" not in memory and "deleted_at" not in memory


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": "   "}, "text is required."),
        ({"text": None}, "text is required."),
        ({"text": "x" * 16_001}, "text is too long (16001 > 16000 chars)."),
        ({"text": "ok", "tags": ["t" * 65]}, "tags[0] is too long: 65 > 64"),
        ({"text": "ok", "tags": [f"t{i}" for i in range(17)]}, "Too many tags"),
        ({"text": "ok", "importance": 1.5}, "importance must be between 0 and 1."),
        ({"text": "ok", "importance": float("nan")}, "importance must be between 0 and 1."),
        ({"text": "ok", "capture_mode": "Explicit"}, "capture_mode"),
        ({"text": "ok", "session_id": "s" * 257}, "session_id is too long (257 > 256)."),
        ({"text": "ok", "dedup_policy": "merge"}, "dedup_policy must be one of"),
        ({"text": "ok", "expires_at": datetime(2300, 1, 1, tzinfo=UTC)}, "more than 100 years"),
        ({"text": "ok", "last_confirmed_at": datetime.now(UTC) + timedelta(hours=1)}, "must not be in the future"),
    ],
)
async def test_remember_validation(service: MemoryService, fields: dict[str, Any], message: str) -> None:
    await fails(service.remember(ALICE, RememberItem(**fields)), "INVALID_INPUT", message)


@pytest.mark.parametrize(
    "text",
    [
        "my key is sk-proj-abcdefghijklmnop1234",
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AWS AKIAABCDEFGHIJKLMNOP here",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "my password is hunter2!",
        "card 4111 1111 1111 1111 exp 12/29",
        "stripe sk_live_abcdefghijklmnop1234",
    ],
)
async def test_secrets_are_refused_without_echoing_them(service: MemoryService, embedder: CountingEmbedder,
                                                        text: str) -> None:
    error = await fails(remember(service, text), "SECRET_REJECTED")
    assert text not in error.message
    assert embedder.calls == []


async def test_importance_zero_is_kept(service: MemoryService) -> None:
    await remember(service, "A trivial detail.", importance=0.0)
    assert (await service.get_memory(ALICE, 1))["memory"]["importance"] == 0.0


async def test_ordinary_text_that_resembles_a_key_is_kept(service: MemoryService) -> None:
    for text in ["I use sk-learn-gradient-boosting for work", "Order #SK-12 arrives Monday",
                 "the password is stored in the vault", "call me at +1 555 123 4567"]:
        assert (await remember(service, text))["message"] == "Ok"


async def test_exact_duplicate_is_merged_confirmed_and_not_embedded(
    service: MemoryService, embedder: CountingEmbedder, clock: Clock
) -> None:
    await remember(service, "My sister Ana lives in Lisbon.", tags=["family"])
    embedder.calls.clear()
    clock.advance(1000)
    again = await remember(service, "my sister  ana lives in lisbon.", tags=["travel", "relatives"], importance=0.9)
    assert again == {"ok": True, "memory_id": 1, "message": "Already remembered",
                     "merged_fields": ["tags", "importance", "last_confirmed_at"]}
    assert embedder.calls == []
    memory = (await service.get_memory(ALICE, 1))["memory"]
    assert memory["tags"] == ["family", "travel"]
    assert memory["importance"] == 0.9
    assert memory["last_confirmed_at"] == to_iso(clock.now)
    assert memory["text"] == "My sister Ana lives in Lisbon."


async def test_an_expired_exact_duplicate_is_revived(service: MemoryService, clock: Clock) -> None:
    soon = datetime.fromtimestamp((clock.now + 60_000) / 1000, UTC)
    await remember(service, "The office wifi is called Meadow.", expires_at=soon)
    clock.advance(120_000)
    assert (await service.recall(ALICE, "office wifi name"))["matches"] == []
    again = await remember(service, "The office wifi is called Meadow.")
    assert again["memory_id"] == 1 and again["message"] == "Already remembered"
    assert "expires_at" in again["merged_fields"]
    assert [m["id"] for m in (await service.recall(ALICE, "office wifi name"))["matches"]] == [1]
    assert (await service.count_memories(ALICE))["count"] == 1


async def test_ask_returns_paraphrase_candidates_and_inserts(service: MemoryService) -> None:
    await remember(service, "My dog's name is Coco.")
    result = await remember(service, "The name of my dog is Coco.")
    assert result["message"] == "Ok" and result["memory_id"] == 2
    assert [c["id"] for c in result["candidates"]] == [1]
    assert service.limits.dedup_threshold <= result["candidates"][0]["score"] <= 1.0
    assert "score" in result["candidates"][0] and "importance" in result["candidates"][0]


async def test_insert_policy_skips_the_similarity_check(service: MemoryService) -> None:
    await remember(service, "My dog's name is Coco.")
    result = await remember(service, "The name of my dog is Coco.", dedup_policy="insert")
    assert result == {"ok": True, "memory_id": 2, "message": "Ok"}


async def test_skip_if_near_skips_a_restatement_but_stores_a_correction(service: MemoryService) -> None:
    await remember(service, "My dog's name is Coco.")
    restated = await remember(service, "Coco is my dog's name!", dedup_policy="skip_if_near")
    assert restated["message"] == "Near-duplicate skipped" and restated["memory_id"] == 1
    assert restated["candidates"][0]["id"] == 1
    corrected = await remember(service, "My dog's name is Mochi.", dedup_policy="skip_if_near")
    assert corrected["message"] == "Ok" and corrected["memory_id"] == 2
    assert (await service.count_memories(ALICE))["count"] == 2


async def test_previously_corrected_lists_a_similar_tombstone(service: MemoryService) -> None:
    await remember(service, "My dog's name is Coco.")
    await service.forget(ALICE, 1, reason="wrong name")
    result = await remember(service, "The name of my dog is Coco.")
    assert result["message"] == "Ok"
    assert "candidates" not in result
    [tombstone] = result["previously_corrected"]
    assert tombstone["id"] == 1 and tombstone["forget_reason"] == "wrong name" and "deleted_at" in tombstone


async def test_embedding_failure_is_reported(service: MemoryService, embedder: CountingEmbedder) -> None:
    embedder.fail = True
    await fails(remember(service, "I was born in Porto."), "EMBEDDING_ERROR", "Embedding provider call failed")


# --- remember_batch ----------------------------------------------------------------------------


async def test_batch_reports_each_item_in_order(service: MemoryService, embedder: CountingEmbedder) -> None:
    await remember(service, "I work at Initech.")
    embedder.calls.clear()
    result = await service.remember_batch(ALICE, [
        RememberItem(text="I have two kids."),
        None,
        RememberItem(text="i work at initech."),
        RememberItem(text="   "),
        RememberItem(text="My kids are called Tom and Zoe."),
        RememberItem(text="I HAVE TWO KIDS."),
    ], source_provider="claude")
    results = result["results"]
    assert [r["input_index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert results[0] == {"input_index": 0, "ok": True, "memory_id": 2, "message": "Ok"}
    assert results[1]["error"] == {"code": "INVALID_INPUT", "message": "items[1] is null."}
    assert results[2]["memory_id"] == 1 and results[2]["message"] == "Already remembered"
    assert results[3]["error"]["code"] == "INVALID_INPUT"
    assert results[4]["ok"] and results[4]["memory_id"] == 3
    assert results[5]["memory_id"] == 2 and results[5]["message"] == "Already remembered"
    assert result["summary"] == {"total": 6, "inserted": 2, "duplicates": 2, "errors": 2}
    # One embedding call, and exact duplicates are never embedded (§8.1 #15).
    assert embedder.calls == [["I have two kids.", "My kids are called Tom and Zoe."]]
    assert (await service.get_memory(ALICE, 2))["memory"]["source_provider"] == "claude"


async def test_batch_items_see_earlier_items_as_near_duplicates(service: MemoryService) -> None:
    result = await service.remember_batch(ALICE, [
        RememberItem(text="My dog's name is Coco."),
        RememberItem(text="The name of my dog is Coco."),
    ])
    second = result["results"][1]
    assert second["message"] == "Ok" and [c["id"] for c in second["candidates"]] == [1]


async def test_batch_limits(make_service: Callable[..., MemoryService]) -> None:
    service = make_service(max_batch_size="2")
    await fails(service.remember_batch(ALICE, []), "INVALID_INPUT", "items is required and must be non-empty.")
    await fails(service.remember_batch(ALICE, [RememberItem(text="a")] * 3), "LIMIT_EXCEEDED", "batch too large: 3 > 2")
    await fails(service.remember_batch(ALICE, [RememberItem(text="a")], dedup_policy="nope"), "INVALID_INPUT")


async def test_batch_embedding_failure_fails_only_the_items_needing_vectors(
    service: MemoryService, embedder: CountingEmbedder
) -> None:
    await remember(service, "I live in Oslo.")
    embedder.fail = True
    result = await service.remember_batch(ALICE, [RememberItem(text="I live in Oslo."), RememberItem(text="New fact.")])
    assert result["results"][0]["message"] == "Already remembered"
    assert result["results"][1]["error"]["code"] == "EMBEDDING_ERROR"
    assert result["summary"] == {"total": 2, "inserted": 0, "duplicates": 1, "errors": 1}


async def test_a_database_error_mid_batch_leaves_the_other_items_committed(
    service: MemoryService, db: Database
) -> None:
    await inject_failure(db, "Item two.")
    result = await service.remember_batch(
        ALICE, [RememberItem(text="Item one."), RememberItem(text="Item two."), RememberItem(text="Item three.")]
    )
    oks = [r["ok"] for r in result["results"]]
    assert oks == [True, False, True]
    assert result["results"][1]["error"] == {"code": "DATABASE_ERROR", "message": "insert failed."}
    texts = [m["text"] for m in (await service.list_memories(ALICE))["memories"]]
    assert sorted(texts) == ["Item one.", "Item three."]


# --- recall, prompt, search --------------------------------------------------------------------


async def test_recall_finds_paraphrases_and_exact_names(service: MemoryService) -> None:
    await service.remember_batch(ALICE, [
        RememberItem(text="I am allergic to peanuts."),
        RememberItem(text="My manager is called Priya Raman."),
        RememberItem(text="I drive a blue Volvo XC40."),
        RememberItem(text="My favourite band is Radiohead."),
    ])
    by_meaning = await service.recall(ALICE, "what food should I avoid?", limit=1)
    assert by_meaning["matches"][0]["text"] == "I am allergic to peanuts."
    by_name = await service.recall(ALICE, "Priya", limit=1)
    assert by_name["matches"][0]["text"] == "My manager is called Priya Raman."
    car = await service.recall(ALICE, "XC40")
    assert car["matches"][0]["text"] == "I drive a blue Volvo XC40."
    assert car["query"] == "XC40"
    assert all(0.0 <= m["score"] <= 1.0 for m in car["matches"])
    scores = [m["score"] for m in car["matches"]]
    assert scores == sorted(scores, reverse=True)


async def test_recall_tag_filter_applies_before_ranking(service: MemoryService) -> None:
    items = [RememberItem(text=f"Project note number {i} about the garden.", tags=["garden"]) for i in range(30)]
    items += [RememberItem(text=f"Work note number {i} about the quarterly report.", tags=["work"]) for i in range(5)]
    await service.remember_batch(ALICE, items, dedup_policy="insert")
    result = await service.recall(ALICE, "garden project notes", tags=["job"], limit=50)
    assert len(result["matches"]) == 5
    assert all(m["tags"] == ["work"] for m in result["matches"])


async def test_recall_limits_and_min_score(service: MemoryService) -> None:
    await service.remember_batch(ALICE, [RememberItem(text=f"Fact {i} about cats.") for i in range(60)],
                                 dedup_policy="insert")
    assert len((await service.recall(ALICE, "cats", limit=500))["matches"]) == 50  # clamped, not refused
    assert len((await service.recall(ALICE, "cats"))["matches"]) == 8
    await fails(service.recall(ALICE, "cats", limit=0), "INVALID_INPUT", "limit must be >= 1.")
    await fails(service.recall(ALICE, "cats", min_score=1.5), "INVALID_INPUT", "min_score")
    await fails(service.recall(ALICE, " "), "INVALID_INPUT", "query is required.")
    high = await service.recall(ALICE, "cats", min_score=0.99)
    assert all(m["score"] >= 0.99 for m in high["matches"])


async def test_recall_skips_deleted_and_expired(service: MemoryService, clock: Clock) -> None:
    soon = datetime.fromtimestamp((clock.now + 1000) / 1000, UTC)
    await remember(service, "I collect vintage stamps.")
    await remember(service, "I collect old coins.", expires_at=soon)
    await remember(service, "I collect seashells.")
    await service.forget(ALICE, 3)
    clock.advance(5000)
    assert [m["id"] for m in (await service.recall(ALICE, "what do I collect"))["matches"]] == [1]


async def test_build_context_prompt_layout_and_budget(service: MemoryService) -> None:
    await remember(service, "I am vegetarian.")
    result = await service.build_context_prompt(ALICE, "  Suggest a dinner.  ", limit=1)
    assert result["prompt"] == (
        "The following are previously known facts:\n\nI am vegetarian.\n\n-----------------\n\n"
        "The following is the user's prompt:\n\nSuggest a dinner."
    )
    assert result["memory_ids"] == [1]
    tight = await service.build_context_prompt(ALICE, "Suggest a dinner.", limit=1, max_chars=5)
    assert "1 relevant fact was left out to stay within max_chars." in tight["prompt"]
    assert "No relevant previously known facts" not in tight["prompt"]
    await fails(service.build_context_prompt(ALICE, "x", max_chars=0), "INVALID_INPUT", "max_chars must be > 0")
    empty = await service.build_context_prompt(BOB, "Suggest a dinner.")
    assert "No relevant previously known facts were found.\n\n" in empty["prompt"]


async def test_text_search_is_case_insensitive_and_literal(service: MemoryService) -> None:
    await remember(service, "Discount code gives 10% off at Café Noir")
    await remember(service, "I got 100 points")
    found = await service.text_search(ALICE, "  10%  ")
    assert [m["text"] for m in found["matches"]] == ["Discount code gives 10% off at Café Noir"]
    assert (await service.text_search(ALICE, "CAFÉ NOIR"))["matches"][0]["id"] == 1
    assert "score" not in found["matches"][0] and "source_provider" not in found["matches"][0]


# --- list, count, stats, tags, export --------------------------------------------------------


async def test_list_is_newest_first_with_a_stable_id_tiebreak(service: MemoryService) -> None:
    await service.remember_batch(ALICE, [RememberItem(text=f"Batch fact {i}.") for i in range(5)], dedup_policy="insert")
    first = (await service.list_memories(ALICE, limit=2))["memories"]
    second = (await service.list_memories(ALICE, limit=2, offset=2))["memories"]
    third = (await service.list_memories(ALICE, limit=2, offset=4))["memories"]
    assert [m["id"] for m in first + second + third] == [5, 4, 3, 2, 1]


async def test_list_and_count_filters(service: MemoryService, clock: Clock) -> None:
    await remember(service, "Short.", tags=["a"])
    await remember(service, "A much longer sentence without tags.")
    await remember(service, "Medium text here.", last_confirmed_at=datetime.now(UTC))
    untagged = await service.list_memories(ALICE, filters=Filters(untagged_only=True))
    assert [m["id"] for m in untagged["memories"]] == [3, 2]
    short = await service.count_memories(ALICE, filters=Filters(max_chars=6))
    assert short["count"] == 1
    stale = await service.count_memories(
        ALICE, filters=Filters(not_confirmed_since=datetime.now(UTC) - timedelta(days=1)))
    assert stale["count"] == 2
    await fails(service.list_memories(ALICE, filters=Filters(min_chars=5, max_chars=2)), "INVALID_INPUT",
                "min_chars (5) must be <= max_chars (2).")
    await fails(service.count_memories(ALICE, filters=Filters(not_confirmed_since=datetime.now(UTC) + timedelta(days=1))),
                "INVALID_INPUT", "not_confirmed_since cannot be in the future.")
    assert (await service.count_memories(ALICE, tags=["A"]))["count"] == 1


async def test_stats_tags_and_export(service: MemoryService, clock: Clock) -> None:
    soon = datetime.fromtimestamp((clock.now + 1000) / 1000, UTC)
    await remember(service, "Fact one.", tags=["x", "y"], importance=0.2, source_provider="claude")
    await remember(service, "Fact two.", tags=["x"], importance=0.6)
    await remember(service, "Fact three.", tags=["z"], expires_at=soon)
    await remember(service, "Fact four.", tags=["x"])
    await service.forget(ALICE, 4)
    clock.advance(5000)
    stats = await service.memory_stats(ALICE)
    assert {k: stats[k] for k in ("total", "active", "soft_deleted", "expired")} == {
        "total": 4, "active": 2, "soft_deleted": 1, "expired": 1}
    assert stats["avg_importance"] == pytest.approx((0.2 + 0.6 + 0.5) / 3)
    assert stats["top_tags"] == [{"tag": "x", "count": 2}, {"tag": "y", "count": 1}]
    assert stats["by_provider"] == [{"provider": "(none)", "count": 2}, {"provider": "claude", "count": 1}]
    assert (await service.list_tags(ALICE))["tags"] == [{"tag": "x", "count": 2}, {"tag": "y", "count": 1}]
    assert (await service.list_tags(ALICE, include_deleted=True, limit=1))["tags"] == [{"tag": "x", "count": 3}]
    export = await service.export_memories(ALICE)
    assert export["count"] == 4 and [m["id"] for m in export["memories"]] == [1, 2, 3, 4]
    assert export["memories"][0]["importance"] == 0.2 and export["memories"][0]["embedding_model"]
    assert (await service.export_memories(ALICE, include_deleted=False))["count"] == 2
    empty = await service.memory_stats(BOB)
    assert empty["total"] == 0 and "avg_importance" not in empty and empty["top_tags"] == []


async def test_export_cap(make_service: Callable[..., MemoryService]) -> None:
    service = make_service(export_max_rows="1")
    await remember(service, "One.")
    await remember(service, "Two.")
    await fails(service.export_memories(ALICE), "LIMIT_EXCEEDED", "export exceeds maximum of 1 rows (got 2).")


# --- update ------------------------------------------------------------------------------------


async def test_update_changes_fields_and_reembeds_text(service: MemoryService) -> None:
    await remember(service, "I live in Berlin.", tags=["home"], expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    result = await service.update_memory(ALICE, UpdateItem(id=1, text="I live in Munich.", importance=0.9))
    assert result == {"ok": True, "memory_id": 1, "dry_run": False, "changed_fields": ["text", "importance"],
                      "message": "Ok"}
    memory = (await service.get_memory(ALICE, 1))["memory"]
    assert memory["text"] == "I live in Munich." and memory["tags"] == ["home"] and "expires_at" in memory
    assert (await service.recall(ALICE, "Munich", limit=1))["matches"][0]["id"] == 1
    cleared = await service.update_memory(ALICE, UpdateItem(id=1, expires_at=None, last_confirmed_at=None))
    assert cleared["changed_fields"] == ["expires_at", "last_confirmed_at"]
    assert "expires_at" not in (await service.get_memory(ALICE, 1))["memory"]


async def test_update_validation_and_not_found(service: MemoryService, db: Database) -> None:
    await remember(service, "I like jazz.")
    await remember(service, "I like blues.")
    await fails(service.update_memory(ALICE, UpdateItem(id=1)), "INVALID_INPUT", "update_memory requires at least one of")
    await fails(service.update_memory(ALICE, UpdateItem(id=1, importance=2.0)), "INVALID_INPUT", "importance")
    await fails(service.update_memory(ALICE, UpdateItem(id=1, importance=float("nan"))), "INVALID_INPUT")
    await fails(service.update_memory(ALICE, UpdateItem(id=1, text="sk-ant-abcdefghijklmnopqrstu")), "SECRET_REJECTED")
    await fails(service.update_memory(ALICE, UpdateItem(id=99, tags=[])), "NOT_FOUND", "Memory 99 not found.")
    error = await fails(service.update_memory(ALICE, UpdateItem(id=2, text="i like JAZZ.")), "INVALID_INPUT")
    assert "Memory 1 already has this text" in error.message
    await service.forget(ALICE, 1)
    await fails(service.update_memory(ALICE, UpdateItem(id=1, tags=["x"])), "NOT_FOUND")


async def test_update_dry_run_neither_writes_nor_embeds(service: MemoryService, embedder: CountingEmbedder) -> None:
    await remember(service, "I play chess.")
    embedder.calls.clear()
    before = await service.get_memory(ALICE, 1)
    single = await service.update_memory(ALICE, UpdateItem(id=1, text="I play go."), dry_run=True)
    assert single["message"] == "Would update" and single["dry_run"] is True
    batch = await service.update_memory_batch(ALICE, [UpdateItem(id=1, text="I play go."), UpdateItem(id=7, tags=[])],
                                              dry_run=True)
    assert [r["ok"] for r in batch["results"]] == [True, False]
    assert batch["results"][0]["message"] == "Would update"
    assert embedder.calls == []
    assert await service.get_memory(ALICE, 1) == before


async def test_update_batch_isolates_failures(service: MemoryService, db: Database) -> None:
    for text in ("Alpha.", "Beta.", "Gamma."):
        await remember(service, text)
    await inject_failure(db, "Beta two.")
    result = await service.update_memory_batch(ALICE, [
        UpdateItem(id=1, text="Alpha two."),
        UpdateItem(id=2, text="Beta two."),
        None,
        UpdateItem(id=3, tags=["greek"]),
        UpdateItem(id=3),
        UpdateItem(id=None, tags=[]),
    ])
    results = result["results"]
    assert [r["ok"] for r in results] == [True, False, False, True, False, False]
    assert results[1]["error"] == {"code": "DATABASE_ERROR", "message": "update failed."}
    assert results[1]["id"] == 2
    assert "items[4] supplied no changes" in results[4]["error"]["message"]
    assert results[5]["error"]["message"] == "items[5].id is required."
    assert result["summary"] == {"total": 6, "updated": 2, "errors": 4}
    texts = {m["id"]: m["text"] for m in (await service.list_memories(ALICE))["memories"]}
    assert texts == {1: "Alpha two.", 2: "Beta.", 3: "Gamma."}


# --- confirm, forget, restore ------------------------------------------------------------------


async def test_confirm_sets_last_confirmed_without_touching_updated_at(service: MemoryService, clock: Clock) -> None:
    await remember(service, "I run every morning.")
    before = (await service.get_memory(ALICE, 1))["memory"]
    clock.advance(60_000)
    result = await service.confirm(ALICE, 1)
    assert result == {"ok": True, "memory_id": 1, "last_confirmed_at": to_iso(clock.now), "message": "Confirmed"}
    after = (await service.get_memory(ALICE, 1))["memory"]
    assert after["updated_at"] == before["updated_at"]
    await service.forget(ALICE, 1)
    await fails(service.confirm(ALICE, 1), "NOT_FOUND")


async def test_forget_messages_dry_run_and_tombstones(service: MemoryService) -> None:
    await remember(service, "Old address: 1 Elm St.")
    await remember(service, "New address: 2 Oak Ave.")
    dry = await service.forget(ALICE, 1, dry_run=True)
    assert dry == {"ok": True, "memory_id": 1, "dry_run": True, "already_deleted": False, "message": "Would soft-delete"}
    assert "deleted_at" not in (await service.get_memory(ALICE, 1))["memory"]
    live = await service.forget(ALICE, 1, reason="moved", replaced_by_id=2)
    assert live["message"] == "Forgotten" and live["already_deleted"] is False
    again = await service.forget(ALICE, 1, dry_run=True)
    assert again["message"] == "Would update tombstone (already soft-deleted)"
    again = await service.forget(ALICE, 1)
    assert again["message"] == "Already soft-deleted (tombstone updated)" and again["already_deleted"] is True
    tomb = (await service.get_memory(ALICE, 1))["memory"]
    assert tomb["forget_reason"] == "moved" and tomb["replaced_by_id"] == 2
    assert (await service.forget(ALICE, 1, hard_delete=True, dry_run=True))["message"] == "Would hard-delete"


async def test_forget_validation(service: MemoryService) -> None:
    await remember(service, "A fact.")
    await fails(service.forget(ALICE, 1, hard_delete=True, reason="x"), "INVALID_INPUT", "hard_delete drops the row")
    await fails(service.forget(ALICE, 1, replaced_by_id=1), "INVALID_INPUT", "replaced_by_id")
    await fails(service.forget(ALICE, 1, replaced_by_id=42), "NOT_FOUND", "Memory 42 (replaced_by_id) not found.")
    await fails(service.forget(ALICE, 1, reason="r" * 1025), "INVALID_INPUT", "reason is too long (1025 > 1024).")
    await fails(service.forget(ALICE, 9), "NOT_FOUND", "Memory 9 not found.")
    assert "deleted_at" not in (await service.get_memory(ALICE, 1))["memory"]


async def test_hard_delete_of_a_replacement_unlinks_the_tombstone(service: MemoryService) -> None:
    await remember(service, "Wrong fact.")
    await remember(service, "Right fact.")
    await service.forget(ALICE, 1, replaced_by_id=2)
    assert (await service.forget(ALICE, 2, hard_delete=True))["message"] == "Hard deleted"
    await fails(service.get_memory(ALICE, 2), "NOT_FOUND")
    assert "replaced_by_id" not in (await service.get_memory(ALICE, 1))["memory"]


async def test_forget_batch_isolates_failures(service: MemoryService, db: Database) -> None:
    for text in ("One.", "Two.", "Three."):
        await remember(service, text)
    await inject_delete_failure(db, 2)
    result = await service.forget_batch(ALICE, [1, 2, None, 3, 3, 77], reason="cleanup")
    results = result["results"]
    assert [r["ok"] for r in results] == [True, False, False, True, True, False]
    assert results[1]["error"] == {"code": "DATABASE_ERROR", "message": "forget failed."}
    assert results[3]["message"] == "Forgotten" and results[4]["message"] == "Already soft-deleted (tombstone updated)"
    assert results[5]["error"]["code"] == "NOT_FOUND"
    assert result["summary"] == {"total": 6, "deleted": 2, "already_deleted": 1, "errors": 3}
    assert [m["id"] for m in (await service.list_memories(ALICE))["memories"]] == [2]


async def test_forget_batch_dry_run_writes_nothing(service: MemoryService) -> None:
    await remember(service, "One.")
    result = await service.forget_batch(ALICE, [1, 1], dry_run=True)
    assert [r["message"] for r in result["results"]] == ["Would soft-delete", "Would soft-delete"]
    assert (await service.count_memories(ALICE))["count"] == 1


async def test_restore_undoes_a_soft_delete(service: MemoryService) -> None:
    await remember(service, "I own a kayak.")
    await service.forget(ALICE, 1, reason="sold it")
    result = await service.restore(ALICE, 1)
    assert result == {"ok": True, "memory_id": 1, "restored": True, "message": "Restored"}
    memory = (await service.get_memory(ALICE, 1))["memory"]
    assert "deleted_at" not in memory and "forget_reason" not in memory
    assert (await service.recall(ALICE, "kayak"))["matches"][0]["id"] == 1
    assert (await service.restore(ALICE, 1))["message"] == "Not deleted"
    await service.forget(ALICE, 1)
    await remember(service, "I own a kayak.")
    await fails(service.restore(ALICE, 1), "INVALID_INPUT", "Memory 2 already has this text")


# --- near duplicates -----------------------------------------------------------------------------


async def test_find_near_duplicates_groups_clusters(service: MemoryService) -> None:
    await service.remember_batch(ALICE, [
        RememberItem(text="My dog's name is Coco."),
        RememberItem(text="Coco is my dog's name."),
        RememberItem(text="My dog is named Coco."),
        RememberItem(text="I am learning Portuguese."),
    ], dedup_policy="insert")
    result = await service.find_near_duplicates(ALICE, threshold=0.9)
    [group] = result["groups"]
    assert group["ids"] == [1, 2, 3]
    assert all(m["score"] > 0.9 for m in group["memories"])
    assert result["summary"] == {"groups": 1, "pairs": group["pair_count"]}
    await fails(service.find_near_duplicates(ALICE, threshold=0.4), "INVALID_INPUT", "threshold must be between 0.5")
    await fails(service.find_near_duplicates(ALICE, max_groups=501), "INVALID_INPUT", "max_groups")
    assert (await service.find_near_duplicates(BOB))["groups"] == []


# --- users ---------------------------------------------------------------------------------------


async def test_every_by_id_operation_is_scoped_to_its_user(service: MemoryService) -> None:
    await remember(service, "Alice's secret hobby is falconry.")
    await remember(service, "Bob likes sailing.", user=BOB)
    await fails(service.get_memory(BOB, 1), "NOT_FOUND")
    await fails(service.update_memory(BOB, UpdateItem(id=1, tags=["x"])), "NOT_FOUND")
    batch = await service.update_memory_batch(BOB, [UpdateItem(id=1, text="hijacked")])
    assert batch["results"][0]["error"]["code"] == "NOT_FOUND"
    await fails(service.confirm(BOB, 1), "NOT_FOUND")
    await fails(service.forget(BOB, 1), "NOT_FOUND")
    await fails(service.forget(BOB, 1, hard_delete=True), "NOT_FOUND")
    await fails(service.forget(BOB, 2, replaced_by_id=1), "NOT_FOUND", "replaced_by_id")
    assert (await service.forget_batch(BOB, [1]))["results"][0]["error"]["code"] == "NOT_FOUND"
    await fails(service.restore(BOB, 1), "NOT_FOUND")
    assert (await service.recall(BOB, "falconry hobby"))["matches"][0]["id"] == 2
    assert (await service.text_search(BOB, "falconry"))["matches"] == []
    assert (await service.count_memories(BOB))["count"] == 1
    assert [m["id"] for m in (await service.export_memories(BOB))["memories"]] == [2]
    same_text = await remember(service, "Alice's secret hobby is falconry.", user=BOB)
    assert same_text["message"] == "Ok" and same_text["memory_id"] == 3
    memory = (await service.get_memory(ALICE, 1))["memory"]
    assert memory["text"] == "Alice's secret hobby is falconry." and "deleted_at" not in memory


# --- concurrency -------------------------------------------------------------------------------


async def test_fifty_concurrent_clients_mixing_reads_and_writes(service: MemoryService) -> None:
    async def client(n: int) -> None:
        for i in range(4):
            if n % 2:
                await remember(service, f"Client {n} fact {i} about topic {n * 7 + i}.")
                await service.update_memory(ALICE, UpdateItem(id=1, importance=(n % 10) / 10))
            else:
                await service.recall(ALICE, f"topic {n + i}")
                await service.list_memories(ALICE, limit=5)
                await service.memory_stats(ALICE)

    await remember(service, "Seed fact.")
    await asyncio.gather(*(client(n) for n in range(50)))
    assert (await service.count_memories(ALICE))["count"] == 1 + 25 * 4


# --- re-embedding --------------------------------------------------------------------------------


async def test_reembed_replaces_vectors_of_another_model_and_resumes(
    db: Database, make_settings: Callable[..., Settings], clock: Clock
) -> None:
    old = MemoryService(db, CountingEmbedder(model="old-model"), make_settings(), clock=clock)
    for i in range(7):
        await remember(old, f"Fact number {i} about rivers.")
    await old.forget(ALICE, 7)
    new_embedder = CountingEmbedder()
    new = MemoryService(db, new_embedder, make_settings(), clock=clock)
    assert await new.reembedder.count_stale() == 7
    # Not searchable by vector yet, but still found by keywords.
    assert (await new.recall(ALICE, "rivers", limit=3))["matches"]

    def fail_after_first_batch(progress: Any) -> None:
        new_embedder.fail = True

    with pytest.raises(ReembedError, match="embedding failed after 3 rows"):
        await new.reembedder.run(batch_size=3, report=fail_after_first_batch)
    assert await new.reembedder.count_stale() == 4
    new_embedder.fail = False
    progress = await new.reembedder.run(batch_size=3)
    assert (progress.done, progress.total, progress.state) == (4, 4, "finished")
    assert await new.reembedder.count_stale() == 0
    hits = (await new.recall(ALICE, "Fact number 3 about rivers.", limit=2))["matches"]
    assert [h["id"] for h in hits][0] == 4 and hits[0]["score"] > hits[1]["score"]
    # The tombstone got a new vector too, so correction checks keep working.
    again = await remember(new, "Fact number 6 about rivers!")
    assert [m["id"] for m in again["previously_corrected"]][0] == 7


async def test_update_item_defaults_leave_dates_alone() -> None:
    item = UpdateItem(id=1, tags=["x"])
    assert item.expires_at is UNSET and item.last_confirmed_at is UNSET


async def test_start_reembeds_stale_rows_in_the_background(
    db: Database, make_settings: Callable[..., Settings], clock: Clock
) -> None:
    old = MemoryService(db, CountingEmbedder(model="old-model"), make_settings(), clock=clock)
    await remember(old, "Owls hunt at night.")
    new = MemoryService(db, CountingEmbedder(), make_settings(), clock=clock)
    await new.start()
    task = new.reembedder.start_background()  # the running walk, or a no-op walk if it already ended
    assert task is not None
    await asyncio.wait_for(task, timeout=10)
    assert await new.reembedder.count_stale() == 0
    assert (await new.recall(ALICE, "Owls hunt at night.", limit=1))["matches"][0]["id"] == 1
    await new.stop()


async def test_update_with_new_text_reports_near_duplicates(service: MemoryService) -> None:
    await remember(service, "My dog's name is Coco.")
    await remember(service, "I work as a nurse.")
    result = await service.update_memory(ALICE, UpdateItem(id=2, text="The name of my dog is Coco."))
    assert result["message"] == "Ok" and [c["id"] for c in result["candidates"]] == [1]
    plain = await service.update_memory(ALICE, UpdateItem(id=1, tags=["pets"]))
    assert "candidates" not in plain
