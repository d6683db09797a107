"""Authenticators against the sandbox, in process: refresh and rotation, modes, errors, seats."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_acumatica import redact
from tap_acumatica.auth import browser as codegrant
from tap_acumatica.auth import factory as auth
from tap_acumatica.auth import grants, oauth
from tap_acumatica.auth.base import AcumaticaAuthenticator
from tap_acumatica.auth.tokenstore import StoredTokens, TokenSet, TokenStore, fingerprint
from tap_acumatica.errors import AuthError, ConfigError
from tests.support import Sandbox, password_grant

ENTITY = "/entity/Default/24.200.001/Customer"


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    box = Sandbox("--records", "20", "--auto-approve", "admin")
    yield box
    box.stop()


@pytest.fixture
def fresh(sbx: Sandbox) -> Sandbox:
    sbx.admin("POST", "reset")
    return sbx


def base_config(box: Sandbox, **extra: Any) -> dict[str, Any]:
    c = box.credentials()
    return {
        "base_url": box.url,
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "redirect_uri": c["redirect_uris"][1],
        "open_browser": False,
        **extra,
    }


def password_tokens(box: Sandbox) -> dict[str, Any]:
    """A token pair straight from the sandbox (password grant), then the seat freed."""
    body = password_grant(box)
    logout(box, body["access_token"])
    return body


def logout(box: Sandbox, access_token: str) -> None:
    headers = {"Authorization": f"Bearer {access_token}"}
    requests.post(f"{box.url}/entity/auth/logout", headers=headers, timeout=10)


def seed_store(path: Path, box: Sandbox, tokens: TokenSet) -> TokenStore:
    c = box.credentials()
    store = TokenStore(path)
    with store.lock():
        store.write(StoredTokens(tokens, fingerprint(c["client_id"], box.url, "Company")))
    return store


def get(a: AcumaticaAuthenticator, box: Sandbox) -> requests.Response:
    """One API call the way the tap's client makes it: a 401 → handle_unauthorized → resend."""
    session = requests.Session()
    resp = session.get(f"{box.url}{ENTITY}", params={"$top": "1"}, auth=a, timeout=30)
    if resp.status_code == 401:
        a.handle_unauthorized(resp.request)
        resp = session.get(f"{box.url}{ENTITY}", params={"$top": "1"}, auth=a, timeout=30)
    return resp


def refresh_counts(box: Sandbox) -> dict[str, int]:
    return box.stats()["refresh_tokens"]


def test_refresh_before_expiry_persists_rotated_token_first(fresh: Sandbox, tmp_path: Path) -> None:
    body = password_tokens(fresh)
    expiring = TokenSet(body["access_token"], body["refresh_token"], time.time() + 30)
    store = seed_store(tmp_path / "t.json", fresh, expiring)
    cfg = base_config(fresh, initiate_oauth="REFRESH", oauth_settings_location=str(store.path))
    a = auth.build_authenticator(cfg)
    seen: list[str | None] = []
    original = a._adopt  # type: ignore[attr-defined]

    def adopt(tokens: TokenSet) -> None:
        stored = store.read()
        seen.append(stored.tokens.refresh_token if stored else None)
        original(tokens)

    a._adopt = adopt  # type: ignore[attr-defined]
    assert get(a, fresh).status_code == 200
    stored = store.read()
    assert stored is not None
    assert stored.tokens.refresh_token not in (None, body["refresh_token"])
    assert seen == [stored.tokens.refresh_token]  # on disk before the access token was used
    assert refresh_counts(fresh) == {"issued": 2, "consumed": 1, "rejected": 0}
    a.sign_out()
    assert fresh.stats()["active_sessions"] == 0


def test_valid_stored_access_token_is_shared_not_refreshed(fresh: Sandbox, tmp_path: Path) -> None:
    body = password_tokens(fresh)
    tokens = TokenSet(body["access_token"], body["refresh_token"], time.time() + 3000)
    store = seed_store(tmp_path / "t.json", fresh, tokens)
    cfg = base_config(fresh, oauth_settings_location=str(store.path))
    a = auth.build_authenticator(cfg)
    assert get(a, fresh).status_code == 200
    assert refresh_counts(fresh)["consumed"] == 0
    a.sign_out()
    assert fresh.stats()["active_sessions"] == 0


