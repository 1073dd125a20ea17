"""Embedding providers behind one interface: `create_embedder(settings)` picks the configured one.

Imports stay lazy so that a command which never embeds (tokens, export) does not load a model or
the tokenizer library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ownsona.embeddings.base import Embedder, EmbeddingError

if TYPE_CHECKING:
    from ownsona.config import Settings

__all__ = ["Embedder", "EmbeddingError", "close_embedder", "create_embedder"]


def create_embedder(settings: Settings) -> Embedder:
    """Build the embedder the settings name. The builtin model is read from disk here (~0.1 s)."""
    if settings.embedding_provider == "openai":
        from ownsona.embeddings.openai import OpenAIEmbedder

        if not (settings.embedding_url and settings.embedding_model):  # Settings validation ensures both
            raise EmbeddingError("the openai provider needs OWNSONA_EMBEDDING_URL and OWNSONA_EMBEDDING_MODEL")
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAIEmbedder(
            url=settings.embedding_url,
            model=settings.embedding_model,
            api_key=key,
            dimensions=settings.embedding_dimensions,
            timeout_seconds=settings.embedding_timeout_seconds,
        )
    from ownsona.embeddings.builtin import BuiltinEmbedder

    return BuiltinEmbedder.load()


async def close_embedder(embedder: Embedder) -> None:
    """Release what an embedder holds (the OpenAI client's HTTP session); a no-op for the builtin."""
    aclose = getattr(embedder, "aclose", None)
    if aclose is not None:
        await aclose()
