"""update_memory and update_memory_batch: partial updates, collisions, dry runs without embedding."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ownsona.memory import store
from ownsona.memory import validation as check
from ownsona.memory.core import MemoryCore, Outcome, in_savepoint, lost
from ownsona.memory.errors import ServiceError, invalid, not_found
from ownsona.memory.inputs import UNSET, UpdateItem
from ownsona.memory.normalize import duplicate_key
from ownsona.memory.records import MemoryPatch
from ownsona.memory.shapes import match_shape
from ownsona.memory.tags import normalize_tags
from ownsona.memory.vectors import VectorIndex


@dataclass
class _UpdateItem:
    position: int
    memory_id: int
    patch: MemoryPatch
    changed_fields: list[str]
    near: list[tuple[int, float]] = field(default_factory=list)  # for new text: similar live rows
    corrected: list[tuple[int, float]] = field(default_factory=list)  # and similar tombstones


class UpdateOps(MemoryCore):
    """update_memory / update_memory_batch."""

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
                results.append({**entry, "ok": False, "error": (error or lost()).as_payload()})
                continue
            updated += 1
            results.append({**entry, "ok": True, "changed_fields": pair[0].changed_fields,
                            **(pair[1].payload or {"message": "Ok"})})
        return {"ok": True, "dry_run": dry_run, "results": results,
                "summary": {"total": len(items), "updated": updated, "errors": failed}}

    async def _update_items(
        self, user_id: str, items: list[_UpdateItem], now: int, *, dry_run: bool, op: str
    ) -> list[Outcome]:
        if not items:
            return []

        def precheck(conn: sqlite3.Connection) -> list[ServiceError | None]:
            return [self._update_problem(conn, user_id, item) for item in items]

        problems = await self._read(op, precheck)
        if dry_run:  # no write and no embedding (§8.1 #14)
            return [Outcome(error=p) if p else Outcome({"message": "Would update"}) for p in problems]
        to_embed = [i for i, item in enumerate(items) if problems[i] is None and item.patch.text is not None]
        if to_embed:
            vectors = await self._try_embed([items[i].patch.text or "" for i in to_embed])
            if isinstance(vectors, ServiceError):
                for i in to_embed:
                    problems[i] = vectors
            else:
                vectors_now = await self._user_vectors(user_id)
                threshold, k = self.limits.dedup_threshold, self.limits.dedup_top_k
                for i, vector in zip(to_embed, vectors, strict=True):
                    item = items[i]
                    live, dead = vectors_now.search_live_and_deleted(vector, k, now, exclude=item.memory_id)
                    item.near = [h for h in live if h[1] >= threshold]
                    item.corrected = [h for h in dead if h[1] >= threshold]
                    patch = items[i].patch
                    items[i].patch = MemoryPatch(
                        text=patch.text, key=patch.key, tags=patch.tags, importance=patch.importance,
                        expires_at=patch.expires_at, last_confirmed_at=patch.last_confirmed_at,
                        embedding=self._embedding(vector),
                    )

        def work(conn: sqlite3.Connection) -> list[Outcome]:
            outcomes: list[Outcome] = []
            for i, item in enumerate(items):
                if problems[i] is not None:
                    outcomes.append(Outcome(error=problems[i]))
                    continue
                outcomes.append(in_savepoint(
                    conn, partial(self._update_one, conn, user_id, item, now),
                    failure="update failed.", event="update_item_failed", op=op, input_index=item.position,
                ))
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

    def _update_one(self, conn: sqlite3.Connection, user_id: str, item: _UpdateItem, now: int) -> Outcome:
        problem = self._update_problem(conn, user_id, item)  # again, inside the transaction
        if problem is not None:
            return Outcome(error=problem)
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

        return Outcome(payload, change=change)