def test_concurrent_401s_cause_one_refresh(fresh: Sandbox, tmp_path: Path) -> None:
    body = password_tokens(fresh)
    tokens = TokenSet(body["access_token"], body["refresh_token"], time.time() + 3000)
    store = seed_store(tmp_path / "t.json", fresh, tokens)
    a = auth.build_authenticator(base_config(fresh, oauth_settings_location=str(store.path)))
    assert get(a, fresh).status_code == 200
    fresh.admin("POST", "revoke", {"what": "access_tokens"})
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def worker() -> None:
        session = requests.Session()
        url = f"{fresh.url}{ENTITY}"
        barrier.wait()
        resp = session.get(url, auth=a, timeout=30)
        if resp.status_code == 401:
            a.handle_unauthorized(resp.request)
            resp = session.get(url, auth=a, timeout=30)
        codes.append(resp.status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert codes == [200] * 8
    assert refresh_counts(fresh) == {"issued": 2, "consumed": 1, "rejected": 0}
    a.sign_out()
    assert fresh.stats()["active_sessions"] == 0


def test_refresh_mode_is_never_interactive(
    fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_browser(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("REFRESH mode must not start the code grant")

    monkeypatch.setattr(codegrant, "obtain_code", no_browser)
    loc = str(tmp_path / "t.json")
    cfg = base_config(fresh, initiate_oauth="REFRESH", oauth_settings_location=loc)
    with pytest.raises(AuthError, match=r"REFRESH.*--login --config.*meltano invoke"):
        get(auth.build_authenticator(cfg), fresh)
    seed = password_tokens(fresh)["refresh_token"]
    a = auth.build_authenticator({**cfg, "refresh_token": seed})
    assert get(a, fresh).status_code == 200
    stored = TokenStore(loc).read()
    assert stored is not None
    assert stored.tokens.refresh_token != seed
    a.sign_out()
    # The seed was spent; the next run must use the store, not the (dead) seed.
    b = auth.build_authenticator({**cfg, "refresh_token": seed})
    b._tokens = None  # type: ignore[attr-defined]
    fresh.admin("POST", "revoke", {"what": "access_tokens"})
    assert get(b, fresh).status_code == 200
    assert refresh_counts(fresh)["rejected"] == 0
    b.sign_out()


def test_dead_refresh_token_gives_the_relogin_message(fresh: Sandbox, tmp_path: Path) -> None:
    body = password_tokens(fresh)
    store = seed_store(tmp_path / "t.json", fresh, TokenSet(None, body["refresh_token"]))
    fresh.admin("POST", "revoke", {"what": "refresh_tokens"})
    a = auth.build_authenticator(base_config(fresh, oauth_settings_location=str(store.path)))
    with pytest.raises(AuthError) as info:
        get(a, fresh)
    msg = str(info.value)
    assert "invalid_grant" in msg
    assert "tap-acumatica --login --config" in msg
    assert "meltano invoke tap-acumatica --login" in msg
    assert "\n" not in msg
    assert "interrupted" not in msg
    after = store.read()
    assert after is not None
    assert after.pending_refresh_sha256 is None  # a definite answer leaves no in-flight mark


def test_invalid_grant_rereads_store_for_a_newer_token(fresh: Sandbox, tmp_path: Path) -> None:
    body = password_tokens(fresh)
    store = seed_store(tmp_path / "t.json", fresh, TokenSet(None, body["refresh_token"]))
    a = auth.build_authenticator(base_config(fresh, oauth_settings_location=str(store.path)))
    assert isinstance(a, oauth.OAuthAuthenticator)
    real_post = a._token_post
    raced = []

    def racing_post(form: dict[str, str]) -> Any:
        if not raced:  # a process that ignores the lock rotates the token first
            raced.append(1)
            c = fresh.credentials()
            data = {**form, "client_id": c["client_id"], "client_secret": c["client_secret"]}
            other = requests.post(f"{fresh.url}/identity/connect/token", data=data, timeout=10)
            newer = TokenSet(None, other.json()["refresh_token"])
            store.write(StoredTokens(newer, a.fingerprint))
        return real_post(form)

    a._token_post = racing_post  # type: ignore[method-assign]
    assert get(a, fresh).status_code == 200
    assert refresh_counts(fresh) == {"issued": 3, "consumed": 2, "rejected": 1}
    a.sign_out()


def test_no_answer_rereads_store_then_resends_once(fresh: Sandbox, tmp_path: Path) -> None:
    body = password_tokens(fresh)
    store = seed_store(tmp_path / "t.json", fresh, TokenSet(None, body["refresh_token"]))
    a = auth.build_authenticator(base_config(fresh, oauth_settings_location=str(store.path)))
    assert isinstance(a, oauth.OAuthAuthenticator)
    real_post = a._token_post
    calls: list[int] = []

    def flaky(form: dict[str, str]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise oauth.AmbiguousAnswerError
        return real_post(form)

    a._token_post = flaky  # type: ignore[method-assign]
    assert get(a, fresh).status_code == 200
    assert len(calls) == 2
    assert refresh_counts(fresh)["rejected"] == 0
    a.sign_out()


def test_lost_refresh_answer_is_explained(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = sandbox_factory("--records", "5")
    body = password_tokens(box)
    store = seed_store(tmp_path / "t.json", box, TokenSet(None, body["refresh_token"]))
    a = auth.build_authenticator(base_config(box, oauth_settings_location=str(store.path)))
    assert isinstance(a, oauth.OAuthAuthenticator)
    # The server rotates, then its answer is too slow: the client times out without it.
    box.admin("POST", "faults", {"token_delay_ms": 1500, "token_delay_after": True})
    monkeypatch.setattr(oauth, "TOKEN_TIMEOUT", (5.0, 0.5))
    real_post = a._token_post

    def post(form: dict[str, str]) -> Any:
        try:
            return real_post(form)
        finally:
            box.admin("POST", "faults", {"token_delay_ms": 0})

    a._token_post = post  # type: ignore[method-assign]
    with pytest.raises(AuthError, match=r"interrupted.*--login"):
        get(a, box)
    assert refresh_counts(box) == {"issued": 2, "consumed": 1, "rejected": 1}


def test_off_mode_uses_the_given_token_and_explains_expiry(fresh: Sandbox) -> None:
    body = password_tokens(fresh)
    cfg = base_config(fresh, initiate_oauth="OFF", access_token=body["access_token"])
    a = auth.build_authenticator(cfg)
    assert get(a, fresh).status_code == 200
    fresh.admin("POST", "clock", {"advance_seconds": 4000})
    with pytest.raises(AuthError, match=r"initiate_oauth is OFF"):
        get(a, fresh)
    assert refresh_counts(fresh)["consumed"] == 0


def test_foreign_store_is_refused(fresh: Sandbox, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    with store.lock():
        other = fingerprint("OTHER@Company", fresh.url, "Company")
        store.write(StoredTokens(TokenSet("sbxat-zzzzzzzz", "sbxrt-zzzzzzzz"), other))
    a = auth.build_authenticator(base_config(fresh, oauth_settings_location=str(store.path)))
    with pytest.raises(AuthError, match="another client_id or instance"):
        get(a, fresh)


def test_wrong_pkce_verifier_is_rejected(
    fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = codegrant.authorization_request

    def tampered(**kwargs: Any) -> codegrant.AuthorizationRequest:
        req = real(**kwargs)
        return codegrant.AuthorizationRequest(req.url, req.state, "x" * 50, req.redirect_uri)

    def follow(request: codegrant.AuthorizationRequest, **kwargs: Any) -> str:
        resp = requests.get(request.url, allow_redirects=False, timeout=10)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.headers["Location"]).query)
        return codegrant.code_from_redirect(query, request.state)

    monkeypatch.setattr(codegrant, "authorization_request", tampered)
    monkeypatch.setattr(codegrant, "obtain_code", follow)
    cfg = base_config(fresh, oauth_settings_location=str(tmp_path / "t.json"))
    a = auth.build_authenticator(cfg)
    assert isinstance(a, grants.CodeGrantAuthenticator)
    with pytest.raises(AuthError, match="code_verifier"):
        a.login()
    assert TokenStore(tmp_path / "t.json").read() is None


def test_password_grant_without_and_with_store(fresh: Sandbox, tmp_path: Path) -> None:
    c = fresh.credentials()
    cfg = base_config(
        fresh, auth_method="oauth_password", username=c["username"], password=c["password"]
    )
    a = auth.build_authenticator(cfg)
    assert get(a, fresh).status_code == 200
    assert not list(tmp_path.iterdir())
    a.sign_out()
    assert fresh.stats()["active_sessions"] == 0
    loc = tmp_path / "pw.json"
    b = auth.build_authenticator({**cfg, "oauth_settings_location": str(loc)})
    assert get(b, fresh).status_code == 200
    assert json.loads(loc.read_text())["refresh_token"].startswith("sbxrt-")
    b.sign_out()
    bad = auth.build_authenticator({**cfg, "password": "sbxpw-wrong-one"})
    with pytest.raises(AuthError, match="username or password"):
        get(bad, fresh)


def test_cookie_session_relogin_once_and_logout(fresh: Sandbox) -> None:
    c = fresh.credentials()
    cfg = {
        "base_url": fresh.url,
        "auth_method": "cookie",
        "username": c["username"],
        "password": c["password"],
        "tenant": c["tenant"],
        "branch": c["branch"],
    }
    a = auth.build_authenticator(cfg)
    assert get(a, fresh).status_code == 200
    assert fresh.stats()["active_sessions"] == 1
    fresh.admin("POST", "revoke", {"what": "sessions"})
    assert get(a, fresh).status_code == 200
    assert fresh.stats()["logins"] == 2
    a.sign_out()
    a.sign_out()  # idempotent
    assert fresh.stats()["active_sessions"] == 0
    bad = auth.build_authenticator({**cfg, "password": "sbxpw-wrong-one"})
    with pytest.raises(AuthError, match="username or password"):
        get(bad, fresh)


def test_login_limit_explains_seats(sandbox_factory: Callable[..., Sandbox]) -> None:
    box = sandbox_factory("--records", "5", "--api-seats", "1")
    c = box.credentials()
    cfg = {
        "base_url": box.url,
        "auth_method": "cookie",
        "username": "admin",
        "password": c["password"],
    }
    first = auth.build_authenticator(cfg)
    resp = get(first, box)
    assert resp.status_code == 200, resp.text
    second = auth.build_authenticator(cfg)
    with pytest.raises(AuthError, match=r"API Login Limit.*seat.*30 minutes"):
        get(second, box)
    first.sign_out()
    resp = get(second, box)
    assert resp.status_code == 200, resp.text
    second.sign_out()


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"base_url": "http://erp.example.com"}, "https://"),
        ({"base_url": "ftp://x"}, "not an http"),
        ({"client_id": "no-tenant"}, "GUID"),
        ({"client_secret": None}, "client_secret"),
        ({"initiate_oauth": "SOMETIMES"}, "initiate_oauth"),
        ({"auth_method": "cookie"}, "username"),
        ({"redirect_uri": "http://example.com/cb"}, "loopback"),
        ({"initiate_oauth": "OFF"}, "access_token"),
    ],
)
def test_bad_auth_config_is_one_clear_line(patch: dict[str, Any], match: str) -> None:
    cfg = {
        "base_url": "https://erp.example.com",
        "client_id": "G@Company",
        "client_secret": "s",
        "oauth_settings_location": "/tmp/x.json",
        **patch,
    }
    with pytest.raises(ConfigError, match=match) as info:
        auth.build_authenticator(cfg)
    assert "\n" not in str(info.value)


def test_redaction_masks_registered_secrets_and_patterns(caplog: pytest.LogCaptureFixture) -> None:
    redact.install()
    redact.register("sbxrt-registered-secret-1")
    log = logging.getLogger("tap_acumatica.test")
    with caplog.at_level(logging.INFO):
        log.info("token %s", "sbxrt-registered-secret-1")
        log.info("Authorization: Bearer abc.def-ghi and refresh_token=xyz123 password: hunter22")
        log.info("cookie .ASPXAUTH=sbxck-abcdef; ASP.NET_SessionId=sbxck-123456")
        log.info("callback /cb?code=sbxcd-abcdef&state=s")
        log.info("store postgresql+psycopg://tap:pg-Secret9@db.local:5432/meltano unreachable")
    text = caplog.text
    for secret in ("sbxrt-registered", "abc.def-ghi", "xyz123", "hunter22", "sbxck-", "sbxcd-"):
        assert secret not in text
    assert "pg-Secret9" not in text
    assert "postgresql+psycopg://tap:" in text  # the rest of the URL stays readable
    assert text.count(redact.MASK) >= 7


def test_getandrefresh_signs_in_during_a_run_only_when_interactive(
    fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc = str(tmp_path / "t.json")
    cfg = base_config(fresh, oauth_settings_location=loc)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    with pytest.raises(AuthError, match=r"not interactive.*--login"):
        get(auth.build_authenticator(cfg), fresh)

    def follow(request: codegrant.AuthorizationRequest, **kwargs: Any) -> str:
        resp = requests.get(request.url, allow_redirects=False, timeout=10)  # auto-approve
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.headers["Location"]).query)
        return codegrant.code_from_redirect(query, request.state)

    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    monkeypatch.setattr(codegrant, "obtain_code", follow)
    a = auth.build_authenticator(cfg)
    assert get(a, fresh).status_code == 200
    stored = TokenStore(loc).read()
    assert stored is not None
    assert stored.tokens.refresh_token
    a.sign_out()
    assert fresh.stats()["active_sessions"] == 0


