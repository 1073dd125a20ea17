"""The memory service's tunables, read once from Settings and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ownsona.config import Settings

from ownsona.memory.search import dedup_thresholds


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    max_text_chars: int = 16_000
    max_batch_size: int = 200
    default_recall_limit: int = 8
    max_recall_limit: int = 50
    default_list_limit: int = 20
    max_list_tags: int = 500
    dedup_threshold: float = 0.90  # at or above: listed in `candidates` / `previously_corrected`
    skip_threshold: float = 0.90  # at or above: `skip_if_near` does not store the new fact
    dedup_top_k: int = 5
    export_max_rows: int = 100_000
    near_duplicate_max_rows: int = 20_000
    top_tags: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryLimits:
        provider = settings.embedding_provider
        # Calibrated per provider in bench/dedup_threshold (see ownsona/memory/search.py);
        # OWNSONA_DEDUP_THRESHOLD sets both cut-offs at once.
        threshold, skip = dedup_thresholds(provider)
        if settings.dedup_threshold is not None:
            threshold = skip = settings.dedup_threshold
        return cls(
            max_text_chars=settings.max_text_chars,
            max_batch_size=settings.max_batch_size,
            default_recall_limit=settings.default_recall_limit,
            max_recall_limit=settings.max_recall_limit,
            dedup_threshold=threshold,
            skip_threshold=skip,
            export_max_rows=settings.export_max_rows,
        )
