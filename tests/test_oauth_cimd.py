"""Client ID Metadata Documents: fetched over TLS from a real test server, behind SSRF guards."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from oauthkit import REDIRECT, Browser, OAuthHarness, StartOAuth, pkce_pair
from ownsona.auth.oauth.cimd import address_allowed, cache_seconds, is_metadata_url

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throwaway CA-signed certificate for 127.0.0.1 and localhost: (server context, client context)."""
    directory: Path = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ownsona-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


class DocumentServer:
    """Serves client metadata documents over https; counts fetches; can misbehave on request."""

    def __init__(self) -> None:
        self.fetches = 0
        self.base = ""
        self.behaviour: dict[str, Any] = {}

    def url(self, name: str = "client.json", host: str = "127.0.0.1") -> str:
        return self.base.replace("127.0.0.1", host) + "/" + name

    def document(self, name: str = "client.json", **overrides: Any) -> dict[str, Any]:
        return {"client_id": self.url(name), "client_name": "Metadata Client", "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none", **overrides}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        name = request.match_info["name"]
        mode = self.behaviour.get(name, {})
        if mode.get("redirect"):
            raise web.HTTPFound(mode["redirect"])
        if mode.get("sleep"):
            await asyncio.sleep(mode["sleep"])
        if "raw" in mode:
            return web.Response(body=mode["raw"], content_type="application/json")
        body = self.document(name, **mode.get("overrides", {}))
        return web.json_response(body, headers={"Cache-Control": mode.get("cache", "max-age=600")})


