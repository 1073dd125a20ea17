"""The URL rules: public origin, RFC 8707 resource canonicalisation, redirect-URI policy."""

from __future__ import annotations

import pytest

from ownsona.auth.oauth.urls import (
    DEFAULT_REDIRECT_ALLOWLIST,
    canonical_origin,
    canonical_resource,
    origin_of,
    redirect_uri_problem,
    with_query,
)
from ownsona.config import ConfigError, settings_from_environ

BASE = "https://memory.example.com"
MCP = BASE + "/mcp"


@pytest.mark.parametrize(("value", "expected"), [
    ("https://memory.example.com", BASE), ("https://Memory.Example.COM/", BASE), ("https://memory.example.com:443", BASE),
    ("https://memory.example.com:8443", BASE + ":8443"), ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("http://localhost", "http://localhost"), ("http://[::1]:9000", "http://[::1]:9000"),
])
def test_public_origin_is_normalised(value: str, expected: str) -> None:
    assert canonical_origin(value) == expected


@pytest.mark.parametrize("value", ["http://memory.example.com", "https://memory.example.com/mcp", "ftp://x.example",
                                   "https://memory.example.com/?a=1", "https://u:p@memory.example.com", "memory.example.com"])
def test_bad_public_origins_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        canonical_origin(value)


def test_config_error_names_the_variable_and_not_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_environ({"OWNSONA_HOME": "/tmp/x", "OWNSONA_PUBLIC_URL": "http://secret-host.example/path"})
    assert "OWNSONA_PUBLIC_URL" in str(caught.value) and "secret-host" not in str(caught.value)


@pytest.mark.parametrize("value", [BASE, BASE + "/", MCP, MCP + "/", "HTTPS://MEMORY.example.com/mcp",
                                   "https://memory.example.com:443/mcp"])
def test_resource_forms_naming_this_server_become_the_mcp_url(value: str) -> None:
    assert canonical_resource(value, BASE, MCP) == MCP


@pytest.mark.parametrize("value", ["https://other.example/mcp", BASE + "/mcp/x", BASE + "/api", MCP + "#f",
                                   MCP + "?a=1", "http://memory.example.com/mcp", BASE + ":8443/mcp", "not a url",
                                   "https://memory.example.com:bad/mcp"])
def test_other_resources_are_refused(value: str) -> None:
    assert canonical_resource(value, BASE, MCP) is None


@pytest.mark.parametrize("uri", ["http://127.0.0.1:1234/cb", "https://localhost/cb", "http://[::1]/cb",
                                 "https://chatgpt.com/connector/oauth/abc123", "https://claude.ai/api/mcp/auth_callback"])
def test_allowed_redirects(uri: str) -> None:
    assert redirect_uri_problem(uri, DEFAULT_REDIRECT_ALLOWLIST) is None


@pytest.mark.parametrize(("uri", "why"), [
    ("https://chatgpt.com/connector/oauth/", "allow-list"), ("https://chatgpt.com/connector/oauth/a?b=c", "allow-list"),
    ("https://chatgpt.com.evil.example/connector_platform_oauth_redirect", "allow-list"),
    ("https://claude.ai/api/mcp/auth_callback/../x", "allow-list"), ("http://claude.ai/api/mcp/auth_callback", "https"),
    ("http://127.0.0.1/cb#x", "fragment"), ("https://user@claude.ai/api/mcp/auth_callback", "user info"),
    ("myapp:/cb", "absolute"), ("http://127.0.0.1:99999/cb", "valid URL"),
])
def test_refused_redirects_say_why(uri: str, why: str) -> None:
    problem = redirect_uri_problem(uri, DEFAULT_REDIRECT_ALLOWLIST)
    assert problem is not None and why in problem


def test_response_parameters_keep_the_registered_query_and_origin_is_csp_safe() -> None:
    assert with_query("https://a.example/cb?x=1", {"code": "c d"}) == "https://a.example/cb?x=1&code=c+d"
    assert origin_of("http://127.0.0.1:5555/cb?q") == "http://127.0.0.1:5555"
    assert origin_of("https://Claude.AI/api/mcp/auth_callback") == "https://claude.ai"
