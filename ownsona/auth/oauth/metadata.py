"""Discovery: protected resource metadata (RFC 9728), authorization server metadata (RFC 8414,
also served at the OIDC discovery path), and the JWK Set. Every URL comes from the configured
public origin; the request's Host header is never consulted.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ownsona.auth.oauth.clients import AUTH_METHODS, GRANT_TYPES, SCOPES_SUPPORTED
from ownsona.auth.oauth.httputil import json_response
from ownsona.auth.oauth.keys import ALGORITHM
from ownsona.auth.oauth.state import OAUTH_STATE_KEY, OAuthState

PUBLIC_HOUR = {"Cache-Control": "public, max-age=3600"}


def protected_resource_metadata(state: OAuthState) -> dict[str, Any]:
    return {
        "resource": state.mcp_url,
        "authorization_servers": [state.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "resource_signing_alg_values_supported": [ALGORITHM],
        "resource_name": "OwnSona memory",
    }


def authorization_server_metadata(state: OAuthState) -> dict[str, Any]:
    settings = state.settings
    metadata: dict[str, Any] = {
        "issuer": state.issuer,
        "authorization_endpoint": state.endpoint("/oauth/authorize"),
        "token_endpoint": state.endpoint("/oauth/token"),
        "revocation_endpoint": state.endpoint("/oauth/revoke"),
        "jwks_uri": state.endpoint("/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(SCOPES_SUPPORTED),
        "subject_types_supported": ["public"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": settings.oauth_cimd,
    }
    if settings.oauth_dcr:
        metadata["registration_endpoint"] = state.endpoint("/oauth/register")
    return metadata


async def get_protected_resource(request: web.Request) -> web.Response:
    return json_response(protected_resource_metadata(request.app[OAUTH_STATE_KEY]), headers=PUBLIC_HOUR)


async def get_authorization_server(request: web.Request) -> web.Response:
    return json_response(authorization_server_metadata(request.app[OAUTH_STATE_KEY]), headers=PUBLIC_HOUR)


async def get_jwks(request: web.Request) -> web.Response:
    keyring = request.app[OAUTH_STATE_KEY].keyring
    if keyring is None:
        raise web.HTTPServiceUnavailable(text="starting")
    return json_response(keyring.jwks(), headers={"Cache-Control": "public, max-age=300"},
                         content_type="application/jwk-set+json")
