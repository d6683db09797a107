"""The OAuth grants: authorization code with PKCE (``oauth_code``), password (``oauth_password``).

Both build on ``auth.oauth.OAuthAuthenticator`` (store, rotation, token endpoint);
``initiate_oauth`` (GETANDREFRESH, REFRESH, OFF) follows the commercial drivers' InitiateOAuth
(docs/acumatica-api.md §7).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from tap_acumatica import redact
from tap_acumatica.auth import browser
from tap_acumatica.auth.base import SEAT_LEFT_OPEN, AuthCall
from tap_acumatica.auth.oauth import (
    AmbiguousAnswerError,
    OAuthAnswerError,
    OAuthAuthenticator,
    relogin_hint,
)
from tap_acumatica.auth.tokenstore import StoredTokens, TokenSet, sha256
from tap_acumatica.errors import (
    AuthError,
    ConfigError,
    CredentialsRejectedError,
    LoginLimitError,
)

logger = logging.getLogger("tap_acumatica.auth")

#: docs/acumatica-api.md §6, §7: every grant opens an API session, freed only by its sign-out.
PASSWORD_GRANT = AuthCall("password grant", SEAT_LEFT_OPEN)
PASSWORD_REFRESH = AuthCall(
    "token refresh",
    "the refresh token it rotates is lost (the next run signs in with the password again) and "
    + SEAT_LEFT_OPEN,
)


class CodeGrantAuthenticator(OAuthAuthenticator):
    """``oauth_code``: authorization code + PKCE, then rotating refresh (initiate_oauth)."""

    def __init__(
        self,
        *,
        initiate_oauth: str,
        redirect_uri: str | None,
        login_timeout: float,
        open_browser: bool,
        **kwargs: Any,
    ) -> None:
        """Settings of the grant; the rest go to :class:`OAuthAuthenticator`."""
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
            request = browser.authorization_request(
                base_url=self.base_url,
                client_id=self.client_id,
                redirect_uri=self.redirect_uri,
                scope=self.scope,
            )
            if stdin is not None:
                code = browser.read_pasted_url(request, self.login_timeout, stdin)
            else:
                code = browser.obtain_code(
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
        browser.say(f"Signed in. OAuth tokens saved to {self.store.describe}.")


class _NeedsSignInError(Exception):
    """GETANDREFRESH found no usable token: the browser sign-in must run."""


class PasswordGrantAuthenticator(OAuthAuthenticator):
    """``oauth_password``: the password grant (docs/acumatica-api.md §7), then refreshes."""

    REFRESH_CALL = PASSWORD_REFRESH

    def __init__(self, *, username: str, password: str, **kwargs: Any) -> None:
        """The user's credentials; the rest go to :class:`OAuthAuthenticator`."""
        super().__init__(**kwargs)
        self._username = username
        self._password = password
        redact.register(password)

    def _obtain(self, stored: StoredTokens) -> None:
        self._check_rejected()
        if stored.tokens.refresh_token:
            try:
                self._refresh(stored)
            except LoginLimitError:
                raise  # a password grant would be refused the same way
            except AuthError:
                logger.info("Refresh failed; signing in again with the password grant.")
            else:
                return
        form = {
            "grant_type": "password",
            "username": self._username,
            "password": self._password,
            "scope": self.scope,
        }
        with self._auth_call(PASSWORD_GRANT):  # a signal waits for it (Connection)
            try:
                body = self._token_post(form)
            except AmbiguousAnswerError as exc:
                msg = f"Acumatica's token endpoint failed the password grant ({exc.detail})"
                raise AuthError(msg) from None
            except CredentialsRejectedError as exc:
                raise self._remember(exc) from None
            except OAuthAnswerError as exc:
                # docs/acumatica-api.md §6: never sent again (wrong passwords lock the user out).
                msg = str(exc)
                if exc.error == "invalid_grant":
                    msg = "Acumatica rejected the username or password (invalid_grant)"
                raise self._remember(CredentialsRejectedError(msg)) from None
            self._accept(body, stored, fallback_rt=None)
