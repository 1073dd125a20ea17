"""The memory service's tunables, read once from Settings and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ownsona.config import Settings

# Cosine similarity at which a new memory counts as a near duplicate of an existing one, per
# embedding provider. The builtin value is calibrated in bench/dedup_threshold.py (paraphrase
# pairs against related-but-different facts); 0.90 is the Java server's value for OpenAI.
DEDUP_THRESHOLDS = {"builtin": 0.90, "openai": 0.90}


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    max_text_chars: int = 16_000
    max_batch_size: int = 200
    default_recall_limit: int = 8
    max_recall_limit: int = 50
    default_list_limit: int = 20
    max_list_tags: int = 500
    dedup_threshold: float = 0.90
    dedup_top_k: int = 5
    export_max_rows: int = 100_000
    near_duplicate_max_rows: int = 20_000
    top_tags: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryLimits:
        provider = getattr(settings, "embedding_provider", "builtin")
        threshold = settings.dedup_threshold
        if threshold is None:
            threshold = DEDUP_THRESHOLDS.get(provider, 0.90)
        return cls(
            max_text_chars=settings.max_text_chars,
            max_batch_size=settings.max_batch_size,
            default_recall_limit=settings.default_recall_limit,
            max_recall_limit=settings.max_recall_limit,
            dedup_threshold=threshold,
            export_max_rows=settings.export_max_rows,
        )
