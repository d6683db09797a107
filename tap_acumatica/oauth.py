"""OAuth 2.0 authenticators: authorization code (``oauth_code``) and password (``oauth_password``).

Acumatica rotates the refresh token on every refresh (API-FACTS §7), so the rules are:
the token store's lock is held from reading the store through the token POST to writing it;
the store is re-read after taking the lock (another process may have rotated already, or left
a valid access token to share); the new refresh token is on disk before the new access token is
used; the token POST is never retried blindly (a read timeout re-reads the store first).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from tap_acumatica import codegrant, redact
from tap_acumatica.auth import (
    DEFAULT_SCOPE,
    AcumaticaAuthenticator,
    LoginLimitError,
    error_text,
    is_login_limit,
    tenant_of,
)
from tap_acumatica.errors import AuthError, ConfigError
from tap_acumatica.tokenstore import (
    StoredTokens,
    TokenSet,
    TokenStore,
    fingerprint,
    resolve_location,
    sha256,
)

logger = logging.getLogger("tap_acumatica.auth")

MARGIN_SECONDS = 60.0  # refresh this long before the access token expires
TOKEN_TIMEOUT = (10.0, 60.0)
RESEND_PAUSE_SECONDS = 1.0


def relogin_hint(store: TokenStore | None) -> str:
    """How to re-authorise, for error messages."""
    where = f" (tokens are kept in {store.describe})" if store else ""
    return (
        "run `tap-acumatica --login --config …` (or `meltano invoke tap-acumatica --login`) "
        f"again{where}"
    )


class _OAuthError(Exception):
    def __init__(self, error: str, text: str) -> None:
        super().__init__(text)
        self.error = error


class _AmbiguousError(Exception):
    """The token POST was sent but no usable answer came back: the server may have rotated."""

    def __init__(self, detail: str = "no answer") -> None:
        super().__init__(detail)
        self.detail = detail


class OAuthAuthenticator(AcumaticaAuthenticator):
    """Bearer tokens from Acumatica's token endpoint, shared through the token store."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        scope: str = DEFAULT_SCOPE,
        store: TokenStore | None = None,
        seed: TokenSet | None = None,
        tenant: str = "",
        user_agent: str | None = None,
    ) -> None:
        super().__init__(base_url=base_url, user_agent=user_agent)
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.store = store
        self.seed = seed or TokenSet()
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

    def _used_credential(self, r: requests.PreparedRequest) -> str | None:
        value = r.headers.get("Authorization") or ""
        return value[7:] if value.startswith("Bearer ") else None

    def _current(self) -> str | None:
        return self._tokens.access_token if self._tokens else None

    def _sign_out(self) -> None:
        if not self._seat or not self._tokens or not self._tokens.access_token:
            return
        self._seat = False
        # API-FACTS §6/§7: an OAuth session holds an API seat until logout with the bearer.
        self._post_logout({"Authorization": f"Bearer {self._tokens.access_token}"})

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
        except _AmbiguousError as exc:
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
        except _OAuthError as exc:
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
        why = "the refresh token was rejected (invalid_grant: expired, revoked or already used)"
        if lost or stored.pending_refresh_sha256 == sha256(stored.tokens.refresh_token):
            why += "; a refresh was interrupted before its answer was saved"
        raise AuthError(f"{why}; {relogin_hint(self.store)}")

    def _accept(
        self, body: Mapping[str, Any], stored: StoredTokens, fallback_rt: str | None
    ) -> None:
        tokens = parse_token_response(body, fallback_rt=fallback_rt)
        self._save(StoredTokens(tokens, self.fingerprint, stored.seed_sha256))
        self._adopt(tokens)  # only now: the new refresh token is on disk first
        self._seat = True  # Acumatica opens an API session per grant (API-FACTS §6, §7)
        logger.info("Obtained a new OAuth access token (expires in %s s).", body.get("expires_in"))

    # -- the token endpoint --------------------------------------------------------------
    def _token_post(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        data = {**form, "client_id": self.client_id, "client_secret": self._client_secret}
        url = f"{self.base_url}/identity/connect/token"
        try:
            resp = self._http.post(url, data=data, timeout=TOKEN_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            if not _never_sent(exc):
                raise _AmbiguousError(f"no answer: {_reason(exc)}") from None
            msg = f"cannot reach Acumatica's token endpoint {url}: {_reason(exc)}"
            raise AuthError(msg) from None
        if is_login_limit(resp):
            raise LoginLimitError
        if resp.status_code >= 500 or resp.status_code == 429:
            # A gateway error or throttling says nothing about whether the refresh happened.
            raise _AmbiguousError(error_text(resp))
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
            raise AuthError(msg)
        raise _OAuthError(error or f"http_{resp.status_code}", f"token request: {error_text(resp)}")


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
    """A TokenSet with an absolute expiry from a token endpoint answer (API-FACTS §7)."""
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


class CodeGrantAuthenticator(OAuthAuthenticator):
    """``oauth_code``: authorization code + PKCE, then rotating refresh (initiate_oauth)."""

    def __init__(
        self,
        *,
        initiate_oauth: str = "GETANDREFRESH",
        redirect_uri: str | None = None,
        login_timeout: float = 300.0,
        open_browser: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.initiate = initiate_oauth.upper()
        self.redirect_uri = redirect_uri
        self.login_timeout = login_timeout
        self.open_browser = open_browser

    def _load(self) -> StoredTokens:
        if self.initiate == "OFF":  # the seed says: use the access token as given
            return StoredTokens(self.seed, self.fingerprint)
        return super()._load()

    def _renew(self, stale: str | None) -> None:
        try:
            super()._renew(stale)
        except _NeedsSignInError:
            pass
        else:
            return
        # The browser part runs outside the store lock: a person may take minutes.
        if not (sys.stdin.isatty() or sys.stderr.isatty()):
            msg = "no usable OAuth token and this run is not interactive; " + relogin_hint(
                self.store
            )
            raise AuthError(msg)
        self.login()

    def _obtain(self, stored: StoredTokens) -> None:
        if self.initiate == "OFF":
            msg = (
                "the access_token was rejected or has expired, and initiate_oauth is OFF so the "
                "tap does not renew it; give a new access_token, or use GETANDREFRESH or REFRESH"
            )
            raise AuthError(msg)
        if stored.tokens.refresh_token:
            self._refresh(stored)
            return
        if self.initiate == "REFRESH":
            msg = (
                "initiate_oauth is REFRESH (never interactive) but there is no refresh token; "
                + relogin_hint(self.store)
                + ", or set refresh_token"
            )
            raise AuthError(msg)
        raise _NeedsSignInError

    def login(self, stdin: Any = None) -> None:
        """Run the interactive code grant and store the tokens (``--login``)."""
        if not self.redirect_uri:
            msg = "redirect_uri is required to sign in (the URI registered on the app)"
            raise ConfigError(msg)
        if self.store is None:
            msg = "nowhere to keep the OAuth tokens: set oauth_settings_location"
            raise ConfigError(msg)
        with self._lock:
            with self.store.lock():
                self._load()  # refuse early when the store belongs to another client
            request = codegrant.authorization_request(
                base_url=self.base_url,
                client_id=self.client_id,
                redirect_uri=self.redirect_uri,
                scope=self.scope,
            )
            if stdin is not None:
                code = codegrant.read_pasted_url(request, self.login_timeout, stdin)
            else:
                code = codegrant.obtain_code(
                    request, timeout=self.login_timeout, browser=self.open_browser
                )
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": request.redirect_uri,
                "code_verifier": request.code_verifier,
            }
            try:
                body = self._token_post(form)
            except _AmbiguousError as exc:
                msg = f"Acumatica's token endpoint failed ({exc.detail}); run --login again"
                raise AuthError(msg) from None
            except _OAuthError as exc:
                raise AuthError(f"exchanging the authorization code failed: {exc}") from None
            fresh = StoredTokens(TokenSet(), self.fingerprint, sha256(self.seed.refresh_token))
            with self.store.lock():
                self._accept(body, fresh, None)
        codegrant.say(f"Signed in. OAuth tokens saved to {self.store.describe}.")


class _NeedsSignInError(Exception):
    """GETANDREFRESH found no usable token: the browser sign-in must run."""


class PasswordGrantAuthenticator(OAuthAuthenticator):
    """``oauth_password``: resource-owner password grant (API-FACTS §7), refresh when possible."""

    def __init__(self, *, username: str, password: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._username = username
        self._password = password
        redact.register(password)

    def _obtain(self, stored: StoredTokens) -> None:
        if stored.tokens.refresh_token:
            with contextlib.suppress(AuthError):
                self._refresh(stored)
                return
            logger.info("Refresh failed; signing in again with the password grant.")
        form = {
            "grant_type": "password",
            "username": self._username,
            "password": self._password,
            "scope": self.scope,
        }
        try:
            body = self._token_post(form)
        except _AmbiguousError as exc:
            msg = f"Acumatica's token endpoint failed the password grant ({exc.detail})"
            raise AuthError(msg) from None
        except _OAuthError as exc:
            if exc.error == "invalid_grant":
                msg = "Acumatica rejected the username or password (invalid_grant)"
                raise AuthError(msg) from None
            raise AuthError(str(exc)) from None
        self._accept(body, stored, fallback_rt=None)


def build_oauth(
    config: Mapping[str, Any], *, config_files: Sequence[str], user_agent: str | None
) -> OAuthAuthenticator:
    """The OAuth authenticator for ``config`` (validated by auth.validate_auth_config)."""
    method = config.get("auth_method") or "oauth_code"
    common: dict[str, Any] = {
        "base_url": str(config["base_url"]).strip(),
        "client_id": str(config["client_id"]),
        "client_secret": str(config["client_secret"]),
        "scope": str(config.get("scope") or DEFAULT_SCOPE),
        # The tenant is part of client_id (API-FACTS §7); the `tenant` setting serves cookie
        # sign-in and must not change which tokens the store accepts.
        "tenant": tenant_of({"client_id": config["client_id"]}),
        "user_agent": user_agent,
        "seed": TokenSet(
            access_token=config.get("access_token") or None,
            refresh_token=config.get("refresh_token") or None,
        ),
    }
    location = config.get("oauth_settings_location") or None
    if method == "oauth_password":
        # Issue 4 §6: the password grant keeps tokens on disk only when asked to.
        store = (
            resolve_location(oauth_settings_location=location, config_files=())
            if location
            else None
        )
        return PasswordGrantAuthenticator(
            username=str(config["username"]),
            password=str(config["password"]),
            store=store,
            **common,
        )
    initiate = str(config.get("initiate_oauth") or "GETANDREFRESH").upper()
    if initiate != "OFF" and "offline_access" not in str(common["scope"]).split():
        # API-FACTS §7: no offline_access, no refresh token: every hour needs a person.
        logger.warning("scope lacks offline_access: no refresh token, so no unattended renewal.")
    store = None
    if initiate != "OFF":
        store = resolve_location(oauth_settings_location=location, config_files=config_files)
        if store is None:
            msg = (
                "nowhere durable to keep rotating OAuth tokens: set oauth_settings_location "
                "(or run the tap with exactly one --config file)"
            )
            raise ConfigError(msg)
    return CodeGrantAuthenticator(
        initiate_oauth=initiate,
        redirect_uri=config.get("redirect_uri") or None,
        login_timeout=float(config.get("login_timeout_seconds") or 300),
        open_browser=bool(config.get("open_browser", True)),
        store=store,
        **common,
    )
