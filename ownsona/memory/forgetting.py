"""confirm, forget, forget_batch and restore: tombstones and their undoing."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial
from typing import Any

from ownsona.memory import store
from ownsona.memory import validation as check
from ownsona.memory.core import IndexChange, MemoryCore, Outcome, in_savepoint, lost
from ownsona.memory.errors import ServiceError, invalid, not_found
from ownsona.memory.normalize import duplicate_key
from ownsona.memory.records import MemoryRecord
from ownsona.memory.timestamps import to_iso


class ForgetOps(MemoryCore):
    """confirm, forget, forget_batch, restore."""

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

        def one(conn: sqlite3.Connection, position: int, memory_id: int | None) -> Outcome:
            if memory_id is None:
                return Outcome(error=invalid(f"ids[{position}] is null."))
            record = store.get(conn, user_id, memory_id)
            if record is None:
                return Outcome(error=not_found(memory_id))
            already = record.is_deleted
            if dry_run:
                message = "Would update tombstone (already soft-deleted)" if already else "Would soft-delete"
                return Outcome({"already_deleted": already, "message": message})
            store.soft_delete(conn, user_id, memory_id, now, reason=why)
            expires = record.expires_at
            message = "Already soft-deleted (tombstone updated)" if already else "Forgotten"
            return Outcome(
                {"already_deleted": already, "message": message},
                change=lambda index: index.set_state(user_id, memory_id, deleted=True, expires_at=expires),
            )

        def work(conn: sqlite3.Connection) -> list[Outcome]:
            outcomes = []
            for position, memory_id in enumerate(ids):
                outcomes.append(in_savepoint(
                    conn, partial(one, conn, position, memory_id),
                    failure="forget failed.", event="forget_item_failed", input_index=position,
                ))
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
                results.append({**entry, "ok": False, "error": (outcome.error or lost()).as_payload()})
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


