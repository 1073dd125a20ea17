"""/oauth/authorize: no open redirect, PKCE and resource rules, login, consent, CSRF, cookies, audit."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from structlog.testing import capture_logs

from oauthkit import PASSWORD, Browser, OAuthHarness, StartOAuth, hidden_fields, pkce_pair, query_of

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs

ATTACKER = "https://attacker.example/steal"


async def client_and_params(h: OAuthHarness, **metadata: Any) -> tuple[dict[str, Any], dict[str, str]]:
    client = await h.register(**metadata)
    return client, h.auth_params(client, pkce_pair()[1])


async def login(h: OAuthHarness, browser: Browser, params: dict[str, str], password: str = PASSWORD) -> Any:
    page = await h.authorize(browser, params)
    return await h.post_form(browser, {**hidden_fields(await page.text()), "password": password})


# --- before the redirect URI is trusted: pages, never redirects ------------------------------------


@pytest.mark.parametrize("change", [
    {"client_id": "no-such-client"},
    {"redirect_uri": ATTACKER},
    {"redirect_uri": "http://127.0.0.1:9/callback/"},
    {"redirect_uri": "http://127.0.0.1:9/Callback"},
    {"redirect_uri": ATTACKER, "response_type": "token"},
    {"client_id": ""},
])
async def test_untrusted_client_or_redirect_gets_a_page_not_a_redirect(start_oauth: StartOAuth,
                                                                       change: dict[str, str]) -> None:
    h = await start_oauth()
    _, params = await client_and_params(h)
    response = await h.authorize(Browser(), {**params, **change})
    assert response.status == 400
    assert "Location" not in response.headers
    assert "attacker" not in await response.text()


async def test_redirect_uri_is_required_even_with_one_registered(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, params = await client_and_params(h)
    del params["redirect_uri"]
    response = await h.authorize(Browser(), params)
    assert response.status == 400 and "Location" not in response.headers


# --- after: errors go back to the client, with state and iss ---------------------------------------


@pytest.mark.parametrize(("change", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge": ""}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": ""}, "invalid_request"),
    ({"code_challenge": "too-short"}, "invalid_request"),
    ({"scope": "memory admin"}, "invalid_scope"),
    ({"resource": "https://other.example/mcp"}, "invalid_target"),
    ({"resource": "http://127.0.0.1:1/mcp"}, "invalid_target"),
    ({"resource": "PLACEHOLDER/other"}, "invalid_target"),
])
async def test_bad_request_from_a_known_client_redirects_with_error_state_and_iss(
    start_oauth: StartOAuth, change: dict[str, str], error: str,
) -> None:
    h = await start_oauth()
    client, params = await client_and_params(h)
    change = {k: v.replace("PLACEHOLDER", h.base) for k, v in change.items()}
    response = await h.authorize(Browser(), {**params, **change})
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(client["redirect_uris"][0] + "?")
    answer = query_of(location)
    assert answer["error"] == error
    assert answer["state"] == "st4te"
    assert answer["iss"] == h.base


@pytest.mark.parametrize("resource", ["{base}", "{base}/", "{base}/mcp/", "{upper}/mcp", None])
async def test_resource_variants_all_become_the_mcp_url(start_oauth: StartOAuth, resource: str | None) -> None:
    h = await start_oauth()
    client = await h.register()
    verifier, challenge = pkce_pair()
    extra = {}
    if resource is not None:
        extra["resource"] = resource.format(base=h.base, upper=h.base.replace("http://", "HTTP://"))
    params = h.auth_params(client, challenge, **extra)
    if resource is None:
        del params["resource"]
    browser = Browser()
    page = await login(h, browser, params)
    done = await h.post_form(browser, {**hidden_fields(await page.text()), "decision": "allow"})
    code = query_of(done.headers["Location"])["code"]
    status, body, _ = await h.token({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                     "redirect_uri": client["redirect_uris"][0], "client_id": client["client_id"]})
    assert status == 200
    claims = jwt.decode(body["access_token"], h.state.keyring.current).claims  # type: ignore[union-attr]
    assert claims["aud"] == f"{h.base}/mcp"


# --- login -------------------------------------------------------------------------------------------


async def test_login_page_then_wrong_password_then_consent_with_host_cookies(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, params = await client_and_params(h, client_name="<script>alert(1)</script>")
    browser = Browser()
    page = await h.authorize(browser, params)
    html = await page.text()
    assert page.status == 200 and hidden_fields(html)["stage"] == "login"
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"

    wrong = await h.post_form(browser, {**hidden_fields(html), "password": "not-the-password"})
    assert wrong.status == 200
    wrong_html = await wrong.text()
    assert hidden_fields(wrong_html)["stage"] == "login" and "not right" in wrong_html
    assert "__Host-ownsona_session" not in browser.cookies

    right = await h.post_form(browser, {**hidden_fields(wrong_html), "password": PASSWORD})
    consent = await right.text()
    assert right.status == 200 and hidden_fields(consent)["stage"] == "consent"
    assert "&lt;script&gt;" in consent and "127.0.0.1:9" in consent  # client name escaped, redirect host shown
    assert "frame-ancestors 'none'" in right.headers["Content-Security-Policy"]
    morsels = {name: jar[name] for jar in browser.set_cookies for name in jar}
    for name in ("__Host-ownsona_session", "__Host-ownsona_csrf"):
        cookie = morsels[name]
        assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert not cookie["domain"]
    assert morsels["__Host-ownsona_session"]["max-age"] == "1800"


async def test_live_session_skips_the_password_and_an_expired_one_does_not(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client, params = await client_and_params(h)
    browser = Browser()
    await h.code_for(client, params["code_challenge"], browser)
    again = await h.authorize(browser, params)
    assert hidden_fields(await again.text())["stage"] == "consent"
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_sessions SET expires_at = 0"))
    later = await h.authorize(browser, params)
    assert hidden_fields(await later.text())["stage"] == "login"


async def test_consent_without_login_on_that_flow_shows_login_and_issues_nothing(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, params = await client_and_params(h)
    browser = Browser()
    page = await h.authorize(browser, params)
    fields = {**hidden_fields(await page.text()), "stage": "consent", "decision": "allow"}
    response = await h.post_form(browser, fields)
    assert response.status == 200 and "Location" not in response.headers
    assert hidden_fields(await response.text())["stage"] == "login"


async def test_allow_and_deny_redirect_and_the_flow_cannot_be_replayed(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client, params = await client_and_params(h)
    for decision, key in (("allow", "code"), ("deny", "error")):
        browser = Browser()
        page = await login(h, browser, params)
        fields = {**hidden_fields(await page.text()), "decision": decision}
        done = await h.post_form(browser, fields)
        assert done.status == 302
        answer = query_of(done.headers["Location"])
        assert key in answer and answer["state"] == "st4te" and answer["iss"] == h.base
        if decision == "deny":
            assert answer["error"] == "access_denied"
        replay = await h.post_form(browser, fields)
        assert replay.status == 400 and "Location" not in replay.headers


async def test_a_flow_older_than_ten_minutes_has_expired(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, params = await client_and_params(h)
    browser = Browser()
    page = await h.authorize(browser, params)
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_flows SET created_at = created_at - 601"))
    response = await h.post_form(browser, {**hidden_fields(await page.text()), "password": PASSWORD})
    assert response.status == 400 and "expired" in await response.text()


@pytest.mark.parametrize("tamper", ["no_cookie", "wrong_field", "other_browser"])
async def test_csrf_token_must_match_the_cookie_and_the_flow(start_oauth: StartOAuth, tamper: str) -> None:
    h = await start_oauth()
    _, params = await client_and_params(h)
    victim = Browser()
    page = await h.authorize(victim, params)
    fields = {**hidden_fields(await page.text()), "password": PASSWORD}
    if tamper == "no_cookie":
        victim.cookies.clear()
    elif tamper == "wrong_field":
        fields["csrf"] = "x" * 43
    else:  # an attacker's own browser starts the flow; the victim's browser posts it
        attacker = Browser()
        attacker_page = await h.authorize(attacker, params)
        fields = {**hidden_fields(await attacker_page.text()), "password": PASSWORD,
                  "csrf": victim.cookies["__Host-ownsona_csrf"]}
    response = await h.post_form(victim, fields)
    assert response.status == 403
    assert "__Host-ownsona_session" not in victim.cookies


async def test_login_is_rate_limited_per_address_and_every_attempt_is_audited(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_login_attempts="3")
    client, params = await client_and_params(h)
    browser = Browser()
    page = await h.authorize(browser, params)
    fields = hidden_fields(await page.text())
    with capture_logs() as events:
        for _ in range(3):
            assert (await h.post_form(browser, {**fields, "password": "wrong-guess-123"})).status == 200
        blocked = await h.post_form(browser, {**fields, "password": PASSWORD})
    assert blocked.status == 429 and "Too many" in await blocked.text()
    assert "__Host-ownsona_session" not in browser.cookies
    names = [e["event"] for e in events if e["event"].startswith("oauth_login")]
    assert names == ["oauth_login_failed"] * 3 + ["oauth_login_rate_limited"]
    for event in events:
        if event["event"].startswith("oauth_login"):
            assert event["remote"] == "127.0.0.1" and event["client_id"] == client["client_id"]
            assert event["log_level"] in ("warning", "info")
    assert "wrong-guess-123" not in repr(events) and PASSWORD not in repr(events)


async def test_successful_login_is_audited_once(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client, params = await client_and_params(h)
    with capture_logs() as events:
        await login(h, Browser(), params)
    assert [e["event"] for e in events if e["event"].startswith("oauth_login")] == ["oauth_login_succeeded"]


async def test_a_revoked_client_cannot_start_a_flow(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client, params = await client_and_params(h)
    from ownsona.auth.oauth.clients import revoke_client

    await h.db.write(lambda conn: revoke_client(conn, client["client_id"], 1))
    response = await h.authorize(Browser(), params)
    assert response.status == 400 and "revoked" in await response.text()


async def test_offline_access_is_tolerated_and_the_grant_is_the_memory_scope(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    verifier, challenge = pkce_pair()
    code = await h.code_for(client, challenge, scope="memory offline_access")
    status, body, _ = await h.token({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                     "redirect_uri": client["redirect_uris"][0], "client_id": client["client_id"]})
    assert status == 200 and body["scope"] == "memory"


async def test_consent_needs_a_live_session_so_a_password_change_ends_open_consent_pages(
    start_oauth: StartOAuth,
) -> None:

    h = await start_oauth()
    _, params = await client_and_params(h)
    browser = Browser()
    page = await login(h, browser, params)
    fields = {**hidden_fields(await page.text()), "decision": "allow"}
    from ownsona.auth.oauth.password import set_owner_password

    await set_owner_password(h.db, "a-brand-new-Passw0rd-42")
    response = await h.post_form(browser, fields)
    assert response.status == 200 and "Location" not in response.headers
    assert hidden_fields(await response.text())["stage"] == "login"


async def test_login_limits_follow_the_proxied_address_and_cap_all_addresses_together(
    start_oauth: StartOAuth,
) -> None:
    h = await start_oauth(oauth_login_attempts="2")  # per address 2, all addresses together 8
    _, params = await client_and_params(h)

    async def attempt(address: str, password: str) -> int:
        browser = Browser()
        page = await h.authorize(browser, params)
        response = await h.post_form(browser, {**hidden_fields(await page.text()), "password": password},
                                     headers={"X-Forwarded-For": address})
        return response.status

    assert [await attempt("203.0.113.1", "wrong-guess-123") for _ in range(3)] == [200, 200, 429]
    assert await attempt("203.0.113.2", PASSWORD) == 200  # another address is unaffected
    for n in range(3, 6):
        assert [await attempt(f"203.0.113.{n}", "wrong-guess-123") for _ in range(2)] == [200, 200]
    assert await attempt("203.0.113.99", PASSWORD) == 429  # eight failures in the window, from anywhere


async def test_authorization_requests_are_rate_limited_per_address(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, params = await client_and_params(h)
    for _ in range(30):
        assert (await h.authorize(Browser(), params)).status == 200
    assert (await h.authorize(Browser(), params)).status == 429
    other = await h.http.get(f"{h.base}/oauth/authorize", params=params, headers={"X-Forwarded-For": "203.0.113.7"},
                             allow_redirects=False)
    assert other.status == 200
