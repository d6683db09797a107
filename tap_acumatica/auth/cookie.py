"""A cookie session from ``POST /entity/auth/login`` (docs/acumatica-api.md §6)."""

from __future__ import annotations

import logging

import requests

from tap_acumatica.auth.base import AUTH_TIMEOUT, SEAT_LEFT_OPEN, AcumaticaAuthenticator, AuthCall
from tap_acumatica.errors import AuthError, CredentialsRejectedError, LoginLimitError
from tap_acumatica.http.messages import auth_error_text, is_login_limit

logger = logging.getLogger("tap_acumatica.auth")

#: docs/acumatica-api.md §6: each login is a session holding an API seat until its logout.
SIGN_IN = AuthCall("sign-in", SEAT_LEFT_OPEN)


class CookieAuthenticator(AcumaticaAuthenticator):
    """Cookie sessions from ``POST /entity/auth/login``, one per lane (docs/acumatica-api.md §6)."""

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
        sessions: int = 1,
    ) -> None:
        """Sign in lazily, on the first request of each lane; no network I/O here."""
        super().__init__(base_url=base_url, user_agent=user_agent, sessions=sessions)
        body = {"name": username, "password": password, "tenant": tenant, "branch": branch}
        body["locale"] = locale
        self._body = {k: v for k, v in body.items() if v}

    def _credential(self) -> str:
        cookie = self.lanes.cookie()
        if cookie is not None:
            return cookie
        with self._lock:  # one sign-in at a time: a wrong password fails once
            return self._open()

    def _open(self) -> str:
        """The calling thread's session cookie, signing its lane in (lock held)."""
        while True:
            lane = self.lanes.current()
            cookie = self.lanes.cookies.get(lane)
            if cookie is not None:
                return cookie
            self._refuse_if_closing()
            try:
                self._login(lane)
            except LoginLimitError:
                if not self.lanes.drop(lane):
                    raise  # no session open yet: wait for a seat (login_limit_wait_seconds)

    def _apply(self, r: requests.PreparedRequest, credential: str) -> None:
        r.headers["Cookie"] = credential

    def _used_credential(self, r: requests.PreparedRequest) -> str | None:
        return r.headers.get("Cookie")

    def _current(self) -> str | None:
        return self.lanes.cookie()

    def _renew(self, stale: str | None) -> None:
        lane = self.lanes.current()
        if stale is not None and self.lanes.cookies.get(lane) == stale:
            self.lanes.cookies.pop(lane, None)
            # docs/acumatica-api.md §6: a 401 does not prove the session has ended; one that
            # lives on holds its API seat for 10-60 minutes, so it is signed out first.
            logger.info("Cookie session refused (401); signing it out and signing in again.")
            try:
                self._post_logout({"Cookie": stale})
            except requests.RequestException as exc:
                logger.warning("Sign-out of the refused session failed: %s", type(exc).__name__)
        self._open()

    def _login(self, lane: int) -> None:
        self._check_rejected()
        with self._auth_call(SIGN_IN):  # a signal waits for it (Connection)
            self._kept(lane, self._post_login())

    def _post_login(self) -> requests.Response:
        self._http.cookies.clear()
        try:
            return self._http.post(
                f"{self.base_url}/entity/auth/login", json=self._body, timeout=AUTH_TIMEOUT
            )
        except requests.RequestException as exc:
            msg = f"cannot reach Acumatica to sign in at {self.base_url}: {type(exc).__name__}"
            raise AuthError(msg) from None
        finally:
            self._http.cookies.clear()

    def _kept(self, lane: int, resp: requests.Response) -> None:
        """Keep the session a sign-in answer opened for ``lane``, or raise why there is none."""
        if is_login_limit(resp.status_code, resp.text):
            raise LoginLimitError
        if resp.status_code >= 400:
            # docs/acumatica-api.md §6: never sent again (wrong passwords lock the user out).
            if "Invalid credentials" in resp.text:
                msg = "Acumatica rejected the username or password (Invalid credentials)"
            else:
                msg = f"Acumatica sign-in failed: {auth_error_text(resp)}"
            raise self._remember(CredentialsRejectedError(msg))
        if not self.lanes.keep(lane, resp.cookies, opened=True):
            msg = "Acumatica sign-in returned no session cookie"
            raise AuthError(msg)
        if lane == 0:
            logger.info("Signed in to Acumatica with a cookie session.")
        else:
            logger.info("Opened cookie session %d of %d.", lane + 1, self.lanes.size)

    def _sign_out(self) -> None:
        for cookie in self.lanes.take_all():
            self._post_logout({"Cookie": cookie})
