"""Authentication for tap-acumatica: the shared authenticator base and cookie sessions.

One authenticator per tap run, shared by every stream and worker thread. It is built from
explicit values (``build_authenticator``), never reads a stream or ``self.config``
(SINGER-SDK-NOTES §1, STYLE §9.4), and makes its own login/token/logout calls on its own
``requests.Session``. OAuth lives in ``tap_acumatica.oauth``; the settings (AUTH_SETTINGS)
and their checks in ``tap_acumatica.authconfig``, re-exported here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tap_acumatica import authconfig, redact
from tap_acumatica.authconfig import (
    AUTH_METHODS,
    DEFAULT_SCOPE,
    INITIATE_OAUTH,
    SECRET_KEYS,
    tenant_of,
    validate_auth_config,
)
from tap_acumatica.errors import AuthError

if TYPE_CHECKING:
    from tap_acumatica.authconfig import AUTH_SETTINGS

logger = logging.getLogger("tap_acumatica.auth")

__all__ = [
    "AUTH_METHODS",
    "AUTH_SETTINGS",
    "DEFAULT_SCOPE",
    "INITIATE_OAUTH",
    "LOGIN_LIMIT_MESSAGE",
    "SECRET_KEYS",
    "AcumaticaAuthenticator",
    "CookieAuthenticator",
    "LoginLimitError",
    "build_authenticator",
    "sign_out_all",
    "signed_out_at_exit",
    "tenant_of",
    "validate_auth_config",
]

# API-FACTS §6: seats held by unclosed sessions are freed only after 10 minutes idle.
LOGIN_LIMIT_MESSAGE = (
    "Acumatica answered 'API Login Limit': every API-user seat of the license is held by an "
    "open session (cookie or OAuth); sessions that were not signed out are freed after 10 "
    "minutes idle, so wait, stop other API clients, or raise 'Maximum Number of Web Services "
    "API Users' (License Monitoring Console, SM604000)"
)


class LoginLimitError(AuthError):
    """Every API seat is taken ("API Login Limit"); a later retry may succeed."""

    def __init__(self, message: str = LOGIN_LIMIT_MESSAGE) -> None:
        super().__init__(message)


_LIVE: weakref.WeakSet[AcumaticaAuthenticator] = weakref.WeakSet()


def http_session(user_agent: str | None = None) -> requests.Session:
    """A session for auth calls: retries only failed connects, never a POST that was sent.

    A replayed refresh POST could spend a refresh token the server already rotated
    (SINGER-SDK-NOTES §1; API-FACTS §7).
    """
    session = requests.Session()
    retry = Retry(total=3, connect=3, read=0, status=0, other=0, redirect=0, backoff_factor=0.5)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if user_agent:
        session.headers["User-Agent"] = user_agent
    return session


def error_text(resp: requests.Response) -> str:
    """A short, redacted description of an error response."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [body.get(k) for k in ("error", "error_description", "exceptionMessage")]
        text = " ".join(str(p) for p in parts if p) or str(body.get("message") or "")
    else:
        text = " ".join(resp.text.split())[:200]
    return redact.redact(f"HTTP {resp.status_code} {text}".strip())


def is_login_limit(resp: requests.Response) -> bool:
    """True for Acumatica's "API Login Limit" answer (API-FACTS §6: 429 or 500, any body)."""
    return resp.status_code in (429, 500) and "API Login Limit" in resp.text


