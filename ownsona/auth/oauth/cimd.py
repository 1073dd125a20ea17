"""Client ID Metadata Documents: a `client_id` that is an https URL names a JSON document
describing the client, which the authorization server fetches (MCP 2025-11-25).

Fetching a URL chosen by a stranger is an SSRF risk, so the fetch is guarded: https only, no
redirects, every address the name resolves to must be public (unless the operator allows private
ones), the connection goes to exactly the addresses that were checked (the check lives in the
resolver, so DNS rebinding between check and connect is impossible), and size and time are capped.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from ownsona.auth.oauth.clients import ClientMetadataError, parse_metadata

DEFAULT_CACHE_SECONDS = 3600
MIN_CACHE_SECONDS = 60
MAX_CACHE_SECONDS = 86_400


class CimdError(Exception):
    """The document could not be used; the message is safe to show to the owner."""


def is_metadata_url(client_id: str) -> bool:
    """Whether a client_id is shaped like a metadata document URL (https, a path, nothing odd)."""
    parts = urlsplit(client_id)
    segments = parts.path.split("/")
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.path not in ("", "/")
        and not parts.fragment
        and not parts.username
        and not parts.password
        and "." not in segments
        and ".." not in segments
    )


def address_allowed(address: str, allow_private: bool) -> bool:
    """Public unicast addresses only, unless private ones are explicitly allowed."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or ip.is_global


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then drops every address the policy forbids."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(r["host"], self._allow_private)]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses that may not be fetched")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def cache_seconds(cache_control: str | None) -> int:
    """Cache lifetime from the document's Cache-Control, clamped to one minute … one day."""
    if cache_control:
        directives = cache_control.lower()
        if "no-store" in directives or "no-cache" in directives:
            return MIN_CACHE_SECONDS
        match = re.search(r"max-age\s*=\s*(\d+)", directives)
        if match:
            return max(MIN_CACHE_SECONDS, min(MAX_CACHE_SECONDS, int(match.group(1))))
    return DEFAULT_CACHE_SECONDS


class CimdFetcher:
    """Fetches and validates metadata documents; owns one guarded HTTP client session."""

    def __init__(
        self, *, allow_private: bool, timeout: float, max_bytes: int, allowlist: Iterable[str],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_bytes = max_bytes
        self._allowlist = tuple(allowlist)
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._allow_private), ssl=self._ssl, limit=4)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar(),
                headers={"Accept": "application/json"}, trust_env=False,
            )
        return self._session

    async def fetch(self, url: str) -> tuple[dict[str, Any], int]:
        """The validated client metadata (as `parse_metadata` returns it) and its cache lifetime."""
        if not is_metadata_url(url):
            raise CimdError("the client_id is not a valid https metadata document URL")
        host = (urlsplit(url).hostname or "").strip("[]")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not address_allowed(host, self._allow_private):
            raise CimdError("the client metadata document is on an address that may not be fetched")
        body, cache_control = await self._download(url)
        try:
            document = json.loads(body)
        except ValueError:
            raise CimdError("the client metadata document is not JSON") from None
        return _validate(document, url, self._allowlist), cache_seconds(cache_control)

    async def _download(self, url: str) -> tuple[bytes, str | None]:
        try:
            async with self._client().get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise CimdError(f"fetching the client metadata document gave HTTP {response.status}")
                if response.content_length is not None and response.content_length > self._max_bytes:
                    raise CimdError("the client metadata document is too large")
                body = await response.content.read(self._max_bytes + 1)
                if len(body) > self._max_bytes:
                    raise CimdError("the client metadata document is too large")
                return body, response.headers.get("Cache-Control")
        except (aiohttp.ClientError, OSError, TimeoutError):
            raise CimdError("the client metadata document could not be fetched") from None


def _validate(document: Any, url: str, allowlist: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise CimdError("the client metadata document must be a JSON object")
    if document.get("client_id") != url:
        raise CimdError("the document's client_id does not equal its URL")
    if not isinstance(document.get("client_name"), str) or not document["client_name"].strip():
        raise CimdError("the client metadata document has no client_name")
    try:
        metadata = parse_metadata(document, allowlist, default_auth_method="none")
    except ClientMetadataError as exc:
        raise CimdError(f"client metadata document: {exc.description}") from None
    if metadata["auth_method"] != "none":
        raise CimdError("a metadata-document client must use token_endpoint_auth_method none")
    return metadata
