"""Sandbox auth: cookie sessions and API seats (§6); OAuth, rotating refresh tokens (§7)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support import Sandbox

LIST = "/entity/Default/24.200.001/Customer?$top=1"
VERIFIER = "dBjftJeZ4CVP-mJ92K9vnbxgxVQE2GQ2rnjbpM8uPgq8"  # RFC 7636 example verifier


def get(url: str, **kw: Any) -> requests.Response:
    return requests.get(url, timeout=30, **kw)


def post(url: str, **kw: Any) -> requests.Response:
    return requests.post(url, timeout=30, **kw)


def challenge(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    """One private sandbox for this module; every test starts from POST /_sandbox/reset."""
    s = Sandbox("--records", "20", "--api-seats", "2")
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "sbx" in request.fixturenames:
        request.getfixturevalue("sbx").admin("POST", "reset")


@pytest.fixture
def creds(sbx: Sandbox) -> dict[str, Any]:
    return sbx.credentials()


def login(sbx: Sandbox, creds: dict[str, Any]) -> requests.Session:
    s = requests.Session()
    r = s.post(
        f"{sbx.url}/entity/auth/login",
        json={"name": creds["username"], "password": creds["password"], "tenant": creds["tenant"]},
    )
    assert r.status_code == 204, r.text
    return s


def token(sbx: Sandbox, creds: dict[str, Any], **form: str) -> requests.Response:
    data = {"client_id": creds["client_id"], "client_secret": creds["client_secret"], **form}
    return post(f"{sbx.url}/identity/connect/token", data=data)


def password_grant(sbx: Sandbox, creds: dict[str, Any], scope: str = "api offline_access") -> dict:
    r = token(
        sbx,
        creds,
        grant_type="password",
        username=creds["username"],
        password=creds["password"],
        scope=scope,
    )
    assert r.status_code == 200, r.text
    return r.json()


def bearer_get(sbx: Sandbox, access: str) -> requests.Response:
    return get(sbx.url + LIST, headers={"Authorization": f"Bearer {access}"})


def advance(sbx: Sandbox, seconds: float) -> None:
    sbx.admin("POST", "clock", {"advance_seconds": seconds})


def is_login_limit(r: requests.Response) -> bool:
    return r.status_code == 429 and r.json()["exceptionMessage"] == "API Login Limit"


# ---------------------------------------------------------------- cookie sessions (§6)


def test_cookie_login_list_logout(sbx: Sandbox, creds: dict[str, Any]) -> None:
    assert get(sbx.url + LIST).status_code == 401
    assert get(sbx.url + LIST).json() == {"message": "You are not logged in."}
    s = login(sbx, creds)
    assert s.cookies["ASP.NET_SessionId"].startswith("sbxck-")
    assert s.cookies[".ASPXAUTH"].startswith("sbxck-")
    assert s.get(sbx.url + LIST).status_code == 200
    assert sbx.stats()["active_sessions"] == 1
    assert s.post(f"{sbx.url}/entity/auth/logout").status_code == 204
    assert s.get(sbx.url + LIST).status_code == 401
    st = sbx.stats()
    assert (st["active_sessions"], st["logins"], st["logouts"]) == (0, 1, 1)


def test_login_accepts_company_key_and_form(sbx: Sandbox, creds: dict[str, Any]) -> None:
    r = post(
        f"{sbx.url}/entity/auth/login",
        json={"name": "admin", "password": creds["password"], "company": "Company"},
    )
    assert r.status_code == 204
    r = post(f"{sbx.url}/entity/auth/login", data={"name": "admin", "password": creds["password"]})
    assert r.status_code == 204


def test_invalid_credentials(sbx: Sandbox, creds: dict[str, Any]) -> None:
    r = post(f"{sbx.url}/entity/auth/login", json={"name": "admin", "password": "nope"})
    assert r.status_code == 500
    body = r.json()
    assert "Invalid credentials" in body["exceptionMessage"]
    assert set(body) == {"message", "exceptionMessage", "exceptionType", "stackTrace"}
    r = post(
        f"{sbx.url}/entity/auth/login",
        json={"name": "admin", "password": creds["password"], "tenant": "Other"},
    )
    assert r.status_code == 500
    assert sbx.stats()["active_sessions"] == 0


def test_seat_limit_and_logout_frees_seat(sbx: Sandbox, creds: dict[str, Any]) -> None:
    first, _second = login(sbx, creds), login(sbx, creds)
    r = post(f"{sbx.url}/entity/auth/login", json={"name": "admin", "password": creds["password"]})
    assert is_login_limit(r), r.text
    assert sbx.stats()["active_sessions"] == 2
    assert first.post(f"{sbx.url}/entity/auth/logout").status_code == 204
    login(sbx, creds)


def test_idle_sessions_expire_on_virtual_clock(sbx: Sandbox, creds: dict[str, Any]) -> None:
    a, b = login(sbx, creds), login(sbx, creds)
    advance(sbx, 900)
    assert a.get(sbx.url + LIST).status_code == 200  # a is used, b idles
    advance(sbx, 901)
    assert sbx.stats()["active_sessions"] == 1
    assert b.get(sbx.url + LIST).status_code == 401
    login(sbx, creds)  # b's seat is free again
    advance(sbx, 1801)
    assert a.get(sbx.url + LIST).status_code == 401
    assert sbx.stats()["active_sessions"] == 0


def test_logout_without_session_is_204(sbx: Sandbox) -> None:
    assert post(f"{sbx.url}/entity/auth/logout").status_code == 204
    assert sbx.stats()["logouts"] == 0


# ---------------------------------------------------------------- OAuth 2.0 / OIDC (§7)


def test_discovery_document(sbx: Sandbox) -> None:
    doc = get(f"{sbx.url}/identity/.well-known/openid-configuration").json()
    assert doc["token_endpoint"] == f"{sbx.url}/identity/connect/token"
    assert doc["authorization_endpoint"] == f"{sbx.url}/identity/connect/authorize"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "client_secret_post" in doc["token_endpoint_auth_methods_supported"]
    assert {"authorization_code", "refresh_token", "password"} <= set(doc["grant_types_supported"])


def test_client_id_shape_and_invalid_client(sbx: Sandbox, creds: dict[str, Any]) -> None:
    assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}@Company", creds["client_id"])
    bad = {**creds, "client_secret": "sbxcs-wrong"}
    r = token(sbx, bad, grant_type="password", username="admin", password=creds["password"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client"
    r = token(sbx, creds, grant_type="client_credentials")
    assert r.json()["error"] == "unsupported_grant_type"


def test_password_grant_and_bearer(sbx: Sandbox, creds: dict[str, Any]) -> None:
    body = password_grant(sbx, creds)
    assert body["access_token"].startswith("sbxat-")
    assert body["refresh_token"].startswith("sbxrt-")
    assert (body["expires_in"], body["token_type"]) == (3600, "Bearer")
    assert body["scope"] == "api offline_access"
    assert bearer_get(sbx, body["access_token"]).status_code == 200
    assert bearer_get(sbx, "sbxat-forged").status_code == 401
    no_refresh = password_grant(sbx, creds, scope="api")
    assert "refresh_token" not in no_refresh
    r = token(sbx, creds, grant_type="password", username="admin", password="wrong")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_refresh_rotation_and_reuse(sbx: Sandbox, creds: dict[str, Any]) -> None:
    first = password_grant(sbx, creds)
    r = token(sbx, creds, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert bearer_get(sbx, second["access_token"]).status_code == 200
    # The old refresh token died with the rotation.
    r = token(sbx, creds, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    # The new one still works (reuse of the old one does not kill the chain).
    r = token(sbx, creds, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert r.status_code == 200
    assert sbx.stats()["refresh_tokens"] == {"issued": 3, "consumed": 2, "rejected": 1}
    assert sbx.stats()["active_sessions"] == 1  # one grant = one seat across refreshes


def test_access_token_expires_on_virtual_clock(sbx: Sandbox, creds: dict[str, Any]) -> None:
    body = password_grant(sbx, creds)
    advance(sbx, 3599)
    assert bearer_get(sbx, body["access_token"]).status_code == 200
    advance(sbx, 2)
    r = bearer_get(sbx, body["access_token"])
    assert r.status_code == 401
    assert "invalid_token" in r.headers["WWW-Authenticate"]
    r = token(sbx, creds, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert bearer_get(sbx, r.json()["access_token"]).status_code == 200


def test_refresh_chain_absolute_lifetime(sbx: Sandbox, creds: dict[str, Any]) -> None:
    body = password_grant(sbx, creds)
    rt = body["refresh_token"]
    for _ in range(3):  # refreshing does not extend an absolute chain
        advance(sbx, 9 * 86400)
        r = token(sbx, creds, grant_type="refresh_token", refresh_token=rt)
        assert r.status_code == 200, r.text
        rt = r.json()["refresh_token"]
    advance(sbx, 3 * 86400 + 1)  # 30 days + 1 s after the grant
    r = token(sbx, creds, grant_type="refresh_token", refresh_token=rt)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_sliding_refresh_lifetime(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "5", "--sliding-days", "2", "--refresh-lifetime-days", "5")
    creds = sbx.credentials()
    rt = password_grant(sbx, creds)["refresh_token"]
    for _ in range(2):  # each refresh extends the lifetime by 2 days ...
        advance(sbx, 1.5 * 86400)
        r = token(sbx, creds, grant_type="refresh_token", refresh_token=rt)
        assert r.status_code == 200, r.text
        rt = r.json()["refresh_token"]
    advance(sbx, 1.5 * 86400)  # ... but never past the 5-day absolute limit (4.5 days now)
    r = token(sbx, creds, grant_type="refresh_token", refresh_token=rt)
    assert r.status_code == 200
    rt2 = r.json()["refresh_token"]
    advance(sbx, 0.6 * 86400)  # 5.1 days
    r = token(sbx, creds, grant_type="refresh_token", refresh_token=rt2)
    assert r.json()["error"] == "invalid_grant"
    # An unused token expires after the sliding window.
    fresh = password_grant(sbx, creds)["refresh_token"]
    advance(sbx, 2 * 86400 + 1)
    assert token(sbx, creds, grant_type="refresh_token", refresh_token=fresh).status_code == 400


def authorize(sbx: Sandbox, creds: dict[str, Any], **extra: str) -> requests.Response:
    params = {
        "response_type": "code",
        "client_id": creds["client_id"],
        "redirect_uri": creds["redirect_uris"][0],
        "scope": "api offline_access",
        "state": "xyz-state",
        **extra,
    }
    return get(f"{sbx.url}/identity/connect/authorize", params=params, allow_redirects=False)


def redirect_query(r: requests.Response) -> dict[str, str]:
    assert r.status_code == 302, r.text
    loc = urlsplit(r.headers["Location"])
    return {k: v[0] for k, v in parse_qs(loc.query).items()}


@pytest.fixture(scope="module")
def auto() -> Iterator[Sandbox]:
    s = Sandbox("--records", "5", "--auto-approve", "admin", "--api-seats", "1")
    yield s
    s.stop()


@pytest.fixture
def auto_creds(auto: Sandbox) -> dict[str, Any]:
    auto.admin("POST", "reset")
    return auto.credentials()


def test_code_grant_with_pkce(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    r = authorize(
        auto, auto_creds, code_challenge=challenge(VERIFIER), code_challenge_method="S256"
    )
    assert r.headers["Location"].startswith(auto_creds["redirect_uris"][0] + "?")
    q = redirect_query(r)
    assert q["state"] == "xyz-state"
    assert q["code"].startswith("sbxcd-")
    form = {
        "grant_type": "authorization_code",
        "code": q["code"],
        "redirect_uri": auto_creds["redirect_uris"][0],
        "code_verifier": VERIFIER,
    }
    r = token(auto, auto_creds, **form)
    assert r.status_code == 200, r.text
    assert bearer_get(auto, r.json()["access_token"]).status_code == 200
    # Codes are single-use.
    r = token(auto, auto_creds, **form)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("verifier", ["wrong-verifier-" + "x" * 40, None])
def test_pkce_failure(auto: Sandbox, auto_creds: dict[str, Any], verifier: str | None) -> None:
    q = redirect_query(
        authorize(
            auto, auto_creds, code_challenge=challenge(VERIFIER), code_challenge_method="S256"
        )
    )
    form = {
        "grant_type": "authorization_code",
        "code": q["code"],
        "redirect_uri": auto_creds["redirect_uris"][0],
    }
    if verifier:
        form["code_verifier"] = verifier
    r = token(auto, auto_creds, **form)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    # The failed exchange burned the code.
    r = token(auto, auto_creds, **{**form, "code_verifier": VERIFIER})
    assert r.json()["error"] == "invalid_grant"


def test_pkce_plain_refused(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    q = redirect_query(
        authorize(auto, auto_creds, code_challenge=VERIFIER, code_challenge_method="plain")
    )
    assert q["error"] == "invalid_request"
    assert "code" not in q


def test_redirect_uri_exact_match(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    for uri in (
        "http://localhost:8765/callback/",
        "http://localhost:8766/callback",
        "http://localhost:8765/callback?x=1",
        "https://evil.invalid/callback",
    ):
        r = authorize(auto, auto_creds, redirect_uri=uri)
        assert r.status_code == 400, uri
        assert "Location" not in r.headers
        assert "text/html" in r.headers["Content-Type"]
    # A code issued for one redirect URI cannot be redeemed with another.
    q = redirect_query(authorize(auto, auto_creds))
    r = token(
        auto,
        auto_creds,
        grant_type="authorization_code",
        code=q["code"],
        redirect_uri=auto_creds["redirect_uris"][1],
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_code_expires(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    q = redirect_query(authorize(auto, auto_creds))
    advance(auto, 301)
    r = token(
        auto,
        auto_creds,
        grant_type="authorization_code",
        code=q["code"],
        redirect_uri=auto_creds["redirect_uris"][0],
    )
    assert r.json()["error"] == "invalid_grant"


def test_oauth_sessions_take_seats(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    first = password_grant(auto, auto_creds)  # --api-seats 1
    r = token(
        auto,
        auto_creds,
        grant_type="password",
        username="admin",
        password=auto_creds["password"],
        scope="api",
    )
    assert is_login_limit(r), r.text
    login_r = post(
        f"{auto.url}/entity/auth/login", json={"name": "admin", "password": auto_creds["password"]}
    )
    assert is_login_limit(login_r)
    # Refreshing the same grant reuses its seat.
    r = token(auto, auto_creds, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200
    access = r.json()["access_token"]
    # Logout with the bearer frees the seat.
    out = post(f"{auto.url}/entity/auth/logout", headers={"Authorization": f"Bearer {access}"})
    assert out.status_code == 204
    assert auto.stats()["active_sessions"] == 0
    password_grant(auto, auto_creds, scope="api")
    # The logged-out grant's token now needs a seat again: none is free.
    assert is_login_limit(bearer_get(auto, access))


def test_revoked_bearer_gets_401(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    body = password_grant(auto, auto_creds)
    assert auto.admin("POST", "revoke", {"what": "access_tokens"})["access_tokens"] == 1
    assert bearer_get(auto, body["access_token"]).status_code == 401
    r = token(auto, auto_creds, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert r.status_code == 200  # the refresh token survives an access-token revocation


def test_id_token_and_userinfo(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    body = password_grant(auto, auto_creds, scope="openid api")
    assert body["id_token"].count(".") == 2
    r = get(
        f"{auto.url}/identity/connect/userinfo",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert r.json()["sub"] == "admin@Company"
    auto.admin("POST", "reset")
    no_api = password_grant(auto, auto_creds, scope="openid")
    assert bearer_get(auto, no_api["access_token"]).status_code == 403
    # Basic auth is for OData only, not for the contract-based REST API.
    assert get(auto.url + LIST, auth=("admin", auto_creds["password"])).status_code == 401


# ---------------------------------------------------------------- the real sign-in page


def test_signin_and_consent_page(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "5")
    creds = sbx.credentials()
    page = authorize(sbx, creds)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    for element_id in ("username", "password", "approve", "deny", "signin-form", "scopes"):
        assert f'id="{element_id}"' in page.text
    rid = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert rid
    action = f"{sbx.url}/identity/connect/authorize"

    def submit(**form: str) -> requests.Response:
        return post(action, data={"request_id": rid.group(1), **form}, allow_redirects=False)

    bad = submit(username="admin", password="wrong", action="approve")
    assert bad.status_code == 200
    assert 'id="error"' in bad.text
    q = redirect_query(submit(username="admin", password=creds["password"], action="approve"))
    assert q["code"].startswith("sbxcd-")
    assert q["state"] == "xyz-state"
    # The page's request is consumed; a new one can be denied.
    rid = re.search(r'name="request_id" value="([^"]+)"', authorize(sbx, creds).text)
    assert rid
    q = redirect_query(submit(action="deny"))
    assert q == {"error": "access_denied", "state": "xyz-state"}


def test_no_secret_on_stderr(auto: Sandbox, auto_creds: dict[str, Any]) -> None:
    password_grant(auto, auto_creds)
    redirect_query(authorize(auto, auto_creds))
    text = "".join(auto.stderr_lines)
    for prefix in auto_creds["secret_prefixes"]:
        assert prefix not in text