@pytest.fixture
async def documents(aiohttp_server: Any, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> DocumentServer:
    docs = DocumentServer()
    app = web.Application()
    app.router.add_get("/{name}", docs.handle)
    server = await aiohttp_server(app, ssl=tls[0])
    docs.base = f"https://127.0.0.1:{server.port}"
    return docs


async def start(start_oauth: StartOAuth, tls: tuple[ssl.SSLContext, ssl.SSLContext], **env: str) -> OAuthHarness:
    env.setdefault("oauth_cimd_allow_private", "on")
    return await start_oauth(setup_kwargs={"cimd_ssl": tls[1]}, **env)


def params_for(h: OAuthHarness, client_id: str, challenge: str) -> dict[str, str]:
    return h.auth_params({"client_id": client_id, "redirect_uris": [REDIRECT]}, challenge)


async def test_a_metadata_document_client_signs_in_and_gets_tokens(start_oauth: StartOAuth, tls: Any,
                                                                   documents: DocumentServer) -> None:
    h = await start(start_oauth, tls)
    client_id = documents.url()
    page = await h.authorize(Browser(), params_for(h, client_id, pkce_pair()[1]))
    assert page.status == 200 and "Metadata Client" in await page.text()
    tokens = await h.tokens_for({"client_id": client_id, "redirect_uris": [REDIRECT]})
    assert (await h.mcp(tokens["access_token"])).status == 200
    source = await h.db.read(lambda conn: conn.execute(
        "SELECT source FROM oauth_clients WHERE client_id = ?", (client_id,)).fetchone()[0])
    assert source == "cimd"


async def test_documents_are_cached_for_their_max_age(start_oauth: StartOAuth, tls: Any,
                                                      documents: DocumentServer) -> None:
    h = await start(start_oauth, tls)
    params = params_for(h, documents.url(), pkce_pair()[1])
    for _ in range(3):
        assert (await h.authorize(Browser(), params)).status == 200
    assert documents.fetches == 1
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_clients SET metadata_expires_at = 0"))
    assert (await h.authorize(Browser(), params)).status == 200
    assert documents.fetches == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_addresses_are_refused_unless_allowed(start_oauth: StartOAuth, tls: Any,
                                                            documents: DocumentServer, host: str) -> None:
    h = await start(start_oauth, tls, oauth_cimd_allow_private="off")
    response = await h.authorize(Browser(), params_for(h, documents.url(host=host), pkce_pair()[1]))
    assert response.status == 400 and "Location" not in response.headers
    assert documents.fetches == 0


@pytest.mark.parametrize(("name", "behaviour", "reason"), [
    ("moved.json", {"redirect": "https://127.0.0.1:1/elsewhere.json"}, "HTTP 302"),
    ("huge.json", {"raw": b"{" + b" " * 70_000 + b"}"}, "too large"),
    ("slow.json", {"sleep": 3}, "could not be fetched"),
    ("notjson.json", {"raw": b"<html>"}, "not JSON"),
    ("other.json", {"overrides": {"client_id": "https://elsewhere.example/c.json"}}, "does not equal"),
    ("noname.json", {"overrides": {"client_name": ""}}, "client_name"),
    ("evil.json", {"overrides": {"redirect_uris": ["https://evil.example/cb"]}}, "allow-list"),
    ("secret.json", {"overrides": {"token_endpoint_auth_method": "client_secret_basic"}}, "none"),
])
async def test_bad_documents_are_refused_with_a_page(start_oauth: StartOAuth, tls: Any, documents: DocumentServer,
                                                     name: str, behaviour: dict[str, Any], reason: str) -> None:
    h = await start(start_oauth, tls, oauth_cimd_timeout_seconds="1")
    documents.behaviour[name] = behaviour
    response = await h.authorize(Browser(), params_for(h, documents.url(name), pkce_pair()[1]))
    assert response.status == 400 and "Location" not in response.headers
    assert reason in await response.text()


async def test_cimd_can_be_switched_off_and_http_urls_are_never_fetched(start_oauth: StartOAuth, tls: Any,
                                                                        documents: DocumentServer) -> None:
    h = await start(start_oauth, tls, oauth_cimd="off")
    response = await h.authorize(Browser(), params_for(h, documents.url(), pkce_pair()[1]))
    assert response.status == 400
    h = await start(start_oauth, tls)
    http_url = documents.url().replace("https://", "http://")
    response = await h.authorize(Browser(), params_for(h, http_url, pkce_pair()[1]))
    assert response.status == 400
    assert documents.fetches == 0


async def test_a_revoked_document_client_stays_revoked(start_oauth: StartOAuth, tls: Any,
                                                       documents: DocumentServer) -> None:
    h = await start(start_oauth, tls)
    params = params_for(h, documents.url(), pkce_pair()[1])
    assert (await h.authorize(Browser(), params)).status == 200
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_clients SET revoked_at = 1, metadata_expires_at = 0"))
    response = await h.authorize(Browser(), params)
    assert response.status == 400 and "revoked" in await response.text()


@pytest.mark.parametrize(("address", "private_ok", "allowed"), [
    ("8.8.8.8", False, True), ("2606:4700::1111", False, True),
    ("127.0.0.1", False, False), ("10.1.2.3", False, False), ("192.168.1.1", False, False),
    ("169.254.169.254", False, False), ("100.64.0.1", False, False), ("::1", False, False),
    ("::ffff:127.0.0.1", False, False), ("fd00::1", False, False), ("0.0.0.0", True, False),
    ("224.0.0.1", True, False), ("127.0.0.1", True, True), ("10.1.2.3", True, True),
])
def test_address_policy(address: str, private_ok: bool, allowed: bool) -> None:
    assert address_allowed(address, private_ok) is allowed


@pytest.mark.parametrize(("url", "ok"), [
    ("https://app.example/oauth/client.json", True), ("https://app.example/", False),
    ("https://app.example", False), ("http://app.example/c.json", False), ("https://u:p@app.example/c", False),
    ("https://app.example/a/../c.json", False), ("https://app.example/c.json#x", False),
])
def test_metadata_url_shape(url: str, ok: bool) -> None:
    assert is_metadata_url(url) is ok


@pytest.mark.parametrize(("header", "seconds"), [
    (None, 3600), ("max-age=600", 600), ("public, max-age=5", 60), ("max-age=999999", 86400), ("no-store", 60),
])
def test_cache_lifetime(header: str | None, seconds: int) -> None:
    assert cache_seconds(header) == seconds

