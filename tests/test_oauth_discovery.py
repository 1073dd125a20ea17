"""Discovery: PRM (RFC 9728) at both paths, AS metadata (RFC 8414 + OIDC path), JWKS, 401 challenge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from joserfc import jwt

from conftest import make_test_registry, token_store_for
from oauthkit import OAuthHarness, StartOAuth, oauth_settings
from ownsona.app import build_app

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs


PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


async def get_json(h: OAuthHarness, path: str, **headers: str) -> tuple[aiohttp.ClientResponse, Any]:
    async with h.http.get(f"{h.base}{path}", headers=headers) as response:
        return response, json.loads(await response.text())


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"])
async def test_protected_resource_metadata_at_both_paths(start_oauth: StartOAuth, path: str) -> None:
    h = await start_oauth()
    response, body = await get_json(h, path)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert body["resource"] == f"{h.base}/mcp"
    assert body["authorization_servers"] == [h.base]
    assert body["bearer_methods_supported"] == ["header"]
    assert body["resource_signing_alg_values_supported"] == ["ES256"]
    assert body["scopes_supported"] == ["memory"]


@pytest.mark.parametrize("path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"])
async def test_authorization_server_metadata_comes_from_configuration_not_host(start_oauth: StartOAuth, path: str
                                                                             ) -> None:
    h = await start_oauth()
    response, body = await get_json(h, path, Host="evil.example", **{"X-Forwarded-Host": "evil.example"})
    assert response.status == 200
    assert "evil" not in json.dumps(body)
    assert body["issuer"] == h.base
    for key, suffix in [("authorization_endpoint", "/oauth/authorize"), ("token_endpoint", "/oauth/token"),
                        ("jwks_uri", "/oauth/jwks"), ("registration_endpoint", "/oauth/register"),
                        ("revocation_endpoint", "/oauth/revoke")]:
        assert body[key] == h.base + suffix
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert body["response_types_supported"] == ["code"]
    assert "none" in body["token_endpoint_auth_methods_supported"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert body["client_id_metadata_document_supported"] is True


async def test_registration_endpoint_is_omitted_and_unrouted_when_dcr_is_off(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_dcr="off")
    _, body = await get_json(h, "/.well-known/oauth-authorization-server")
    assert "registration_endpoint" not in body
    async with h.http.post(f"{h.base}/oauth/register", json={"redirect_uris": ["http://127.0.0.1/cb"]}) as response:
        assert response.status == 404


async def test_jwks_is_public_only_and_names_the_kid_tokens_carry(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    response, body = await get_json(h, "/oauth/jwks")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/jwk-set+json")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    [key] = body["keys"]
    assert key["kty"] == "EC" and key["alg"] == "ES256" and key["use"] == "sig"
    assert not PRIVATE_MEMBERS & set(key)
    client = await h.register()
    tokens = await h.tokens_for(client)
    header = jwt.decode(tokens["access_token"], _any_key(body)).header
    assert header["kid"] == key["kid"]


def _any_key(jwks: dict[str, Any]) -> Any:
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(jwks)


async def test_unauthenticated_mcp_challenge_points_at_the_metadata(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    response = await h.mcp(None)
    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'realm="ownsona"' in challenge
    assert f'resource_metadata="{h.base}/.well-known/oauth-protected-resource"' in challenge
    assert 'scope="memory"' in challenge
    assert "error=" not in challenge


async def test_cors_preflight_on_public_endpoints(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    for path in ("/oauth/token", "/oauth/register", "/.well-known/oauth-authorization-server"):
        async with h.http.options(f"{h.base}{path}", headers={"Origin": "https://inspector.example",
                                                              "Access-Control-Request-Method": "POST"}) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in response.headers


async def test_every_oauth_endpoint_is_absent_when_oauth_is_off(home: Path, aiohttp_client: Any) -> None:
    settings = oauth_settings(home, 8080, oauth="off")
    client = await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))
    for method, path in [("GET", "/.well-known/oauth-protected-resource"),
                         ("GET", "/.well-known/oauth-protected-resource/mcp"),
                         ("GET", "/.well-known/oauth-authorization-server"),
                         ("GET", "/.well-known/openid-configuration"), ("GET", "/oauth/jwks"),
                         ("POST", "/oauth/register"), ("GET", "/oauth/authorize"), ("POST", "/oauth/authorize"),
                         ("POST", "/oauth/token"), ("POST", "/oauth/revoke")]:
        response = await client.request(method, path)
        assert response.status in (404, 405), (method, path)
    response = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status == 401
    assert "resource_metadata" not in response.headers["WWW-Authenticate"]
