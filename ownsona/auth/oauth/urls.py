"""URL rules of the authorization server: the public origin, RFC 8707 resources, redirect URIs.

Kept free of aiohttp and of the database so `config.py` can validate `OWNSONA_PUBLIC_URL` with the
same rule the server later relies on, and so every rule here is testable as a plain function.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit, urlunsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# Callbacks of the hosted assistants, allowed without configuration. A trailing `*` matches one
# last path segment: ChatGPT mints a per-connector callback id.
DEFAULT_REDIRECT_ALLOWLIST: tuple[str, ...] = (
    "https://chatgpt.com/connector_platform_oauth_redirect",
    "https://chatgpt.com/connector/oauth/*",
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
)


def is_loopback_host(host: str | None) -> bool:
    """True for `localhost` and loopback IP literals (RFC 8252 §7.3 native-app redirects)."""
    if not host:
        return False
    host = host.lower().strip("[]")
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def canonical_origin(value: str) -> str:
    """Validate and normalise a public origin: `https://host[:port]`, lower-case, no default port.

    Raises ValueError naming the rule (never echoing more than the scheme).
    """
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute https URL such as https://memory.example.com")
    if scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (http is accepted only for a loopback host, for testing)")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError("must be an origin only: no path, query, fragment or user info")
    return _origin(scheme, parts.hostname, parts.port)


def _origin(scheme: str, host: str, port: int | None) -> str:
    host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def canonical_resource(value: str, public_url: str, mcp_url: str) -> str | None:
    """Map an RFC 8707 `resource` to our MCP URL, or None if it names something else.

    Clients disagree on the form (origin vs /mcp, trailing slash, host case); all of those name
    this one server, so all become the MCP URL, the only audience our tokens ever carry.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.fragment or parts.query or not parts.hostname or parts.scheme.lower() not in ("https", "http"):
        return None
    origin = _origin(parts.scheme.lower(), parts.hostname, port)
    path = parts.path.rstrip("/")
    if origin == public_url and path in ("", "/mcp"):
        return mcp_url
    return None


def redirect_uri_problem(uri: str, allowlist: Iterable[str]) -> str | None:
    """Why `uri` may not be a redirect URI, or None if it may.

    Allowed: loopback http(s) on any port (native apps, Claude Code, CLIs), and https URIs on the
    allow-list (the hosted assistants plus `OWNSONA_OAUTH_REDIRECT_ALLOWLIST`). Anything else is
    refused, so a stranger who registers a client cannot route codes to a host of their choosing.
    """
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute http(s) URL"
    if parts.username or parts.password:
        return "must not contain user info"
    if is_loopback_host(parts.hostname):
        return None
    if scheme != "https":
        return "must use https unless it points at a loopback address"
    if any(_matches(uri, pattern) for pattern in allowlist):
        return None
    return "is not on the redirect allow-list (OWNSONA_OAUTH_REDIRECT_ALLOWLIST)"


def _matches(uri: str, pattern: str) -> bool:
    if not pattern.endswith("*"):
        return uri == pattern
    prefix = pattern[:-1]
    rest = uri[len(prefix) :]
    return uri.startswith(prefix) and bool(rest) and not any(c in rest for c in "/?#")


def redirect_host(uri: str) -> str:
    """The host[:port] the consent page names, so the owner sees where the code will go."""
    parts = urlsplit(uri)
    return parts.netloc.rpartition("@")[2].lower()


def with_query(uri: str, params: dict[str, str]) -> str:
    """Append parameters to a registered redirect URI, keeping any query it already has."""
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def origin_of(uri: str) -> str:
    """`scheme://host[:port]` of an already validated URI, rebuilt from parsed parts (CSP-safe)."""
    parts = urlsplit(uri)
    return _origin(parts.scheme.lower(), parts.hostname or "", parts.port)
