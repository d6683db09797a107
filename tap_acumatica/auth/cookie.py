"""A cookie session from ``POST /entity/auth/login`` (docs/acumatica-api.md §6)."""

from __future__ import annotations

import logging

import requests

from tap_acumatica import redact
from tap_acumatica.auth.base import AcumaticaAuthenticator
from tap_acumatica.errors import AuthError, LoginLimitError
from tap_acumatica.http.messages import auth_error_text, is_login_limit

logger = logging.getLogger("tap_acumatica.auth")


class CookieAuthenticator(AcumaticaAuthenticator):
    """Cookie session from ``POST /entity/auth/login`` (docs/acumatica-api.md §6)."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        tenant: str | None,
        branch: str | None,
        locale: str | None,
        user_agent: str | None,
    ) -> None:
        """Sign in lazily, on the first request; no network I/O here."""
        super().__init__(base_url=base_url, user_agent=user_agent)
        body = {"name": username, "password": password, "tenant": tenant, "branch": branch}
        body["locale"] = locale
        self._body = {k: v for k, v in body.items() if v}
        self._cookie: str | None = None

    def _credential(self) -> str:
        with self._lock:
            if self._cookie is None:
                self._login()
            assert self._cookie is not None
            return self._cookie

    def _apply(self, r: requests.PreparedRequest, credential: str) -> None:
        r.headers["Cookie"] = credential

    def _used_credential(self, r: requests.PreparedRequest) -> str | None:
        return r.headers.get("Cookie")

    def _current(self) -> str | None:
        return self._cookie

    def _renew(self, stale: str | None) -> None:
        logger.info("Cookie session expired (401); signing in again.")
        self._http.cookies.clear()
        self._cookie = None
        self._login()

    def _login(self) -> None:
        try:
            resp = self._http.post(
                f"{self.base_url}/entity/auth/login", json=self._body, timeout=(10, 60)
            )
        except requests.RequestException as exc:
            msg = f"cannot reach Acumatica to sign in at {self.base_url}: {type(exc).__name__}"
            raise AuthError(msg) from None
        if is_login_limit(resp.status_code, resp.text):
            raise LoginLimitError
        if resp.status_code >= 400:
            if "Invalid credentials" in resp.text:
                msg = "Acumatica rejected the username or password (Invalid credentials)"
                raise AuthError(msg)
            msg = f"Acumatica sign-in failed: {auth_error_text(resp)}"
            raise AuthError(msg)
        jar = self._http.cookies
        redact.register(*(c.value for c in jar))
        self._cookie = "; ".join(f"{c.name}={c.value}" for c in jar if c.value is not None)
        if not self._cookie:
            msg = "Acumatica sign-in returned no session cookie"
            raise AuthError(msg)
        logger.info("Signed in to Acumatica with a cookie session.")

    def _sign_out(self) -> None:
        if self._cookie is None:
            return
        cookie, self._cookie = self._cookie, None
        self._post_logout({"Cookie": cookie})
        self._http.cookies.clear()