class AcumaticaAuthenticator(requests.auth.AuthBase):
    """Base: adds the credential to requests and renews it once per stale credential."""

    # Sporadic 401s (a revoked token, an expired session) renew the credential; a storm of
    # renewals means fresh credentials are refused too: stop rather than rotate forever.
    MAX_RENEWALS = 30
    RENEWAL_WINDOW_SECONDS = 60.0

    def __init__(self, *, base_url: str, user_agent: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._lock = threading.RLock()
        self._http = http_session(user_agent)
        self._renewals: list[float] = []
        self._quiesce_hooks: list[Callable[[], object]] = []
        self._closing = False
        _LIVE.add(self)

    # -- subclass hooks ------------------------------------------------------------------
    def _credential(self) -> str:
        """The current credential value (header), signing in lazily."""
        raise NotImplementedError

    def _apply(self, r: requests.PreparedRequest, credential: str) -> None:
        raise NotImplementedError

    def _used_credential(self, r: requests.PreparedRequest) -> str | None:
        raise NotImplementedError

    def _current(self) -> str | None:
        """The credential now in use, without signing in."""
        raise NotImplementedError

    def _renew(self, stale: str | None) -> None:
        """Get a new credential because ``stale`` was rejected (lock held)."""
        raise NotImplementedError

    def _sign_out(self) -> None:
        raise NotImplementedError

    # -- contract ------------------------------------------------------------------------
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Cookie or Bearer credential to ``r``."""
        self._refuse_if_closing()
        self._apply(r, self._credential())
        return r

    def before_sign_out(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` (e.g. an HTTP client's quiesce) before every sign-out."""
        self._quiesce_hooks.append(hook)

    def _refuse_if_closing(self) -> None:
        if self._closing:
            # A credential handed out now would reach Acumatica after the logout and open a
            # new session that holds an API seat for 10 minutes (API-FACTS §6).
            msg = "the tap is signing out; no new requests"
            raise AuthError(msg)

    def handle_unauthorized(self, r: requests.PreparedRequest) -> None:
        """After a 401 on ``r``: renew once per stale credential; AuthError when impossible."""
        self._refuse_if_closing()
        used = self._used_credential(r)
        with self._lock:
            current = self._current()
            if used is not None and current is not None and used != current:
                return  # another thread already renewed it: just resend
            now = time.monotonic()
            self._renewals = [t for t in self._renewals if now - t < self.RENEWAL_WINDOW_SECONDS]
            if len(self._renewals) >= self.MAX_RENEWALS:
                msg = (
                    f"Acumatica rejected {self.MAX_RENEWALS} fresh credentials within "
                    f"{self.RENEWAL_WINDOW_SECONDS:.0f} s (401 right after signing in again); "
                    "check the user's access rights and the API licence"
                )
                raise AuthError(msg)
            self._renewals.append(now)
            self._renew(stale=used)

    def sign_out(self) -> None:
        """Free the API seat (POST /entity/auth/logout); idempotent, never raises.

        First stop handing out credentials and let the registered clients finish the
        requests already on the wire (bounded), so none reaches Acumatica after the logout.
        Hooks run without the lock: a request in flight may be renewing its credential.
        """
        self._closing = True
        for hook in list(self._quiesce_hooks):
            hook()  # bounded; never raises (AcumaticaClient.quiesce)
        with self._lock:
            try:
                self._sign_out()
            except Exception as exc:
                logger.warning("Sign-out failed: %s", redact.redact(str(exc)))

    def _post_logout(self, headers: Mapping[str, str]) -> None:
        # API-FACTS §6: logout frees the seat; otherwise it stays taken for 10 minutes.
        resp = self._http.post(
            f"{self.base_url}/entity/auth/logout", headers=dict(headers), timeout=(10, 20)
        )
        if resp.status_code >= 400:
            logger.warning("Sign-out answered %s", error_text(resp))
        else:
            logger.info("Signed out of Acumatica (API seat freed).")


class CookieAuthenticator(AcumaticaAuthenticator):
    """Cookie session from ``POST /entity/auth/login`` (API-FACTS §6)."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        tenant: str | None = None,
        branch: str | None = None,
        locale: str | None = None,
        user_agent: str | None = None,
    ) -> None:
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
        if is_login_limit(resp):
            raise LoginLimitError
        if resp.status_code >= 400:
            if "Invalid credentials" in resp.text:
                msg = "Acumatica rejected the username or password (Invalid credentials)"
                raise AuthError(msg)
            msg = f"Acumatica sign-in failed: {error_text(resp)}"
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


def sign_out_all() -> None:
    """Sign every authenticator of this process out (a safety net for the CLI)."""
    for authenticator in list(_LIVE):
        authenticator.sign_out()


def build_authenticator(
    config: Mapping[str, Any],
    *,
    config_files: Sequence[str] = (),
    user_agent: str | None = None,
) -> AcumaticaAuthenticator:
    """The one authenticator of a tap run, from explicit config values (no network I/O)."""
    from tap_acumatica import grants  # noqa: PLC0415 - grants imports this module

    validate_auth_config(config)
    redact.register_config(config, SECRET_KEYS)
    method = config.get("auth_method") or "oauth_code"
    base_url = str(config["base_url"]).strip()
    if method == "cookie":
        return CookieAuthenticator(
            base_url=base_url,
            username=config["username"],
            password=config["password"],
            tenant=tenant_of(config) or None,
            branch=config.get("branch"),
            locale=config.get("locale"),
            user_agent=user_agent,
        )
    return grants.build_oauth(config, config_files=config_files, user_agent=user_agent)


@contextlib.contextmanager
def signed_out_at_exit(authenticator: AcumaticaAuthenticator) -> Any:
    """``with signed_out_at_exit(a): ...`` signs ``a`` out however the block ends."""
    try:
        yield authenticator
    finally:
        authenticator.sign_out()


def __getattr__(name: str) -> Any:
    """Re-export ``AUTH_SETTINGS`` without importing singer_sdk until it is used."""
    if name == "AUTH_SETTINGS":
        return authconfig.AUTH_SETTINGS
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
