"""The OAuth grants: authorization code with PKCE (``oauth_code``), password (``oauth_password``).

Both build on ``tap_acumatica.oauth.OAuthAuthenticator`` (store, rotation, token endpoint);
``initiate_oauth`` (GETANDREFRESH, REFRESH, OFF) follows the commercial driver's
InitiateOAuth (see ../shared/seed).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tap_acumatica import codegrant, redact
from tap_acumatica.auth import DEFAULT_SCOPE, tenant_of
from tap_acumatica.errors import AuthError, ConfigError
from tap_acumatica.oauth import (
    AmbiguousAnswerError,
    OAuthAnswerError,
    OAuthAuthenticator,
    relogin_hint,
)
from tap_acumatica.tokenstore import (
    StoredTokens,
    TokenSet,
    resolve_location,
    sha256,
)

logger = logging.getLogger("tap_acumatica.auth")


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
            except AmbiguousAnswerError as exc:
                msg = f"Acumatica's token endpoint failed ({exc.detail}); run --login again"
                raise AuthError(msg) from None
            except OAuthAnswerError as exc:
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
        except AmbiguousAnswerError as exc:
            msg = f"Acumatica's token endpoint failed the password grant ({exc.detail})"
            raise AuthError(msg) from None
        except OAuthAnswerError as exc:
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
