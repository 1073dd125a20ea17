"""The default embedder: WordLlama's 256-d static model, read straight from the installed wheel.

Why not `wordllama.WordLlama.load()`: it looks for the tokenizer under `tokenizer/` while the wheel
ships it under `tokenizers/`, so it falls back to a download and fails offline; importing the
package pulls in `requests` and its training helpers; and it keeps a float32 copy of the float16
weights. bench/embeddings: it adds 70 MB of RSS to a server, this module 37 MB when it copied the
weights, 20 MB at load now that they are memory-mapped (`weights.py`). Here the two data files are
located without executing the package, the weights stay float16 (16 MB, mapped from the file), and
`WordLlamaInference.embed` is reproduced exactly: Llama-2 BPE tokenisation without special tokens,
ids clipped to the vocabulary, the mean of the token rows (its attention mask covers every real
token), then L2 normalisation. The float16 rows are widened to float32 and summed in the same
order, so the vectors equal wordllama's bit for bit (tests/test_embeddings_builtin.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ownsona.embeddings.base import EmbeddingError, l2_normalise
from ownsona.embeddings.weights import map_tensor

MODEL_NAME = "wordllama-l2-supercat-256"
WEIGHTS_FILE = "weights/l2_supercat_256.safetensors"
TOKENIZER_FILE = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR_KEY = "embedding.weight"

# Up to this many characters a batch is embedded inline: a query of a few words costs ~40 us, less
# than a hop to the thread pool; 2,000 characters cost under 1 ms. Larger batches go to the
# executor so the event loop keeps serving.
INLINE_CHAR_BUDGET = 2_000
# Tokenizer output for a batch is heavy (ids, offsets, token strings per text); chunking bounds the
# transient memory a large re-embed or import batch would otherwise add to the resident size.
CHUNK_TEXTS = 256
# The BPE model caches the split of every word it has seen, about 3 KB each, 10,000 by default
# (~30 MB once warm). A thousand covers the common words of a personal memory at no measurable cost.
WORD_CACHE_SIZE = 1_000


@dataclass(frozen=True)
class ModelFiles:
    weights: Path
    tokenizer: Path


def locate_model_files() -> ModelFiles:
    """Find the weights and tokenizer inside the installed `wordllama` wheel without importing it."""
    root: Path | None = None
    spec = importlib.util.find_spec("wordllama")  # a top-level spec lookup executes nothing
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
    else:
        try:
            root = Path(str(metadata.distribution("wordllama").locate_file("wordllama")))
        except metadata.PackageNotFoundError:
            root = None
    if root is None:
        raise EmbeddingError("the builtin embedding model is not installed (Python package 'wordllama')")
    files = ModelFiles(weights=root / WEIGHTS_FILE, tokenizer=root / TOKENIZER_FILE)
    for path in (files.weights, files.tokenizer):
        if not path.is_file():
            raise EmbeddingError(f"the builtin embedding model is incomplete: {path.name} is missing")
    return files


class BuiltinEmbedder:
    """Static token embeddings, mean-pooled: no network, no torch. About 20 MB resident once loaded
    (the tokenizer), plus the mapped rows of the tokens seen so far (16 MB at most, file-backed)."""

    provider = "builtin"
    model = MODEL_NAME

    def __init__(self, weights: np.ndarray, tokenizer: Tokenizer) -> None:
        if weights.ndim != 2:
            raise ValueError(f"weights must be a matrix, got shape {weights.shape}")
        self._weights = weights
        self._tokenizer = tokenizer
        resize_cache = getattr(tokenizer.model, "_resize_cache", None)
        if resize_cache is not None:  # present in tokenizers >= 0.20 for BPE models
            resize_cache(WORD_CACHE_SIZE)
        self.dimensions = int(weights.shape[1])

    @classmethod
    def load(cls, files: ModelFiles | None = None) -> BuiltinEmbedder:
        """Read the model from disk; nothing is downloaded, whatever the environment says."""
        files = files or locate_model_files()
        try:
            tokenizer = Tokenizer.from_file(str(files.tokenizer))
            weights = map_tensor(files.weights, TENSOR_KEY)  # mapped: only the rows used become resident
        except Exception as exc:  # a corrupt or foreign file: say which, not how
            raise EmbeddingError(f"cannot load the builtin embedding model ({type(exc).__name__})") from exc
        return cls(weights, tokenizer)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if sum(len(text) for text in texts) <= INLINE_CHAR_BUDGET:
            return self.embed_sync(texts)
        return await asyncio.get_running_loop().run_in_executor(None, self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """The blocking work behind `embed`; also used by benchmarks and re-embedding in a thread."""
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), CHUNK_TEXTS):
            self._embed_chunk(texts[start : start + CHUNK_TEXTS], vectors[start : start + CHUNK_TEXTS])
        return l2_normalise(vectors)

    def _embed_chunk(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Write the mean token vector of each text into `vectors` (a view of the caller's array)."""
        count = len(texts)
        # One `encode` per text rather than `encode_batch`: the batch form fans out to a rayon
        # thread pool that buys nothing on a small VPS and adds a per-thread heap to the RSS.
        encodings = [self._tokenizer.encode(text, add_special_tokens=False) for text in texts]
        lengths = np.fromiter((len(enc.ids) for enc in encodings), dtype=np.int64, count=count)
        total = int(lengths.sum())
        if total == 0:
            return
        ids = np.fromiter(itertools.chain.from_iterable(enc.ids for enc in encodings), dtype=np.int64, count=total)
        np.clip(ids, 0, self._weights.shape[0] - 1, out=ids)
        # np.sum over the token axis widens each float16 row to float32 and adds the rows in order,
        # as wordllama's masked batch sum does, without materialising a float32 copy of the batch.
        end = 0
        for index, length in enumerate(lengths.tolist()):
            start, end = end, end + length
            if length:
                np.sum(self._weights[ids[start:end]], axis=0, dtype=np.float32, out=vectors[index])
        vectors /= np.maximum(lengths, 1).astype(np.float32)[:, np.newaxis]
