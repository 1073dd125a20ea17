"""remember and remember_batch: validation, exact and near duplicates, per-item savepoints."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from ownsona.memory import store
from ownsona.memory import validation as check
from ownsona.memory.core import MemoryCore, Outcome, in_savepoint, lost
from ownsona.memory.errors import EMBEDDING_ERROR, ServiceError, invalid
from ownsona.memory.inputs import RememberItem
from ownsona.memory.normalize import duplicate_key
from ownsona.memory.records import MemoryPatch, MemoryRecord, NewMemory
from ownsona.memory.shapes import match_shape
from ownsona.memory.tags import MAX_TAGS, normalize_tags
from ownsona.memory.vectors import VectorIndex


@dataclass
class _NewItem:
    position: int
    memory: NewMemory
    policy: str
    importance_given: bool
    twin_of: int | None = None  # an earlier item of the same batch with the same duplicate key
    vector: np.ndarray | None = None
    near: list[tuple[int, float]] = field(default_factory=list)  # existing rows
    near_in_batch: list[tuple[int, float]] = field(default_factory=list)  # (position, score)
    corrected: list[tuple[int, float]] = field(default_factory=list)


class RememberOps(MemoryCore):
    """remember / remember_batch."""

    def _validate_new(self, item: RememberItem, default_policy: str, default_provider: str | None, now: int,
                      position: int) -> _NewItem:
        text = check.text(item.text, field="text", max_chars=self.limits.max_text_chars)
        check.no_secret(text)
        tags = normalize_tags(item.tags)
        importance = check.importance(item.importance)
        capture = check.capture_mode(item.capture_mode)
        session = check.session_id(item.session_id)
        policy = check.dedup_policy(item.dedup_policy, default_policy)
        expires = check.expires_at(item.expires_at, now)
        confirmed = check.not_in_future(item.last_confirmed_at, now, field="last_confirmed_at")
        provider = check.source_provider(item.source_provider) or default_provider
        memory = NewMemory(
            text=text, key=duplicate_key(text), tags=tuple(tags), importance=importance,
            source_provider=provider, capture_mode=capture, session_id=session,
            expires_at=expires, last_confirmed_at=confirmed,
        )
        return _NewItem(position, memory, policy, item.importance is not None)

    async def remember(self, user_id: str, item: RememberItem) -> dict[str, Any]:
        """Store one fact; see `remember_batch` for the rules. Failures raise ServiceError."""
        now = self._now()
        prepared = self._validate_new(item, "ask", None, now, 0)
        outcome = (await self._remember_items(user_id, [prepared], now, op="remember"))[0]
        if outcome.error is not None:
            raise outcome.error
        assert outcome.payload is not None
        return {"ok": True, **outcome.payload}

    async def remember_batch(
        self,
        user_id: str,
        items: Sequence[RememberItem | None],
        *,
        source_provider: str | None = None,
        dedup_policy: str | None = None,
    ) -> dict[str, Any]:
        """Store many facts in one call; each item succeeds or fails on its own."""
        check.batch_size(len(items), self.limits.max_batch_size, field="items")
        default_policy = check.dedup_policy(dedup_policy)
        default_provider = check.source_provider(source_provider)
        now = self._now()
        errors: dict[int, ServiceError] = {}
        prepared: list[_NewItem] = []
        for position, item in enumerate(items):
            if item is None:
                errors[position] = invalid(f"items[{position}] is null.")
                continue
            try:
                prepared.append(self._validate_new(item, default_policy, default_provider, now, position))
            except ServiceError as exc:
                errors[position] = exc
        outcomes = await self._remember_items(user_id, prepared, now, op="remember_batch") if prepared else []
        by_position = {p.position: o for p, o in zip(prepared, outcomes, strict=True)}
        results: list[dict[str, Any]] = []
        inserted = duplicates = failed = 0
        for position in range(len(items)):
            outcome = by_position.get(position)
            error = errors.get(position) or (outcome.error if outcome else None)
            if error is not None or outcome is None or outcome.payload is None:
                failed += 1
                results.append({"input_index": position, "ok": False, "error": (error or lost()).as_payload()})
                continue
            if outcome.payload["message"] == "Ok":
                inserted += 1
            else:
                duplicates += 1
            results.append({"input_index": position, "ok": True, **outcome.payload})
        summary = {"total": len(items), "inserted": inserted, "duplicates": duplicates, "errors": failed}
        return {"ok": True, "results": results, "summary": summary}

    async def _remember_items(self, user_id: str, items: list[_NewItem], now: int, *, op: str) -> list[Outcome]:
        """Exact twins first (they cost no embedding, §8.1 #15), then one embedding call outside any
        transaction, then semantic neighbours, then one transaction with a savepoint per item."""
        epoch, twins = await self._read(
            op, lambda c: (store.epoch(c), {i.memory.key: store.find_live_by_key(c, user_id, i.memory.key)
                                            for i in items})
        )
        first_with_key: dict[str, int] = {}
        for i, item in enumerate(items):
            item.twin_of = first_with_key.setdefault(item.memory.key, i)
            if item.twin_of == i:
                item.twin_of = None
        to_embed = [i for i, item in enumerate(items) if twins[item.memory.key] is None and item.twin_of is None]
        failures: dict[int, ServiceError] = {}
        if to_embed:
            vectors = await self._try_embed([items[i].memory.text for i in to_embed])
            if isinstance(vectors, ServiceError):
                failures = dict.fromkeys(to_embed, vectors)
            else:
                for i, vector in zip(to_embed, vectors, strict=True):
                    items[i].vector = vector
        for item in items:  # a later twin inserts with its first twin's vector if that one fails
            if item.twin_of is not None:
                item.vector = items[item.twin_of].vector
        embedded = [i for i in to_embed if i not in failures]
        if embedded:
            await self._find_neighbours(user_id, [items[i] for i in embedded], embedded, epoch, now)

        def work(conn: sqlite3.Connection) -> list[Outcome]:
            inserted: dict[int, int] = {}
            outcomes: list[Outcome] = []
            for i, item in enumerate(items):
                if i in failures:
                    outcomes.append(Outcome(error=failures[i]))
                    continue
                outcomes.append(in_savepoint(
                    conn, partial(self._remember_one, conn, user_id, i, item, inserted, now),
                    failure="insert failed.", event="remember_item_failed", op=op, input_index=item.position,
                ))
            return outcomes

        outcomes = await self._write(op, work)
        self._apply([o.change for o in outcomes])
        return outcomes

    async def _find_neighbours(
        self, user_id: str, items: list[_NewItem], positions: list[int], epoch: int, now: int
    ) -> None:
        """Similar stored rows and tombstones from the index; similar earlier items of the batch."""
        vectors = await self._user_vectors(user_id, epoch)
        threshold, k = self.limits.dedup_threshold, self.limits.dedup_top_k
        for n, item in enumerate(items):
            if item.policy == "insert" or item.vector is None:
                continue
            live, dead = vectors.search_live_and_deleted(item.vector, k, now)
            item.near = [h for h in live if h[1] >= threshold]
            item.corrected = [h for h in dead if h[1] >= threshold]
            for earlier, position in zip(items[:n], positions[:n], strict=True):
                assert earlier.vector is not None
                score = float(item.vector @ earlier.vector)
                if score >= threshold:
                    item.near_in_batch.append((position, score))

    def _remember_one(
        self, conn: sqlite3.Connection, user_id: str, i: int, item: _NewItem, inserted: dict[int, int], now: int
    ) -> Outcome:
        twin = store.find_live_by_key(conn, user_id, item.memory.key)
        if twin is not None:
            return self._merge_into(conn, user_id, twin, item, now)
        if item.vector is None:  # only an in-batch twin whose first copy failed to embed
            return Outcome(error=ServiceError(EMBEDDING_ERROR, "Embedding provider call failed."))
        near = list(item.near) + [(inserted[j], s) for j, s in item.near_in_batch if j in inserted]
        near.sort(key=lambda h: (-h[1], -h[0]))
        near = near[: self.limits.dedup_top_k]
        rows = store.get_many(conn, user_id, [h[0] for h in near] + [h[0] for h in item.corrected])
        candidates = [match_shape(rows[m], s) for m, s in near if m in rows and rows[m].is_active(now)]
        corrected = [match_shape(rows[m], s) for m, s in item.corrected if m in rows and rows[m].is_deleted]
        extra: dict[str, Any] = {}
        if candidates:
            extra["candidates"] = candidates
        if corrected:
            extra["previously_corrected"] = corrected
        if item.policy == "skip_if_near" and candidates and candidates[0]["score"] >= self.limits.skip_threshold:
            return Outcome({"memory_id": candidates[0]["id"], "message": "Near-duplicate skipped", **extra})
        embedding = self._embedding(item.vector)
        memory_id = store.insert(conn, user_id, item.memory, embedding, now)
        inserted[i] = memory_id
        vector, expires = item.vector, item.memory.expires_at

        def change(index: VectorIndex) -> None:
            index.upsert(user_id, memory_id, vector, expires_at=expires)

        return Outcome({"memory_id": memory_id, "message": "Ok", **extra}, change=change)

    def _merge_into(
        self, conn: sqlite3.Connection, user_id: str, twin: MemoryRecord, item: _NewItem, now: int
    ) -> Outcome:
        """Re-stating a stored fact confirms it and merges what the new copy adds (§8.1 #4, #5)."""
        new = item.memory
        merged: list[str] = []
        tags = list(twin.tags) + [t for t in new.tags if t not in twin.tags]
        tags = tags[:MAX_TAGS]
        patch: dict[str, Any] = {}
        if tuple(tags) != twin.tags:
            patch["tags"] = tuple(tags)
            merged.append("tags")
        if item.importance_given and new.importance != twin.importance:
            patch["importance"] = new.importance
            merged.append("importance")
        if new.expires_at is not None and new.expires_at != twin.expires_at:
            patch["expires_at"] = new.expires_at
        elif twin.is_expired(now):  # an expired twin is revived: the fact was just stated again
            patch["expires_at"] = None
        if "expires_at" in patch:
            merged.append("expires_at")
        patch["last_confirmed_at"] = new.last_confirmed_at or now
        merged.append("last_confirmed_at")
        store.update(conn, user_id, twin.id, MemoryPatch(**patch), now, touch=len(merged) > 1)
        expires = patch.get("expires_at", twin.expires_at)

        def change(index: VectorIndex) -> None:
            index.set_state(user_id, twin.id, deleted=False, expires_at=expires)

        return Outcome({"memory_id": twin.id, "message": "Already remembered", "merged_fields": merged}, change=change)


