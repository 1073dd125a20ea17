"""The contract every embedding provider meets, so the memory service never knows which one it has.

Vectors come back as one float32 row per input text, L2-normalised, so cosine similarity is a plain
dot product everywhere downstream (SQLite store, dedup, recall fusion).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


class EmbeddingError(Exception):
    """Embedding failed. The message is safe to show to a client: no key, no URL query, no internals."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    `provider` and `model` are stored beside every vector, so a later change of either is visible
    and `ownsona reembed` can find the stale rows. `dimensions` is the vector length; an
    OpenAI-compatible provider configured without a dimension learns it from its first response
    and reports 0 until then.
    """

    provider: str
    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dimensions), float32, each row of unit length.

        A text with nothing to embed (empty, or only characters the model ignores) gives a zero row.
        Raises `EmbeddingError` on failure.
        """
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length in place; rows of all zeros stay zero instead of becoming NaN."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors
