"""The memory service: every memory operation, scoped to a user, with the Java server's rules.

It validates and normalises input, refuses secrets, finds duplicates, embeds text (always before
a transaction, never inside one), runs batches with one savepoint per item so a failing item never
takes the others down, and keeps the in-memory vector index in step with what was committed.
Results are payload dicts in the wire contract's shape; the service knows nothing about MCP.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import structlog

from ownsona.config import Settings
from ownsona.db import Database
from ownsona.embeddings.base import Embedder, EmbeddingError
from ownsona.memory import neardup, store
from ownsona.memory import validation as check
from ownsona.memory.errors import (
    DATABASE_ERROR,
    EMBEDDING_ERROR,
    LIMIT_EXCEEDED,
    ServiceError,
    invalid,
    not_found,
)
from ownsona.memory.inputs import UNSET, Filters, RememberItem, UpdateItem
from ownsona.memory.limits import MemoryLimits
from ownsona.memory.normalize import duplicate_key
from ownsona.memory.prompt import build_prompt, within_budget
from ownsona.memory.reembed import Reembedder
from ownsona.memory.records import Embedding, MemoryPatch, MemoryRecord, NewMemory
from ownsona.memory.search import fts_query, fuse
from ownsona.memory.shapes import export_shape, list_shape, match_shape
from ownsona.memory.tags import MAX_TAGS, normalize_tags
from ownsona.memory.timestamps import now_ms, to_iso
from ownsona.memory.vectors import UserVectors, VectorIndex

log = structlog.get_logger("ownsona.memory")

T = TypeVar("T")
IndexChange = Callable[[VectorIndex], None]

# How many candidates each retriever hands to fusion, relative to the requested limit.
CANDIDATE_POOL = 4
MIN_CANDIDATE_POOL = 32
UPDATE_FIELDS = ("text", "tags", "importance", "expires_at", "last_confirmed_at")


@dataclass
class _Outcome:
    """What one batch item did: a payload (or an error) and the index change to apply after commit."""

    payload: dict[str, Any] | None = None
    error: ServiceError | None = None
    change: IndexChange | None = None


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


@dataclass
class _UpdateItem:
    position: int
    memory_id: int
    patch: MemoryPatch
    changed_fields: list[str]
    near: list[tuple[int, float]] = field(default_factory=list)  # for new text: similar live rows
    corrected: list[tuple[int, float]] = field(default_factory=list)  # and similar tombstones


class MemoryService:
    """Memory operations for many users over one database and one embedder."""

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        settings: Settings,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._settings = settings
        self.limits = MemoryLimits.from_settings(settings)
        self._clock = clock
        self._index: VectorIndex | None = None
        self.reembedder = Reembedder(db, embedder, on_vector=self._reembedded)

    # ------------------------------------------------------------------ lifecycle and plumbing

    async def start(self) -> None:
        """Called once the database is open: re-embed stale rows in the background if asked to."""
        if self._settings.reembed_on_start:
            self.reembedder.start_background()

    async def stop(self) -> None:
        await self.reembedder.stop()

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def embedder_model(self) -> str:
        return self._embedder.model

    def _reembedded(self, user_id: str, memory_id: int, vector: np.ndarray, deleted: bool,
                    expires_at: int | None) -> None:
        self._vector_index().upsert(user_id, memory_id, vector, deleted=deleted, expires_at=expires_at)

    def _vector_index(self) -> VectorIndex:
        # An OpenAI-compatible embedder may learn its dimension from its first answer.
        dimensions = self._embedder.dimensions
        if self._index is None or self._index.dimensions != dimensions:
            self._index = VectorIndex(self._load_vectors, dimensions)
        return self._index

    async def _load_vectors(self, user_id: str) -> tuple[int, store.VectorRows]:
        e = self._embedder
        return await self._db.read(lambda c: store.load_vectors(c, user_id, e.provider, e.model, e.dimensions))

    async def _user_vectors(self, user_id: str, epoch: int | None = None) -> UserVectors:
        """The user's vector index; with `epoch` (read with the query), reloaded if stale."""
        try:
            index = self._vector_index()
            if epoch is None:
                return await index.for_user(user_id)
            return await index.current(user_id, epoch)
        except sqlite3.Error:
            log.exception("vector_load_failed")
            raise ServiceError(DATABASE_ERROR, "loading vectors failed.") from None

    def _apply(self, changes: Sequence[IndexChange | None]) -> None:
        index = self._vector_index()
        for change in changes:
            if change is not None:
                change(index)

    async def _read(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.read(fn)
        except sqlite3.Error:
            log.exception("database_read_failed", op=op)
            raise ServiceError(DATABASE_ERROR, f"{op} failed.") from None

    async def _write(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.write(fn)
        except sqlite3.Error:
            log.exception("database_write_failed", op=op)
            raise ServiceError(DATABASE_ERROR, f"{op} failed.") from None

    async def _embed(self, texts: Sequence[str]) -> np.ndarray:
        try:
            vectors = await self._embedder.embed(list(texts))
        except EmbeddingError as exc:
            raise ServiceError(EMBEDDING_ERROR, f"Embedding provider call failed: {exc}") from None
        if vectors.shape[0] != len(texts):
            raise ServiceError(
                EMBEDDING_ERROR, f"Embedding provider returned {vectors.shape[0]} vectors for {len(texts)} texts."
            )
        return vectors

    def _embedding(self, vector: np.ndarray) -> Embedding:
        return Embedding(vector, self._embedder.provider, self._embedder.model)

    def _now(self) -> int:
        return self._clock()

    # ------------------------------------------------------------------ remember

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
            text=text, key=duplicate_key(text), tags=tuple(tags), importance=importance or 0.5,
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
                results.append({"input_index": position, "ok": False, "error": (error or _lost()).as_payload()})
                continue
            if outcome.payload["message"] == "Ok":
                inserted += 1
            else:
                duplicates += 1
            results.append({"input_index": position, "ok": True, **outcome.payload})
        summary = {"total": len(items), "inserted": inserted, "duplicates": duplicates, "errors": failed}
        return {"ok": True, "results": results, "summary": summary}

    async def _remember_items(self, user_id: str, items: list[_NewItem], now: int, *, op: str) -> list[_Outcome]:
        # 1. Exact duplicates first: they cost no embedding (§8.1 #15).
        keys = [item.memory.key for item in items]
        epoch, twins = await self._read(
            op, lambda c: (store.epoch(c), {k: store.find_live_by_key(c, user_id, k) for k in set(keys)})
        )
        first_with_key: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.memory.key in first_with_key:
                item.twin_of = first_with_key[item.memory.key]
            else:
                first_with_key[item.memory.key] = i
        to_embed = [i for i, item in enumerate(items) if twins[item.memory.key] is None and item.twin_of is None]
        # 2. Embed, outside any transaction.
        failures: dict[int, ServiceError] = {}
        if to_embed:
            try:
                vectors = await self._embed([items[i].memory.text for i in to_embed])
            except ServiceError as exc:
                if exc.code == EMBEDDING_ERROR and "returned" in exc.message:
                    raise
                failures = {i: exc for i in to_embed}
            else:
                for i, vector in zip(to_embed, vectors, strict=True):
                    items[i].vector = vector
        for item in items:  # a later twin inserts with its first twin's vector if that one fails
            if item.twin_of is not None:
                item.vector = items[item.twin_of].vector
        # 3. Semantic neighbours: existing rows from the index, earlier items of this batch by hand.
        embedded = [i for i in to_embed if i not in failures]
        if embedded:
            vectors_now = await self._user_vectors(user_id, epoch)
            threshold, k = self.limits.dedup_threshold, self.limits.dedup_top_k
            for n, i in enumerate(embedded):
                item = items[i]
                if item.policy == "insert":
                    continue
                assert item.vector is not None
                item.near = [h for h in vectors_now.search(item.vector, k, now) if h[1] >= threshold]
                item.corrected = [
                    h for h in vectors_now.search(item.vector, k, now, scope="deleted") if h[1] >= threshold
                ]
                for j in embedded[:n]:
                    other = items[j].vector
                    assert other is not None
                    score = float(item.vector @ other)
                    if score >= threshold:
                        item.near_in_batch.append((j, score))
        # 4. One transaction, one savepoint per item.
        def work(conn: sqlite3.Connection) -> list[_Outcome]:
            inserted: dict[int, int] = {}
            outcomes: list[_Outcome] = []
            for i, item in enumerate(items):
                if i in failures:
                    outcomes.append(_Outcome(error=failures[i]))
                    continue
                conn.execute("SAVEPOINT item")
                try:
                    outcome = self._remember_one(conn, user_id, i, item, inserted, now)
                except sqlite3.Error:
                    conn.execute("ROLLBACK TO item")
                    log.exception("remember_item_failed", op=op, input_index=item.position)
                    outcome = _Outcome(error=ServiceError(DATABASE_ERROR, "insert failed."))
                conn.execute("RELEASE item")
                outcomes.append(outcome)
            return outcomes

        outcomes = await self._write(op, work)
        self._apply([o.change for o in outcomes])
        return outcomes

    def _remember_one(
        self, conn: sqlite3.Connection, user_id: str, i: int, item: _NewItem, inserted: dict[int, int], now: int
    ) -> _Outcome:
        twin = store.find_live_by_key(conn, user_id, item.memory.key)
        if twin is not None:
            return self._merge_into(conn, user_id, twin, item, now)
        if item.vector is None:  # only an in-batch twin whose first copy failed to embed
            return _Outcome(error=ServiceError(EMBEDDING_ERROR, "Embedding provider call failed."))
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
            return _Outcome({"memory_id": candidates[0]["id"], "message": "Near-duplicate skipped", **extra})
        embedding = self._embedding(item.vector)
        memory_id = store.insert(conn, user_id, item.memory, embedding, now)
        inserted[i] = memory_id
        vector, expires = item.vector, item.memory.expires_at

        def change(index: VectorIndex) -> None:
            index.upsert(user_id, memory_id, vector, expires_at=expires)

        return _Outcome({"memory_id": memory_id, "message": "Ok", **extra}, change=change)

    def _merge_into(
        self, conn: sqlite3.Connection, user_id: str, twin: MemoryRecord, item: _NewItem, now: int
    ) -> _Outcome:
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

        return _Outcome({"memory_id": twin.id, "message": "Already remembered", "merged_fields": merged}, change=change)

    # ------------------------------------------------------------------ recall

    async def recall(
        self,
        user_id: str,
        query: str | None,
        *,
        limit: int | None = None,
        min_score: float | None = None,
        tags: Sequence[str | None] | None = None,
    ) -> dict[str, Any]:
        """Hybrid search: BM25 and vector similarity fused; `score` is a similarity in [0, 1]."""
        records = await self._recall_records(user_id, query, limit=limit, min_score=min_score, tags=tags)
        return {"ok": True, "query": query, "matches": [match_shape(r, s) for r, s in records]}

    async def _recall_records(
        self,
        user_id: str,
        query: str | None,
        *,
        limit: int | None,
        min_score: float | None,
        tags: Sequence[str | None] | None,
        field_name: str = "query",
    ) -> list[tuple[MemoryRecord, float]]:
        text = check.text(query, field=field_name, max_chars=self.limits.max_text_chars)
        count = check.limit(limit, default=self.limits.default_recall_limit, maximum=self.limits.max_recall_limit)
        threshold = check.min_score(min_score)
        tag_filter = normalize_tags(tags) if tags else []
        now = self._now()
        vector = (await self._embed([text]))[0]
        pool = max(MIN_CANDIDATE_POOL, count * CANDIDATE_POOL)
        match = fts_query(text)

        def keyword_side(conn: sqlite3.Connection) -> tuple[int, np.ndarray | None, list[tuple[int, float]]]:
            allowed = store.tagged_ids(conn, user_id, tag_filter) if tag_filter else None
            return store.epoch(conn), allowed, store.bm25_hits(conn, user_id, match, now, pool, tag_filter)

        epoch, allowed, keyword_hits = await self._read("recall", keyword_side)
        vectors = await self._user_vectors(user_id, epoch)
        vector_hits = vectors.search(vector, pool, now, allowed=allowed)
        # Fusion wants the cosine of every keyword hit too; brute force has them all.
        seen = {i for i, _ in vector_hits}
        vector_hits += vectors.similarities([i for i, _ in keyword_hits if i not in seen], vector)
        ranked = fuse(keyword_hits, vector_hits, count)
        if threshold is not None:
            ranked = [(i, s) for i, s in ranked if s >= threshold]
        rows = await self._read("recall", lambda c: store.get_many(c, user_id, [i for i, _ in ranked]))
        return [(rows[i], s) for i, s in ranked if i in rows and rows[i].is_active(now)]

    async def build_context_prompt(
        self,
        user_id: str,
        user_prompt: str | None,
        *,
        limit: int | None = None,
        max_chars: int | None = None,
        min_score: float | None = None,
        tags: Sequence[str | None] | None = None,
    ) -> dict[str, Any]:
        prompt = check.text(user_prompt, field="user_prompt", max_chars=self.limits.max_text_chars)
        if max_chars is not None and max_chars <= 0:
            raise invalid(f"max_chars must be > 0 (got {max_chars}).")
        records = await self._recall_records(
            user_id, prompt, limit=limit, min_score=min_score, tags=tags, field_name="user_prompt"
        )
        facts = within_budget([r.text for r, _ in records], max_chars)
        text = build_prompt(prompt, facts, omitted=len(records) - len(facts))
        return {"ok": True, "prompt": text, "memory_ids": [r.id for r, _ in records[: len(facts)]]}

    async def text_search(self, user_id: str, text: str | None, *, limit: int | None = None) -> dict[str, Any]:
        needle = check.text(text, field="text", max_chars=self.limits.max_text_chars)
        count = check.limit(limit, default=self.limits.default_list_limit, maximum=self.limits.max_recall_limit)
        now = self._now()
        key = duplicate_key(needle)
        rows = await self._read("text_search", lambda c: store.text_search(c, user_id, key, now, count))
        return {"ok": True, "matches": [list_shape(r) for r in rows]}

    # ------------------------------------------------------------------ reading by id and listing

    async def get_record(self, user_id: str, memory_id: int) -> MemoryRecord:
        record = await self._read("get", lambda c: store.get(c, user_id, memory_id))
        if record is None:
            raise not_found(memory_id)
        return record

    async def get_memory(self, user_id: str, memory_id: int) -> dict[str, Any]:
        return {"ok": True, "memory": match_shape(await self.get_record(user_id, memory_id), 0.0)}

    async def list_memories(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
        filters: Filters | None = None,
    ) -> dict[str, Any]:
        count = check.limit(limit, default=self.limits.default_list_limit, maximum=self.limits.max_recall_limit)
        now = self._now()
        cleanup = check.cleanup_filter(filters, now)
        rows = await self._read(
            "list",
            lambda c: store.list_page(
                c, user_id, now, limit=count, offset=max(offset, 0), include_deleted=include_deleted, cleanup=cleanup
            ),
        )
        return {"ok": True, "memories": [list_shape(r) for r in rows]}

    async def count_memories(
        self,
        user_id: str,
        *,
        include_deleted: bool = False,
        tags: Sequence[str | None] | None = None,
        source_provider: str | None = None,
        filters: Filters | None = None,
    ) -> dict[str, Any]:
        now = self._now()
        cleanup = check.cleanup_filter(filters, now)
        tag_filter = normalize_tags(tags) if tags else []
        provider = source_provider.strip() if source_provider else None
        total = await self._read(
            "count",
            lambda c: store.count(
                c, user_id, now, include_deleted=include_deleted, tags=tag_filter, source_provider=provider,
                cleanup=cleanup,
            ),
        )
        return {"ok": True, "count": total}

    async def memory_stats(self, user_id: str) -> dict[str, Any]:
        now = self._now()
        stats = await self._read("stats", lambda c: store.stats(c, user_id, now, top_tags=self.limits.top_tags))
        payload: dict[str, Any] = {
            "ok": True,
            "total": stats.total,
            "active": stats.active,
            "soft_deleted": stats.soft_deleted,
            "expired": stats.expired,
        }
        if stats.avg_importance is not None:
            payload["avg_importance"] = round(stats.avg_importance, 6)
        if stats.oldest_created_at is not None and stats.newest_created_at is not None:
            payload["oldest_created_at"] = to_iso(stats.oldest_created_at)
            payload["newest_created_at"] = to_iso(stats.newest_created_at)
        payload["top_tags"] = [{"tag": t, "count": n} for t, n in stats.top_tags]
        payload["by_provider"] = [{"provider": p, "count": n} for p, n in stats.by_provider]
        return payload

    async def list_tags(self, user_id: str, *, include_deleted: bool = False, limit: int | None = None) -> dict[str, Any]:
        count = check.limit(limit, default=self.limits.max_list_tags, maximum=self.limits.max_list_tags)
        now = self._now()
        rows = await self._read(
            "list_tags", lambda c: store.tag_counts(c, user_id, now, include_deleted=include_deleted, limit=count)
        )
        return {"ok": True, "tags": [{"tag": t, "count": n} for t, n in rows]}

    async def export_memories(self, user_id: str, *, include_deleted: bool = True) -> dict[str, Any]:
        now = self._now()
        cap = self.limits.export_max_rows

        def work(conn: sqlite3.Connection) -> tuple[int, list[MemoryRecord]]:
            total = store.count(conn, user_id, now, include_deleted=include_deleted, tags=None,
                                source_provider=None, cleanup=None)
            if total > cap:
                return total, []
            return total, list(store.iter_export(conn, user_id, now, include_deleted=include_deleted))

        total, rows = await self._read("export", work)
        if total > cap:
            raise ServiceError(LIMIT_EXCEEDED, f"export exceeds maximum of {cap} rows (got {total}). Contact the operator.")
        return {"ok": True, "count": len(rows), "memories": [export_shape(r) for r in rows]}

    async def find_near_duplicates(
        self, user_id: str, *, threshold: float = 0.92, max_groups: int = 50
    ) -> dict[str, Any]:
        if not 0.5 <= threshold <= 1.0:
            raise invalid(f"threshold must be between 0.5 and 1.0 (got {threshold})")
        if not 1 <= max_groups <= 500:
            raise invalid(f"max_groups must be between 1 and 500 (got {max_groups})")
        now = self._now()
        vectors = await self._user_vectors(user_id, await self._read("findNearDuplicates", store.epoch))
        ids, matrix = vectors.active_matrix(now)
        if len(ids) > self.limits.near_duplicate_max_rows:
            raise ServiceError(
                LIMIT_EXCEEDED,
                f"find_near_duplicates supports at most {self.limits.near_duplicate_max_rows} active memories "
                f"(got {len(ids)}).",
            )
        groups = await asyncio.get_running_loop().run_in_executor(None, neardup.find_groups, ids, matrix, threshold)
        groups = groups[:max_groups]
        member_ids = [i for g in groups for i in g.ids]
        rows = await self._read("findNearDuplicates", lambda c: store.get_many(c, user_id, member_ids))
        payload_groups = []
        for group in groups:
            members = [match_shape(rows[i], group.best[i]) for i in group.ids if i in rows]
            payload_groups.append(
                {"ids": group.ids, "max_similarity": round(group.max_similarity, 6), "pair_count": group.pair_count,
                 "memories": members}
            )
        summary = {"groups": len(payload_groups), "pairs": sum(g.pair_count for g in groups)}
        return {"ok": True, "threshold": threshold, "groups": payload_groups, "summary": summary}

    # ------------------------------------------------------------------ update

    def _validate_update(self, item: UpdateItem, position: int, now: int, *, label: str) -> _UpdateItem:
        if item.id is None:
            raise invalid(f"{label}id is required.")
        changed: list[str] = []
        fields: dict[str, Any] = {}
        if item.text is not None:
            text = check.text(item.text, field=f"{label}text", max_chars=self.limits.max_text_chars)
            check.no_secret(text)
            fields.update(text=text, key=duplicate_key(text))
            changed.append("text")
        if item.tags is not None:
            fields["tags"] = tuple(normalize_tags(item.tags, field=f"{label}tags"))
            changed.append("tags")
        if item.importance is not None:
            fields["importance"] = check.importance(item.importance, field=f"{label}importance")
            changed.append("importance")
        if item.expires_at is not UNSET:
            fields["expires_at"] = check.expires_at(item.expires_at, now, field=f"{label}expires_at")  # type: ignore[arg-type]
            changed.append("expires_at")
        if item.last_confirmed_at is not UNSET:
            fields["last_confirmed_at"] = check.not_in_future(
                item.last_confirmed_at, now, field=f"{label}last_confirmed_at"  # type: ignore[arg-type]
            )
            changed.append("last_confirmed_at")
        if not changed:
            if label:
                raise invalid(
                    f"{label.rstrip('.')} supplied no changes (need at least one of: text, tags, importance, "
                    "expires_at, last_confirmed_at)."
                )
            raise invalid(
                "update_memory requires at least one of: text, tags, importance, expires_at, last_confirmed_at."
            )
        return _UpdateItem(position, item.id, MemoryPatch(**fields), changed)

    async def update_memory(self, user_id: str, item: UpdateItem, *, dry_run: bool = False) -> dict[str, Any]:
        now = self._now()
        prepared = self._validate_update(item, 0, now, label="")
        outcome = (await self._update_items(user_id, [prepared], now, dry_run=dry_run, op="update"))[0]
        if outcome.error is not None:
            raise outcome.error
        assert outcome.payload is not None
        return {"ok": True, "memory_id": prepared.memory_id, "dry_run": dry_run,
                "changed_fields": prepared.changed_fields, **outcome.payload}

    async def update_memory_batch(
        self, user_id: str, items: Sequence[UpdateItem | None], *, dry_run: bool = False
    ) -> dict[str, Any]:
        check.batch_size(len(items), self.limits.max_batch_size, field="items")
        now = self._now()
        errors: dict[int, ServiceError] = {}
        prepared: list[_UpdateItem] = []
        for position, item in enumerate(items):
            if item is None:
                errors[position] = invalid(f"items[{position}] is null.")
                continue
            try:
                prepared.append(self._validate_update(item, position, now, label=f"items[{position}]."))
            except ServiceError as exc:
                errors[position] = exc
        outcomes = await self._update_items(user_id, prepared, now, dry_run=dry_run, op="update_batch")
        by_position = {p.position: (p, o) for p, o in zip(prepared, outcomes, strict=True)}
        results: list[dict[str, Any]] = []
        updated = failed = 0
        for position, raw in enumerate(items):
            entry: dict[str, Any] = {"input_index": position}
            if raw is not None and raw.id is not None:
                entry["id"] = raw.id
            pair = by_position.get(position)
            error = errors.get(position) or (pair[1].error if pair else None)
            if error is not None or pair is None:
                failed += 1
                results.append({**entry, "ok": False, "error": (error or _lost()).as_payload()})
                continue
            updated += 1
            results.append({**entry, "ok": True, "changed_fields": pair[0].changed_fields,
                            **(pair[1].payload or {"message": "Ok"})})
        return {"ok": True, "dry_run": dry_run, "results": results,
                "summary": {"total": len(items), "updated": updated, "errors": failed}}

    async def _update_items(
        self, user_id: str, items: list[_UpdateItem], now: int, *, dry_run: bool, op: str
    ) -> list[_Outcome]:
        if not items:
            return []

        def precheck(conn: sqlite3.Connection) -> list[ServiceError | None]:
            return [self._update_problem(conn, user_id, item) for item in items]

        problems = await self._read(op, precheck)
        if dry_run:  # no write and no embedding (§8.1 #14)
            return [_Outcome(error=p) if p else _Outcome({"message": "Would update"}) for p in problems]
        to_embed = [i for i, item in enumerate(items) if problems[i] is None and item.patch.text is not None]
        if to_embed:
            try:
                vectors = await self._embed([items[i].patch.text or "" for i in to_embed])
            except ServiceError as exc:
                if "returned" in exc.message:
                    raise
                for i in to_embed:
                    problems[i] = exc
            else:
                vectors_now = await self._user_vectors(user_id)
                threshold, k = self.limits.dedup_threshold, self.limits.dedup_top_k
                for i, vector in zip(to_embed, vectors, strict=True):
                    item = items[i]
                    item.near = [h for h in vectors_now.search(vector, k, now, exclude=item.memory_id)
                                 if h[1] >= threshold]
                    item.corrected = [h for h in vectors_now.search(vector, k, now, scope="deleted")
                                      if h[1] >= threshold]
                    patch = items[i].patch
                    items[i].patch = MemoryPatch(
                        text=patch.text, key=patch.key, tags=patch.tags, importance=patch.importance,
                        expires_at=patch.expires_at, last_confirmed_at=patch.last_confirmed_at,
                        embedding=self._embedding(vector),
                    )

        def work(conn: sqlite3.Connection) -> list[_Outcome]:
            outcomes: list[_Outcome] = []
            for i, item in enumerate(items):
                if problems[i] is not None:
                    outcomes.append(_Outcome(error=problems[i]))
                    continue
                conn.execute("SAVEPOINT item")
                try:
                    outcome = self._update_one(conn, user_id, item, now)
                except sqlite3.Error:
                    conn.execute("ROLLBACK TO item")
                    log.exception("update_item_failed", op=op, input_index=item.position)
                    outcome = _Outcome(error=ServiceError(DATABASE_ERROR, "update failed."))
                conn.execute("RELEASE item")
                outcomes.append(outcome)
            return outcomes

        outcomes = await self._write(op, work)
        self._apply([o.change for o in outcomes])
        return outcomes

    @staticmethod
    def _update_problem(conn: sqlite3.Connection, user_id: str, item: _UpdateItem) -> ServiceError | None:
        record = store.get(conn, user_id, item.memory_id)
        if record is None or record.is_deleted:
            return not_found(item.memory_id)
        if item.patch.key is not None:
            twin = store.find_live_by_key(conn, user_id, item.patch.key)
            if twin is not None and twin.id != item.memory_id:
                return invalid(
                    f"Memory {twin.id} already has this text; confirm or update memory {twin.id} instead, "
                    f"or forget one of the two."
                )
        return None

    def _update_one(self, conn: sqlite3.Connection, user_id: str, item: _UpdateItem, now: int) -> _Outcome:
        problem = self._update_problem(conn, user_id, item)  # again, inside the transaction
        if problem is not None:
            return _Outcome(error=problem)
        store.update(conn, user_id, item.memory_id, item.patch, now)
        record = store.get(conn, user_id, item.memory_id)
        assert record is not None
        payload: dict[str, Any] = {"message": "Ok"}
        rows = store.get_many(conn, user_id, [h[0] for h in item.near + item.corrected])
        candidates = [match_shape(rows[m], s) for m, s in item.near if m in rows and rows[m].is_active(now)]
        corrected = [match_shape(rows[m], s) for m, s in item.corrected if m in rows and rows[m].is_deleted]
        if candidates:
            payload["candidates"] = candidates
        if corrected:
            payload["previously_corrected"] = corrected
        memory_id, expires = record.id, record.expires_at
        embedding = item.patch.embedding

        def change(index: VectorIndex) -> None:
            if embedding is not None:
                index.upsert(user_id, memory_id, embedding.vector, expires_at=expires)
            else:
                index.set_state(user_id, memory_id, deleted=False, expires_at=expires)

        return _Outcome(payload, change=change)

    # ------------------------------------------------------------------ confirm, forget, restore

    async def confirm(self, user_id: str, memory_id: int) -> dict[str, Any]:
        now = self._now()
        if not await self._write("confirm", lambda c: store.confirm(c, user_id, memory_id, now)):
            raise not_found(memory_id)
        return {"ok": True, "memory_id": memory_id, "last_confirmed_at": to_iso(now), "message": "Confirmed"}

    async def forget(
        self,
        user_id: str,
        memory_id: int,
        *,
        hard_delete: bool = False,
        reason: str | None = None,
        replaced_by_id: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        why = check.reason(reason)
        if hard_delete and (why is not None or replaced_by_id is not None):
            raise invalid(
                "hard_delete drops the row; reason and replaced_by_id can't be recorded. "
                "Use soft delete (hard_delete=false) if you want a tombstone."
            )
        if replaced_by_id is not None and replaced_by_id == memory_id:
            raise invalid("replaced_by_id must name a different memory.")
        now = self._now()

        def work(conn: sqlite3.Connection) -> tuple[MemoryRecord, IndexChange | None]:
            record = store.get(conn, user_id, memory_id)
            if record is None:
                raise not_found(memory_id)
            if replaced_by_id is not None and store.get(conn, user_id, replaced_by_id) is None:
                raise ServiceError("NOT_FOUND", f"Memory {replaced_by_id} (replaced_by_id) not found.")
            if dry_run:
                return record, None
            if hard_delete:
                store.hard_delete(conn, user_id, memory_id)
                return record, lambda index: index.remove(user_id, memory_id)
            store.soft_delete(conn, user_id, memory_id, now, reason=why, replaced_by_id=replaced_by_id)
            expires = record.expires_at
            return record, lambda index: index.set_state(user_id, memory_id, deleted=True, expires_at=expires)

        record, change = await (self._read if dry_run else self._write)("forget", work)
        self._apply([change])
        already = record.is_deleted
        if dry_run:
            message = "Would hard-delete" if hard_delete else (
                "Would update tombstone (already soft-deleted)" if already else "Would soft-delete")
        else:
            message = "Hard deleted" if hard_delete else (
                "Already soft-deleted (tombstone updated)" if already else "Forgotten")
        return {"ok": True, "memory_id": memory_id, "dry_run": dry_run, "already_deleted": already,
                "message": message}

    async def forget_batch(
        self, user_id: str, ids: Sequence[int | None], *, reason: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        check.batch_size(len(ids), self.limits.max_batch_size, field="ids")
        why = check.reason(reason)
        now = self._now()

        def one(conn: sqlite3.Connection, position: int, memory_id: int | None) -> _Outcome:
            if memory_id is None:
                return _Outcome(error=invalid(f"ids[{position}] is null."))
            record = store.get(conn, user_id, memory_id)
            if record is None:
                return _Outcome(error=not_found(memory_id))
            already = record.is_deleted
            if dry_run:
                message = "Would update tombstone (already soft-deleted)" if already else "Would soft-delete"
                return _Outcome({"already_deleted": already, "message": message})
            store.soft_delete(conn, user_id, memory_id, now, reason=why)
            expires = record.expires_at
            message = "Already soft-deleted (tombstone updated)" if already else "Forgotten"
            return _Outcome(
                {"already_deleted": already, "message": message},
                change=lambda index: index.set_state(user_id, memory_id, deleted=True, expires_at=expires),
            )

        def work(conn: sqlite3.Connection) -> list[_Outcome]:
            outcomes = []
            for position, memory_id in enumerate(ids):
                conn.execute("SAVEPOINT item")
                try:
                    outcome = one(conn, position, memory_id)
                except sqlite3.Error:
                    conn.execute("ROLLBACK TO item")
                    log.exception("forget_item_failed", input_index=position)
                    outcome = _Outcome(error=ServiceError(DATABASE_ERROR, "forget failed."))
                conn.execute("RELEASE item")
                outcomes.append(outcome)
            return outcomes

        if dry_run:
            outcomes = await self._read("forget", lambda c: [one(c, p, i) for p, i in enumerate(ids)])
        else:
            outcomes = await self._write("forget", work)
            self._apply([o.change for o in outcomes])
        results: list[dict[str, Any]] = []
        deleted = already_deleted = failed = 0
        for position, (memory_id, outcome) in enumerate(zip(ids, outcomes, strict=True)):
            entry: dict[str, Any] = {"input_index": position, "id": memory_id}
            if outcome.error is not None or outcome.payload is None:
                failed += 1
                results.append({**entry, "ok": False, "error": (outcome.error or _lost()).as_payload()})
                continue
            if outcome.payload["already_deleted"]:
                already_deleted += 1
            else:
                deleted += 1
            results.append({**entry, "ok": True, **outcome.payload})
        summary = {"total": len(ids), "deleted": deleted, "already_deleted": already_deleted, "errors": failed}
        return {"ok": True, "dry_run": dry_run, "results": results, "summary": summary}

    async def restore(self, user_id: str, memory_id: int) -> dict[str, Any]:
        """Undo a soft delete. Refused when a live memory already holds the same text."""

        def work(conn: sqlite3.Connection) -> tuple[bool, IndexChange | None]:
            record = store.get(conn, user_id, memory_id)
            if record is None:
                raise not_found(memory_id)
            if not record.is_deleted:
                return False, None
            twin = store.find_live_by_key(conn, user_id, duplicate_key(record.text))
            if twin is not None:
                raise invalid(
                    f"Memory {twin.id} already has this text; restoring memory {memory_id} would duplicate it."
                )
            store.restore(conn, user_id, memory_id)
            expires = record.expires_at
            return True, lambda index: index.set_state(user_id, memory_id, deleted=False, expires_at=expires)

        restored, change = await self._write("restore", work)
        self._apply([change])
        return {"ok": True, "memory_id": memory_id, "restored": restored,
                "message": "Restored" if restored else "Not deleted"}


def _lost() -> ServiceError:
    return ServiceError(DATABASE_ERROR, "the item was not processed.")

