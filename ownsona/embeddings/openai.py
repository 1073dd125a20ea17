"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM, LM Studio).

Unlike the Java client, which treated a 429 as fatal, a request is retried on 429, 5xx, timeouts
and refused connections, with exponential backoff that honours `Retry-After`, until a per-request
time budget runs out. Every failure becomes an `EmbeddingError` whose message a client may see: it
names the HTTP status and the problem, never the key, the URL's query or a traceback.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import structlog

from ownsona.embeddings.base import EmbeddingError, l2_normalise

log = structlog.get_logger("ownsona.embeddings")

BATCH_SIZE = 128  # inputs per request: well under OpenAI's 2,048 and kind to small local servers
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
UPSTREAM_MESSAGE_CHARS = 200


class OpenAIEmbedder:
    """Client for one configured endpoint and model; holds one keep-alive HTTP session."""

    provider = "openai"

    def __init__(
        self,
        *,
        url: str,
        model: str,
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout_seconds: float = 30.0,
        batch_size: int = BATCH_SIZE,
        backoff_first_seconds: float = BACKOFF_FIRST_SECONDS,
    ) -> None:
        self.model = model
        self.dimensions = dimensions or 0  # learned from the first response when not configured
        self._url = url
        self._where = _describe_url(url)
        self._api_key = api_key
        self._send_dimensions = dimensions is not None
        self._timeout_seconds = timeout_seconds
        self._batch_size = batch_size
        self._backoff_first = backoff_first_seconds
        self._session: aiohttp.ClientSession | None = None

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        size = self._batch_size
        parts = [await self._embed_batch(texts[i : i + size]) for i in range(0, len(texts), size)]
        if not parts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    async def aclose(self) -> None:
        """Close the HTTP session; call it when the application shuts down."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"input": texts, "model": self.model}
        if self._send_dimensions:
            body["dimensions"] = self.dimensions
        payload = await self._post_with_retries(body)
        return l2_normalise(self._parse(payload, len(texts)))

    async def _post_with_retries(self, body: dict[str, Any]) -> Any:
        """POST until a 2xx answer, a failure retrying cannot fix, or the time budget is spent."""
        started = time.monotonic()
        deadline = started + self._timeout_seconds
        attempt = 0
        while True:
            try:
                return await self._attempt(body, deadline - time.monotonic())
            except _Retryable as failure:
                # Retry-After is a floor: a server answering "0" forever must not be hammered.
                delay = max(failure.retry_after or 0.0, self._backoff(attempt))
                if time.monotonic() + delay >= deadline:
                    waited = time.monotonic() - started
                    raise EmbeddingError(
                        f"the embedding endpoint kept failing ({failure.problem}); gave up after "
                        f"{waited:.1f} s and {attempt + 1} attempt(s)"
                    ) from None
                log.warning(
                    "embedding_retry",
                    endpoint=self._where,
                    problem=failure.problem,
                    attempt=attempt + 1,
                    delay=round(delay, 2),
                )
            await asyncio.sleep(delay)
            attempt += 1

    async def _attempt(self, body: dict[str, Any], budget: float) -> Any:
        """One request: the decoded JSON payload, `_Retryable`, or EmbeddingError for a lasting failure."""
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            async with self._client().post(
                self._url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=max(budget, 0.001))
            ) as response:
                if response.status == 429 or response.status >= 500:
                    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                    hint = f", asked to retry after {retry_after:.0f} s" if retry_after else ""
                    raise _Retryable(f"HTTP {response.status}{hint}", retry_after)
                text = await response.text(errors="replace")
                if response.status >= 300:
                    raise EmbeddingError(self._refusal(response.status, text))
        except (asyncio.TimeoutError, TimeoutError):
            raise _Retryable("no answer in time") from None
        except aiohttp.ClientError as exc:
            raise _Retryable(f"connection failed: {type(exc).__name__}") from None
        try:
            return json.loads(text)
        except ValueError:
            raise EmbeddingError("the embedding endpoint returned a malformed response (not JSON)") from None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so concurrent writers do not retry in lockstep."""
        base = min(BACKOFF_MAX_SECONDS, self._backoff_first * 2**attempt)
        return base * random.uniform(0.5, 1.0)

    def _refusal(self, status: int, text: str) -> str:
        if status in (401, 403):
            return (
                f"the embedding endpoint rejected the credentials (HTTP {status}); "
                "check OWNSONA_EMBEDDING_API_KEY"
            )
        detail = _upstream_message(text)
        if detail and self._api_key:
            detail = detail.replace(self._api_key, "[redacted]")
        suffix = f": {detail}" if detail else ""
        return f"the embedding endpoint refused the request (HTTP {status}){suffix}"

    def _parse(self, payload: Any, expected: int) -> np.ndarray:
        """Check the response shape and return the vectors in input order."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise EmbeddingError("the embedding endpoint returned a malformed response (no 'data' list)")
        if len(data) != expected:
            raise EmbeddingError(f"the embedding endpoint returned {len(data)} vectors for {expected} texts")
        slots: list[list[float] | None] = [None] * expected
        for position, item in enumerate(data):
            index = item.get("index", position) if isinstance(item, dict) else None
            vector = item.get("embedding") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < expected or slots[index] is not None:
                raise EmbeddingError("the embedding endpoint returned a malformed response (bad 'index')")
            if not isinstance(vector, list) or not vector:
                raise EmbeddingError("the embedding endpoint returned a malformed response (no 'embedding' list)")
            slots[index] = vector
        try:
            vectors = np.array(slots, dtype=np.float32)
        except (TypeError, ValueError):
            raise EmbeddingError("the embedding endpoint returned vectors of unequal length or non-numbers") from None
        if vectors.ndim != 2 or not np.isfinite(vectors).all():
            raise EmbeddingError("the embedding endpoint returned vectors of unequal length or non-numbers")
        if self.dimensions and vectors.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"the embedding endpoint returned vectors of length {vectors.shape[1]}, expected {self.dimensions}"
            )
        self.dimensions = int(vectors.shape[1])
        return vectors


class _Retryable(Exception):
    """A failure worth another attempt: 429, 5xx, a timeout or a refused connection."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


def _describe_url(url: str) -> str:
    """Scheme, host and path only: the query may carry a key (Azure-style) and never reaches a log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _upstream_message(text: str) -> str:
    """The `error.message` of an OpenAI-style error body, printable and short; else nothing."""
    try:
        payload = json.loads(text)
    except ValueError:
        return ""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    if not isinstance(message, str):
        return ""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in message).strip()
    return cleaned[:UPSTREAM_MESSAGE_CHARS]
