"""The OpenAI-compatible embedder against a fake `/v1/embeddings` server that the tests start."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ownsona.config import ConfigError, settings_from_environ
from ownsona.embeddings import EmbeddingError, close_embedder, create_embedder
from ownsona.embeddings.openai import OpenAIEmbedder

API_KEY = "sk-test-Zq8xV3kLm9Pd2Rf7Hy4Jc6Nb1Wt5"
DIMENSIONS = 4


@dataclass
class FakeOpenAI:
    """Speaks the embeddings protocol; `script` decides each answer in turn (the last one repeats)."""

    script: list[Answer] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.times.append(time.monotonic())
        step = self.script[min(len(self.requests) - 1, len(self.script) - 1)] if self.script else ok
        return step(body)


def vector_for(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """A deterministic, unnormalised vector, so the test can check order and normalisation."""
    return [float(len(text) + i) for i in range(dimensions)]


def ok(body: dict[str, Any]) -> web.Response:
    # Entries come back in reverse order: the client must place them by `index`.
    dimensions = body.get("dimensions", DIMENSIONS)
    data = [
        {"object": "embedding", "index": i, "embedding": vector_for(text, dimensions)}
        for i, text in enumerate(body["input"])
    ]
    return web.json_response({"object": "list", "data": data[::-1], "model": body["model"]})


Answer = Callable[[dict[str, Any]], web.Response]


def status(code: int, headers: dict[str, str] | None = None, payload: Any = None) -> Answer:
    return lambda body: web.json_response(payload or {"error": {"message": "nope"}}, status=code, headers=headers)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    server_state = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/embeddings", server_state.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield server_state, str(server.make_url("/v1/embeddings"))
    await server.close()


@pytest.fixture
def make_embedder() -> Iterator[Callable[..., OpenAIEmbedder]]:
    made: list[OpenAIEmbedder] = []

    def make(url: str, **options: Any) -> OpenAIEmbedder:
        options = {"model": "text-embedding-3-small", "api_key": API_KEY, "dimensions": DIMENSIONS,
                   "timeout_seconds": 2.0, "backoff_first_seconds": 0.02, **options}
        embedder = OpenAIEmbedder(url=url, **options)
        made.append(embedder)
        return embedder

    yield make
    # Each test closes what it opened (in its own event loop); a leftover session would warn.
    for embedder in made:
        assert embedder._session is None or embedder._session.closed


async def test_embeds_in_input_order_normalised(fake, make_embedder) -> None:
    server, url = fake
    embedder = make_embedder(url)
    texts = ["one", "three", "fifteen chars.."]
    vectors = await embedder.embed(texts)
    await embedder.aclose()

    expected = np.array([vector_for(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    assert vectors.dtype == np.float32
    assert server.requests == [{"input": texts, "model": "text-embedding-3-small", "dimensions": DIMENSIONS}]
    assert server.headers[0]["Authorization"] == f"Bearer {API_KEY}"


async def test_without_configured_dimensions_none_is_sent_and_the_length_is_learned(fake, make_embedder) -> None:
    server, url = fake
    embedder = make_embedder(url, dimensions=None, api_key=None)
    assert embedder.dimensions == 0
    vectors = await embedder.embed(["hello"])
    await embedder.aclose()
    assert "dimensions" not in server.requests[0] and "Authorization" not in server.headers[0]
    assert vectors.shape == (1, DIMENSIONS) and embedder.dimensions == DIMENSIONS


async def test_large_inputs_are_sent_in_batches(fake, make_embedder) -> None:
    server, url = fake
    embedder = make_embedder(url, batch_size=128)
    vectors = await embedder.embed([f"text {n}" for n in range(300)])
    await embedder.aclose()
    assert [len(body["input"]) for body in server.requests] == [128, 128, 44]
    assert vectors.shape == (300, DIMENSIONS)
    assert (await make_embedder(url).embed([])).shape == (0, DIMENSIONS)
    assert len(server.requests) == 3  # nothing to embed, no request


async def test_a_429_is_retried_after_the_delay_the_server_asks_for(fake, make_embedder) -> None:
    server, url = fake
    server.script = [status(429, {"Retry-After": "0.3"}), ok]
    embedder = make_embedder(url)
    vectors = await embedder.embed(["hello"])
    await embedder.aclose()
    assert vectors.shape == (1, DIMENSIONS) and len(server.requests) == 2
    assert server.times[1] - server.times[0] >= 0.29


async def test_5xx_is_retried_with_backoff_until_the_budget_is_spent(fake, make_embedder) -> None:
    server, url = fake
    server.script = [status(503)]
    embedder = make_embedder(url, timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(EmbeddingError) as failure:
        await embedder.embed(["hello"])
    await embedder.aclose()
    elapsed = time.monotonic() - started
    assert "HTTP 503" in str(failure.value) and "gave up" in str(failure.value)
    assert len(server.requests) >= 3
    gaps = np.diff(server.times)
    assert gaps[-1] > gaps[0]  # exponential: later waits are longer
    assert elapsed < 1.5


async def test_a_retry_after_beyond_the_budget_gives_up_at_once(fake, make_embedder) -> None:
    server, url = fake
    server.script = [status(429, {"Retry-After": "120"})]
    embedder = make_embedder(url, timeout_seconds=2.0)
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="HTTP 429, asked to retry after 120 s"):
        await embedder.embed(["hello"])
    await embedder.aclose()
    assert len(server.requests) == 1 and time.monotonic() - started < 0.5


async def test_auth_failure_is_not_retried_and_never_shows_the_key(fake, make_embedder) -> None:
    server, url = fake
    server.script = [status(401, payload={"error": {"message": f"Incorrect API key provided: {API_KEY}"}})]
    embedder = make_embedder(url)
    with pytest.raises(EmbeddingError) as failure:
        await embedder.embed(["hello"])
    await embedder.aclose()
    assert len(server.requests) == 1
    assert "HTTP 401" in str(failure.value) and "OWNSONA_EMBEDDING_API_KEY" in str(failure.value)
    assert API_KEY not in str(failure.value)


async def test_a_refused_request_quotes_the_upstream_reason_with_the_key_redacted(fake, make_embedder) -> None:
    server, url = fake
    server.script = [status(400, payload={"error": {"message": f"model 'nope' not found (key {API_KEY})\n"}})]
    embedder = make_embedder(url)
    with pytest.raises(EmbeddingError) as failure:
        await embedder.embed(["hello"])
    await embedder.aclose()
    message = str(failure.value)
    assert message == "the embedding endpoint refused the request (HTTP 400): model 'nope' not found (key [redacted])"


def answering(payload: Any) -> Answer:
    return lambda body: web.json_response(payload)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (lambda body: web.Response(text="<html>gateway</html>", content_type="text/html"), "not JSON"),
        (answering({"data": "nope"}), "no 'data' list"),
        (answering({"data": [{"index": 0, "embedding": [1.0] * DIMENSIONS}]}), "returned 1 vectors for 2 texts"),
        (answering({"data": [{"index": i, "embedding": [1.0] * 3} for i in range(2)]}), "length 3, expected 4"),
        (answering({"data": [{"index": 0, "embedding": [1.0] * 4}] * 2}), "bad 'index'"),
        (answering({"data": [{"index": i, "embedding": ["a"] * 4} for i in range(2)]}), "non-numbers"),
    ],
)
async def test_malformed_answers_are_clear_errors(fake, make_embedder, answer, expected) -> None:
    server, url = fake
    server.script = [answer]
    embedder = make_embedder(url)
    with pytest.raises(EmbeddingError, match=expected):
        await embedder.embed(["one", "two"])
    await embedder.aclose()
    assert len(server.requests) == 1


async def test_an_unreachable_endpoint_is_retried_then_reported(make_embedder, unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/v1/embeddings?api-version=secret"
    embedder = make_embedder(url, timeout_seconds=0.5)
    with pytest.raises(EmbeddingError) as failure:
        await embedder.embed(["hello"])
    await embedder.aclose()
    assert "connection failed" in str(failure.value)
    assert "secret" not in str(failure.value) and "127.0.0.1" not in str(failure.value)


async def test_create_embedder_builds_the_openai_client_from_settings(fake, tmp_path: Path) -> None:
    server, url = fake
    settings = settings_from_environ({
        "OWNSONA_HOME": str(tmp_path),
        "OWNSONA_EMBEDDING_PROVIDER": "openai",
        "OWNSONA_EMBEDDING_URL": url,
        "OWNSONA_EMBEDDING_MODEL": "nomic-embed-text",
        "OWNSONA_EMBEDDING_API_KEY": API_KEY,
        "OWNSONA_EMBEDDING_DIMENSIONS": str(DIMENSIONS),
    })
    embedder = create_embedder(settings)
    assert (embedder.provider, embedder.model, embedder.dimensions) == ("openai", "nomic-embed-text", DIMENSIONS)
    await embedder.embed(["hi"])
    await close_embedder(embedder)
    assert server.requests[0]["model"] == "nomic-embed-text"


OPENAI = {"OWNSONA_EMBEDDING_PROVIDER": "openai"}
OPENAI_M = {**OPENAI, "OWNSONA_EMBEDDING_MODEL": "m"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (OPENAI, "OWNSONA_EMBEDDING_URL: required when OWNSONA_EMBEDDING_PROVIDER=openai"),
        ({**OPENAI, "OWNSONA_EMBEDDING_URL": "https://h/v1/embeddings"}, "OWNSONA_EMBEDDING_MODEL: required"),
        ({**OPENAI_M, "OWNSONA_EMBEDDING_URL": "ftp://h/e"}, "OWNSONA_EMBEDDING_URL: must be an http\\(s\\) URL"),
        ({**OPENAI_M, "OWNSONA_EMBEDDING_URL": "https://u:pw@h/e"}, "must not carry credentials"),
        ({"OWNSONA_EMBEDDING_PROVIDER": "cohere"}, "OWNSONA_EMBEDDING_PROVIDER"),
        ({"OWNSONA_EMBEDDING_MODEL": "other"}, "OWNSONA_EMBEDDING_MODEL: only used with OWNSONA_EMBEDDING_PROVIDER=openai"),
        ({"OWNSONA_EMBEDDING_DIMENSIONS": "512"}, "OWNSONA_EMBEDDING_DIMENSIONS: only used with"),
        ({"OWNSONA_EMBEDDING_TIMEOUT_SECONDS": "0"}, "OWNSONA_EMBEDDING_TIMEOUT_SECONDS"),
    ],
)
def test_embedding_settings_are_validated(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as failure:
        settings_from_environ({"OWNSONA_HOME": str(tmp_path), **environ})
    assert "pw" not in str(failure.value)


def test_upstream_messages_and_retry_after_are_parsed_defensively() -> None:
    from ownsona.embeddings.openai import _retry_after_seconds, _upstream_message

    assert _upstream_message("not json") == ""
    assert _upstream_message(json.dumps({"error": "plain string"})) == "plain string"
    assert _upstream_message(json.dumps({"error": {"message": "x" * 500}})) == "x" * 200
    assert _retry_after_seconds("2.5") == 2.5
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    assert _retry_after_seconds("soon") is None
