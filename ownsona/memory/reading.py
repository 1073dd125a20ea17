"""Read operations: hybrid recall, the context prompt, listing, counting, statistics, export, near duplicates."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from ownsona.memory import neardup, store
from ownsona.memory import validation as check
from ownsona.memory.core import MemoryCore
from ownsona.memory.errors import LIMIT_EXCEEDED, ServiceError, invalid, not_found
from ownsona.memory.inputs import Filters
from ownsona.memory.normalize import duplicate_key
from ownsona.memory.prompt import build_prompt, within_budget
from ownsona.memory.records import MemoryRecord
from ownsona.memory.search import fts_query, fuse, query_terms
from ownsona.memory.shapes import export_shape, list_shape, match_shape
from ownsona.memory.tags import normalize_tags
from ownsona.memory.timestamps import to_iso


# How many candidates each retriever hands to fusion, relative to the requested limit.
CANDIDATE_POOL = 4
MIN_CANDIDATE_POOL = 32


class ReadOps(MemoryCore):
    """Everything that only reads: recall and its aliases, listing, counting, statistics, export."""

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
        terms = query_terms(text)

        def keyword_side(conn: sqlite3.Connection) -> tuple[int, np.ndarray | None, list[tuple[int, float]]]:
            allowed = store.tagged_ids(conn, user_id, tag_filter) if tag_filter else None
            kept = store.selective_terms(conn, terms)
            match = fts_query(" ".join(kept)) if kept else None
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