def test_unreachable_token_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    cfg = {
        "base_url": f"http://127.0.0.1:{port}",
        "client_id": "G@Company",
        "client_secret": "sbxcs-unreachable",
        "initiate_oauth": "REFRESH",
        "refresh_token": "sbxrt-unreachable",
        "oauth_settings_location": str(tmp_path / "t"),
    }
    a = auth.build_authenticator(cfg)
    with pytest.raises(AuthError, match="cannot reach Acumatica's token endpoint"):
        a(requests.Request("GET", f"http://127.0.0.1:{port}/x").prepare())
    stored = TokenStore(tmp_path / "t").read()
    assert stored is not None
    assert stored.tokens.refresh_token == "sbxrt-unreachable"  # never sent: still the one to use


def test_a_new_seed_refresh_token_replaces_the_stored_chain(fresh: Sandbox, tmp_path: Path) -> None:
    old_chain = password_tokens(fresh)
    store = seed_store(tmp_path / "t.json", fresh, TokenSet(None, old_chain["refresh_token"]))
    new_seed = password_tokens(fresh)["refresh_token"]  # e.g. pasted into the config later
    cfg = base_config(fresh, oauth_settings_location=str(store.path), refresh_token=new_seed)
    a = auth.build_authenticator(cfg)
    assert get(a, fresh).status_code == 200
    a.sign_out()
    assert refresh_counts(fresh)["consumed"] == 1
    stored = store.read()
    assert stored is not None
    assert stored.tokens.refresh_token not in (new_seed, old_chain["refresh_token"])
    # The same seed on the next run is known: the store's successor is used, not the spent seed.
    b = auth.build_authenticator(cfg)
    fresh.admin("POST", "revoke", {"what": "access_tokens"})
    assert get(b, fresh).status_code == 200
    b.sign_out()
    assert refresh_counts(fresh)["rejected"] == 0


