"""The OAuth 2.0 authenticator base: bearer tokens, the token store, rotation, the token endpoint.

Acumatica rotates the refresh token on every refresh (docs/acumatica-api.md §7), so the rules are:
the token store's lock is held from reading the store through the token POST to writing it;
the store is re-read after taking the lock (another process may have rotated already, or left
a valid access token to share); the new refresh token is on disk before the new access token is
used; the token POST is never retried blindly (a read timeout re-reads the store first).
The grants themselves (authorization code, password) are in ``auth.grants``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from tap_acumatica import redact
from tap_acumatica.auth.base import SEAT_LEFT_OPEN, AcumaticaAuthenticator, AuthCall
from tap_acumatica.auth.expiry import rejected_chain_text
from tap_acumatica.auth.sessions import CONCURRENT_SCOPE
from tap_acumatica.auth.tokenstore import (
    StoredTokens,
    TokenSet,
    TokenStore,
    fingerprint,
    sha256,
)
from tap_acumatica.errors import AuthError, CredentialsRejectedError, LoginLimitError
from tap_acumatica.http.messages import auth_error_text, is_login_limit

logger = logging.getLogger("tap_acumatica.auth")

MARGIN_SECONDS = 60.0  # refresh this long before the access token expires
TOKEN_TIMEOUT = (10.0, 60.0)
RESEND_PAUSE_SECONDS = 1.0
#: docs/acumatica-api.md §7: a refresh rotates the refresh token; an answer never saved loses it.
TOKEN_REFRESH = AuthCall(
    "token refresh",
    "the refresh token it rotates is lost (the next run fails with invalid_grant until the tap "
    "is authorised again) and " + SEAT_LEFT_OPEN,
)


def relogin_hint(store: TokenStore | None) -> str:
    """How to re-authorise, for error messages."""
    where = f" (tokens are kept in {store.describe})" if store else ""
    return (
        "run `tap-acumatica --login --config …` (or `meltano invoke tap-acumatica --login`) "
        f"again{where}"
    )


class OAuthAnswerError(Exception):
    """The token endpoint answered with an OAuth error (``error`` is e.g. invalid_grant)."""

    def __init__(self, error: str, text: str) -> None:
        super().__init__(text)
        self.error = error


class AmbiguousAnswerError(Exception):
    """The token POST was sent but no usable answer came back: the server may have rotated."""

    def __init__(self, detail: str = "no answer") -> None:
        super().__init__(detail)
        self.detail = detail


class OAuthAuthenticator(AcumaticaAuthenticator):
    """Bearer tokens from Acumatica's token endpoint, shared through the token store."""

    REFRESH_CALL = TOKEN_REFRESH

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        store: TokenStore | None,
        seed: TokenSet,
        tenant: str,
        user_agent: str | None,
        sessions: int = 1,
    ) -> None:
        """Tokens come from ``store`` (or ``seed``); no network I/O here.

        ``sessions`` > 1 needs scope ``api:concurrent_access`` (docs/acumatica-api.md §6):
        each lane then keeps its own session cookies next to the shared bearer token.
        """
        #: One cookie jar per lane next to the bearer (else the grant is one session).
        self.concurrent = CONCURRENT_SCOPE in scope.split()
        super().__init__(
            base_url=base_url, user_agent=user_agent, sessions=sessions if self.concurrent else 1
        )
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.store = store
        self.seed = seed
        self.fingerprint = fingerprint(client_id, self.base_url, tenant)
        self._meta = {"client_id": client_id, "base_url": self.base_url}
        self._tokens: TokenSet | None = None
        self._seat = False  # a token was issued or used in this process: sign out at the end
        redact.register(client_secret, self.seed.access_token, self.seed.refresh_token)

    # -- requests ------------------------------------------------------------------------
    def _credential(self) -> str:
        with self._lock:
            t = self._tokens
            if t is None or not t.access_valid(MARGIN_SECONDS):
                self._renew(stale=t.access_token if t else None)
                t = self._tokens
            assert t is not None
            assert t.access_token is not None
            self._seat = True
            return t.access_token

    def _apply(self, r: requests.PreparedRequest, credential: str) -> None:
        r.headers["Authorization"] = f"Bearer {credential}"
        if self.concurrent:
            # docs/acumatica-api.md §6: a bearer call without the session cookie opens a new
            # session; once the lane has one, every call of the lane sends its cookies.
            cookie = self.lanes.cookie_or_open(self._refuse_if_closing)
            if cookie is not None:
                r.headers["Cookie"] = cookie

    def answered(self, r: requests.PreparedRequest, response: requests.Response | None) -> bool:
        """Keep a lane's session cookies; give up a lane the licence refused (resend)."""
        if not self.concurrent:
            return False
        lane = self.lanes.settle(response.cookies if response is not None else None)
        refused = (
            lane is not None
            and response is not None
            and response.status_code >= 400
            and is_login_limit(response.status_code, response.text)
        )
        return refused and lane is not None and self.lanes.drop(lane)

    def _used_credential(self, r: requests.PreparedRequest) -> str | None:
        value = r.headers.get("Authorization") or ""
        return value[7:] if value.startswith("Bearer ") else None

    def _current(self) -> str | None:
        return self._tokens.access_token if self._tokens else None

    def _sign_out(self) -> None:
        if not self._seat or not self._tokens or not self._tokens.access_token:
            return
        self._seat = False
        bearer = {"Authorization": f"Bearer {self._tokens.access_token}"}
        if self.concurrent:
            # docs/acumatica-api.md §6: each api:concurrent_access session is signed out with
            # the bearer and its own cookies.
            for cookie in self.lanes.take_all():
                self._post_logout({**bearer, "Cookie": cookie})
            return
        # docs/acumatica-api.md §6/§7: an OAuth session holds an API seat until logout with the
        # bearer.
        self._post_logout(bearer)

    # -- the store -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if self.store is None:
                yield
            else:
                with self.store.lock():
                    yield

    def _load(self) -> StoredTokens:
        """The freshest tokens: the store's, unless the config's seed is new to it."""
        if self.store is None and self._tokens is not None:
            return StoredTokens(self._tokens, self.fingerprint)  # memory is the only store
        stored = self.store.read() if self.store else None
        if stored and stored.fingerprint and stored.fingerprint != self.fingerprint:
            assert self.store is not None
            msg = (
                f"the OAuth tokens in {self.store.describe} were issued to another client_id or "
                "instance; point oauth_settings_location elsewhere, or delete them and "
                + relogin_hint(None)
            )
            raise AuthError(msg)
        seed_rt = self.seed.refresh_token
        seed_hash = sha256(seed_rt)
        if stored is None:
            return StoredTokens(self.seed, self.fingerprint, seed_hash)
        if seed_rt and seed_hash not in (stored.seed_sha256, sha256(stored.tokens.refresh_token)):
            logger.info("The refresh_token setting is new; it replaces the stored token chain.")
            return StoredTokens(self.seed, self.fingerprint, seed_hash)
        return stored

    def _save(self, stored: StoredTokens) -> None:
        if self.store is not None:
            self.store.write(stored, meta=self._meta)

    def _adopt(self, tokens: TokenSet) -> None:
        redact.register(tokens.access_token, tokens.refresh_token)
        self._tokens = tokens

    # -- renewal -------------------------------------------------------------------------
    def _renew(self, stale: str | None) -> None:
        with self._locked():
            stored = self._load()
            t = stored.tokens
            if t.access_token and t.access_token != stale and t.access_valid(MARGIN_SECONDS):
                self._adopt(t)  # shared by another process, or still good
                return
            with self._auth_call(self.REFRESH_CALL):  # a signal waits for it (Connection)
                self._obtain(stored)

    def _obtain(self, stored: StoredTokens) -> None:
        raise NotImplementedError

    def _refresh(self, stored: StoredTokens, *, second_try: bool = False) -> None:
        """Spend the stored refresh token; persist the rotated pair before using it."""
        rt = stored.tokens.refresh_token
        assert rt is not None
        marked = StoredTokens(stored.tokens, self.fingerprint, stored.seed_sha256, sha256(rt))
        self._save(marked)  # a run killed mid-refresh leaves this mark for a clearer error
        try:
            body = self._token_post({"grant_type": "refresh_token", "refresh_token": rt})
        except AmbiguousAnswerError as exc:
            again = self.store.read() if self.store else None
            if again and again.tokens.refresh_token not in (None, rt):
                self._continue_with(again)
                return
            if second_try:
                msg = (
                    f"Acumatica's token endpoint failed twice ({exc.detail}); the refresh token "
                    "may have been spent; " + relogin_hint(self.store)
                )
                raise AuthError(msg) from None
            # Nobody else holds a newer token (we hold the lock): resend once on a new connection.
            logger.warning("Token refresh got %s; store re-read, resending once.", exc.detail)
            time.sleep(RESEND_PAUSE_SECONDS)
            self._refresh(stored, second_try=True)
            return
        except OAuthAnswerError as exc:
            again = self.store.read() if self.store else None
            newer = again is not None and again.tokens.refresh_token not in (None, rt)
            if not newer and not second_try:
                self._save(stored)  # a definite answer, nothing rotated: drop the in-flight mark
            if exc.error != "invalid_grant":
                raise AuthError(str(exc)) from None
            if again is not None and newer and not second_try:
                logger.info("Refresh token was already rotated; using the store's newer one.")
                self._continue_with(again, second_try=True)
                return
            self._dead_chain(stored, lost=second_try)
            return
        except AuthError:
            if not second_try:
                self._save(stored)  # not sent, or refused before rotating (API Login Limit)
            raise
        self._accept(body, stored, fallback_rt=rt)

    def _continue_with(self, stored: StoredTokens, *, second_try: bool = False) -> None:
        if stored.tokens.access_valid(MARGIN_SECONDS):
            self._adopt(stored.tokens)
        else:
            self._refresh(stored, second_try=second_try)

    def _dead_chain(self, stored: StoredTokens, *, lost: bool = False) -> None:
        why = rejected_chain_text(stored.tokens, time.time())
        if lost or stored.pending_refresh_sha256 == sha256(stored.tokens.refresh_token):
            why += "; a refresh was interrupted before its answer was saved"
        raise AuthError(f"{why}; {relogin_hint(self.store)}")

    def _accept(
        self, body: Mapping[str, Any], stored: StoredTokens, fallback_rt: str | None
    ) -> None:
        tokens = parse_token_response(body, fallback_rt=fallback_rt)
        # A grant (no fallback_rt) starts a chain, a refresh continues it: the chain's age
        # tells an expired refresh token from a revoked one (docs/acumatica-api.md §7).
        start = tokens.issued_at if fallback_rt is None else stored.tokens.signed_in_at
        tokens = dataclasses.replace(tokens, signed_in_at=start)
        self._save(StoredTokens(tokens, self.fingerprint, stored.seed_sha256))
        self._adopt(tokens)  # only now: the new refresh token is on disk first
        self._seat = True  # Acumatica opens an API session per grant (docs/acumatica-api.md §6, §7)
        logger.info("Obtained a new OAuth access token (expires in %s s).", body.get("expires_in"))

    # -- the token endpoint --------------------------------------------------------------
    def _token_post(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        data = {**form, "client_id": self.client_id, "client_secret": self._client_secret}
        url = f"{self.base_url}/identity/connect/token"
        try:
            resp = self._http.post(url, data=data, timeout=TOKEN_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            if not _never_sent(exc):
                raise AmbiguousAnswerError(f"no answer: {_reason(exc)}") from None
            msg = f"cannot reach Acumatica's token endpoint {url}: {_reason(exc)}"
            raise AuthError(msg) from None
        if is_login_limit(resp.status_code, resp.text):
            raise LoginLimitError
        if resp.status_code >= 500 or resp.status_code == 429:
            # A gateway error or throttling says nothing about whether the refresh happened.
            raise AmbiguousAnswerError(auth_error_text(resp))
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            redact.register(body.get("access_token"), body.get("refresh_token"))
            return body
        error = str(body.get("error")) if isinstance(body, dict) and body.get("error") else ""
        if error == "invalid_client":
            msg = (
                "Acumatica rejected client_id/client_secret (invalid_client); check both, and "
                "that the connected application's secret has not expired"
            )
            raise CredentialsRejectedError(msg)
        raise OAuthAnswerError(
            error or f"http_{resp.status_code}", f"token request: {auth_error_text(resp)}"
        )


def _reason(exc: BaseException) -> str:
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None) or inner or exc
    return type(reason).__name__


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (connect or TLS failure)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None)
    return isinstance(exc, requests.ConnectionError) and isinstance(
        reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError)
    )


def parse_token_response(body: Mapping[str, Any], fallback_rt: str | None = None) -> TokenSet:
    """A TokenSet with an absolute expiry from a token answer (docs/acumatica-api.md §7)."""
    try:
        expires_in = float(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        expires_in = 3600.0
    now = time.time()
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token") or fallback_rt,
        expires_at=now + expires_in,
        scope=body.get("scope"),
        issued_at=now,
    )
