"""The JSON shapes of a memory, as the Java OwnSona returns them (§2.9), plus `importance`.

Null values are omitted, except `score` in the match shape. `importance` is added to both read
shapes (§8.1 #25); it is additive, so existing clients that ignore unknown keys are unaffected.
"""

from __future__ import annotations

from typing import Any

from ownsona.memory.records import MemoryRecord
from ownsona.memory.timestamps import to_iso


def _optional(record: MemoryRecord) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if record.capture_mode is not None:
        extra["capture_mode"] = record.capture_mode
    if record.session_id is not None:
        extra["session_id"] = record.session_id
    for name in ("expires_at", "last_confirmed_at", "deleted_at"):
        value = getattr(record, name)
        if value is not None:
            extra[name] = to_iso(value)
    if record.forget_reason is not None:
        extra["forget_reason"] = record.forget_reason
    if record.replaced_by_id is not None:
        extra["replaced_by_id"] = record.replaced_by_id
    return extra


def match_shape(record: MemoryRecord, score: float) -> dict[str, Any]:
    """Used by recall matches, get_memory, export, near-duplicate groups and dedup candidates."""
    shape: dict[str, Any] = {
        "id": record.id,
        "text": record.text,
        "score": round(min(max(score, 0.0), 1.0), 6),
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
        "tags": list(record.tags),
        "importance": record.importance,
    }
    if record.source_provider is not None:
        shape["source_provider"] = record.source_provider
    shape.update(_optional(record))
    return shape


def list_shape(record: MemoryRecord) -> dict[str, Any]:
    """Used by list_memories and text_search: no score and no source_provider."""
    shape: dict[str, Any] = {
        "id": record.id,
        "text": record.text,
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
        "tags": list(record.tags),
        "importance": record.importance,
    }
    shape.update(_optional(record))
    return shape


def export_shape(record: MemoryRecord) -> dict[str, Any]:
    """Everything needed to restore the row elsewhere: the match shape (score 0) plus provenance.

    Vectors are left out on purpose: they are derived data, recomputed on import.
    """
    shape = match_shape(record, 0.0)
    shape["record_version"] = record.record_version
    if record.embedding_provider is not None:
        shape["embedding_provider"] = record.embedding_provider
    if record.embedding_model is not None:
        shape["embedding_model"] = record.embedding_model
    return shape