def test_password_grant_signs_in_again_when_the_refresh_is_refused(fresh: Sandbox) -> None:
    c = fresh.credentials()
    cfg = base_config(
        fresh, auth_method="oauth_password", username=c["username"], password=c["password"]
    )
    a = auth.build_authenticator(cfg)
    assert get(a, fresh).status_code == 200
    fresh.admin("POST", "revoke", {"what": "all"})  # tokens and session gone
    assert get(a, fresh).status_code == 200
    grants = fresh.stats()
    assert grants["refresh_tokens"]["rejected"] == 1
    a.sign_out()
    assert fresh.stats()["active_sessions"] == 0


def test_a_storm_of_rejected_fresh_credentials_stops(fresh: Sandbox) -> None:
    c = fresh.credentials()
    cfg = {
        "base_url": fresh.url,
        "auth_method": "cookie",
        "username": "admin",
        "password": c["password"],
    }
    a = auth.build_authenticator(cfg)
    a.RENEWAL_WINDOW_SECONDS = 600  # type: ignore[misc]

    def reject_once() -> None:
        request = requests.Request("GET", f"{fresh.url}{ENTITY}").prepare()
        a(request)
        fresh.admin("POST", "revoke", {"what": "sessions"})
        a.handle_unauthorized(request)

    for _ in range(a.MAX_RENEWALS):
        reject_once()
    with pytest.raises(AuthError, match="fresh credentials"):
        reject_once()
    a.sign_out()
    assert fresh.stats()["active_sessions"] == 0
