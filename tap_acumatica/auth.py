"""Authentication for tap-acumatica: settings, the shared authenticator base, cookie sessions.

One authenticator per tap run, shared by every stream and worker thread. It is built from
explicit values (``build_authenticator``), never reads a stream or ``self.config``
(SINGER-SDK-NOTES §1, STYLE §9.4), and makes its own login/token/logout calls on its own
``requests.Session``. The OAuth authenticators live in ``tap_acumatica.oauth``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import urllib.parse
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from singer_sdk import typing as th
from urllib3.util.retry import Retry

from tap_acumatica import redact
from tap_acumatica.codegrant import is_loopback
from tap_acumatica.errors import AuthError, ConfigError

logger = logging.getLogger("tap_acumatica.auth")

AUTH_METHODS = ("oauth_code", "oauth_password", "cookie")
INITIATE_OAUTH = ("GETANDREFRESH", "REFRESH", "OFF")
DEFAULT_SCOPE = "api offline_access"
SECRET_KEYS = ("client_secret", "access_token", "refresh_token", "password")

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


AUTH_SETTINGS: list[th.Property] = [
    th.Property(
        "auth_method",
        th.StringType,
        default="oauth_code",
        allowed_values=list(AUTH_METHODS),
        description="oauth_code (authorization-code grant, default), oauth_password "
        "(resource-owner password grant) or cookie (/entity/auth/login session).",
    ),
    th.Property(
        "client_id",
        th.StringType,
        description="OAuth client ID of the connected application (SM303010), <GUID>@<Tenant>.",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        description="OAuth shared secret of the connected application.",
    ),
    th.Property(
        "redirect_uri",
        th.StringType,
        description="Redirect URI registered on the connected application, e.g. "
        "http://localhost:8765/callback (the tap listens there during --login); a non-loopback "
        "URI means you paste the redirected address instead.",
    ),
    th.Property(
        "scope",
        th.StringType,
        default=DEFAULT_SCOPE,
        description="OAuth scopes; offline_access is needed for a refresh token.",
    ),
    th.Property(
        "initiate_oauth",
        th.StringType,
        default="GETANDREFRESH",
        allowed_values=list(INITIATE_OAUTH),
        description="GETANDREFRESH: sign in through the browser when no usable token exists, "
        "then refresh; REFRESH: never interactive, refresh the stored or given refresh_token; "
        "OFF: use access_token as given.",
    ),
    th.Property(
        "oauth_settings_location",
        th.StringType,
        description="JSON file holding the rotating OAuth tokens (created 0600). Default: the "
        "--config file itself, or .meltano/tap-acumatica/oauth-tokens.json under Meltano.",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        description="An OAuth access token (with initiate_oauth OFF, the only credential).",
    ),
    th.Property(
        "refresh_token",
        th.StringType,
        secret=True,
        description="Seed refresh token, used when the token store has none (or a different "
        "one that this value replaces). Rotated tokens go to the token store, not here.",
    ),
    th.Property("username", th.StringType, description="Acumatica user (cookie, oauth_password)."),
    th.Property("password", th.StringType, secret=True, description="Password of that user."),
    th.Property(
        "tenant",
        th.StringType,
        description="Tenant login name for cookie sign-in; default: the part of client_id "
        "after '@'.",
    ),
    th.Property("branch", th.StringType, description="Branch ID for cookie sign-in (optional)."),
    th.Property("locale", th.StringType, description="Locale for cookie sign-in (optional)."),
    th.Property(
        "login_timeout_seconds",
        th.IntegerType,
        default=300,
        description="How long --login waits for the browser sign-in.",
    ),
    th.Property(
        "open_browser",
        th.BooleanType,
        default=True,
        description="Open the system browser for sign-in (the URL is always printed to stderr).",
    ),
]

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

    # Sporadic 401s (a revoked token, an expired session) renew the credential; this many
    # renewals in the window means the new credentials are refused too: stop.
    MAX_RENEWALS = 5
    RENEWAL_WINDOW_SECONDS = 60.0

    def __init__(self, *, base_url: str, user_agent: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._lock = threading.RLock()
        self._http = http_session(user_agent)
        self._renewals: list[float] = []
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
        self._apply(r, self._credential())
        return r

    def handle_unauthorized(self, r: requests.PreparedRequest) -> None:
        """After a 401 on ``r``: renew once per stale credential; AuthError when impossible."""
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
        """Free the API seat (POST /entity/auth/logout); idempotent, never raises."""
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


def tenant_of(config: Mapping[str, Any]) -> str:
    """The tenant: the ``tenant`` setting, else the part of client_id after '@' (§7)."""
    if config.get("tenant"):
        return str(config["tenant"])
    client_id = str(config.get("client_id") or "")
    return client_id.rpartition("@")[2] if "@" in client_id else ""


def validate_auth_config(config: Mapping[str, Any], *, login: bool = False) -> None:
    """Check the auth settings without any network call; ConfigError (one line) if wrong."""
    base_url = config.get("base_url")
    if not isinstance(base_url, str) or not base_url.strip():
        msg = "base_url is required (the instance URL, e.g. https://example.acumatica.com)"
        raise ConfigError(msg)
    parts = urllib.parse.urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"base_url {base_url!r} is not an http(s) URL"
        raise ConfigError(msg)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # API-FACTS §7 "HTTPS mandatory": never send passwords or tokens in clear text.
        msg = f"base_url must use https:// for a non-local host ({parts.hostname})"
        raise ConfigError(msg)
    method = config.get("auth_method") or "oauth_code"
    if method not in AUTH_METHODS:
        msg = f"auth_method must be one of {', '.join(AUTH_METHODS)} (got {method!r})"
        raise ConfigError(msg)
    if login and method != "oauth_code":
        msg = f"--login is for auth_method oauth_code (this config uses {method})"
        raise ConfigError(msg)
    need: list[str] = []
    if method in ("cookie", "oauth_password"):
        need += [k for k in ("username", "password") if not config.get(k)]
    if method != "cookie":
        need += [k for k in ("client_id", "client_secret") if not config.get(k)]
    initiate = str(config.get("initiate_oauth") or "GETANDREFRESH").upper()
    if method == "oauth_code":
        if initiate not in INITIATE_OAUTH:
            msg = f"initiate_oauth must be one of {', '.join(INITIATE_OAUTH)} (got {initiate!r})"
            raise ConfigError(msg)
        if initiate == "OFF" and not login and not config.get("access_token"):
            need.append("access_token")
        if login and not config.get("redirect_uri"):
            need.append("redirect_uri")
    if need:
        msg = f"auth_method {method} needs: {', '.join(need)}"
        raise ConfigError(msg)
    client_id = str(config.get("client_id") or "")
    if method != "cookie" and not tenant_of({"client_id": client_id}):
        msg = "client_id must look like <GUID>@<Tenant>, as shown on Connected Applications"
        raise ConfigError(msg)
    redirect = config.get("redirect_uri")
    if method == "oauth_code" and redirect:
        rparts = urllib.parse.urlsplit(str(redirect))
        if rparts.scheme not in ("http", "https") or not rparts.hostname or rparts.fragment:
            msg = f"redirect_uri {redirect!r} must be an absolute http(s) URL without a fragment"
            raise ConfigError(msg)
        if rparts.scheme == "http" and not is_loopback(rparts.hostname):
            msg = "redirect_uri must use https:// unless it is a loopback address"
            raise ConfigError(msg)
    timeout = config.get("login_timeout_seconds", 300)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        msg = "login_timeout_seconds must be a positive integer"
        raise ConfigError(msg)


def build_authenticator(
    config: Mapping[str, Any],
    *,
    config_files: Sequence[str] = (),
    user_agent: str | None = None,
) -> AcumaticaAuthenticator:
    """The one authenticator of a tap run, from explicit config values (no network I/O)."""
    from tap_acumatica import oauth  # noqa: PLC0415 - oauth imports this module

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
    return oauth.build_oauth(config, config_files=config_files, user_agent=user_agent)


@contextlib.contextmanager
def signed_out_at_exit(authenticator: AcumaticaAuthenticator) -> Any:
    """``with signed_out_at_exit(a): ...`` signs ``a`` out however the block ends."""
    try:
        yield authenticator
    finally:
        authenticator.sign_out()
