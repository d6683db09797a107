"""Identities, cookie sessions and API seats (api.md §6); the token data the OAuth server keeps.

The OAuth 2.0 / OIDC server is oauth.py (``AuthState``), its HTML pages signin.py.
"""

from __future__ import annotations

import base64
import hmac
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.sandbox import NOT_LOGGED_IN, Reply, error_body, json_reply
from tests.sandbox.clock import VirtualClock

TENANT = "Company"
USERNAME = "admin"
BRANCH = "HQ"
SECRET_PREFIXES = ["sbxpw-", "sbxcs-", "sbxat-", "sbxrt-", "sbxcd-", "sbxck-"]
SCOPES = ["api", "offline_access", "api:concurrent_access", "openid", "email", "profile", "phone"]
CODE_TTL = 300.0  # IdentityServer's default authorization-code lifetime (seconds) [GUESS]
PENDING_TTL = 900.0  # how long a rendered sign-in page stays usable
DAY = 86400.0

LOGIN_LIMIT = "API Login Limit"  # api.md §6: all API-user seats are taken
CONCURRENT_ACCESS = "api:concurrent_access"  # api.md §6/§7: one session per cookieless call

# api.md §6 "Idle seats": Acumatica frees an unclosed session after its inactivity timeout; the
# global one is often ~30 minutes (1800 s) and the OAuth sign-out guide says to wait an hour
# (3600 s) for an OAuth session. The sandbox defaults stay at the 10 minutes of the logout page
# for now: tests/sandbox_tests/test_sandbox_auth.py (cookie) and tests/chaos/test_chaos_auth.py
# (OAuth leak recovery advances the clock by 601 s) rely on it; see README "Auth behaviour".
COOKIE_IDLE_SECONDS = 1800.0
OAUTH_IDLE_SECONDS = 3600.0


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


@dataclass
class Session:
    """An API-user session holding one seat (cookie login or one OAuth grant)."""

    sid: str
    kind: str  # "cookie" | "oauth"
    user: str
    last_used: float
    aspxauth: str = ""
    chain: str | None = None  # the OAuth grant that opened it (api:concurrent_access sessions)


@dataclass
class Chain:
    """One OAuth grant: the access/refresh tokens descending from one code or password grant."""

    cid: str
    user: str
    scope: list[str]
    client_id: str
    started: float
    session: str | None = None


@dataclass
class AccessToken:
    chain: str
    expires: float
    revoked: bool = False


@dataclass
class RefreshToken:
    chain: str
    expires: float
    used: bool = False


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    scope: list[str]
    user: str
    expires: float
    challenge: str | None
    nonce: str | None
    used: bool = False


@dataclass
class AuthOptions:
    api_seats: int = 2
    session_idle_seconds: float = COOKIE_IDLE_SECONDS  # cookie sessions
    oauth_session_idle_seconds: float = OAUTH_IDLE_SECONDS  # sessions opened with a bearer
    access_token_ttl: float = 3600.0
    refresh_lifetime_days: float = 30.0
    sliding_days: float = 0.0  # 0 = absolute expiration mode
    auto_approve: str | None = None
    redirect_port: int = 8765
    login_delay_ms: float = 0.0  # --login-delay-ms: the session opens, its answer comes late


class LoginLimitError(Exception):
    """No API seat is free (api.md §6 "API Login Limit")."""


@dataclass
class Access:
    """How a request authenticated: an error reply, or the server session it runs in."""

    denied: Reply | None = None
    sid: str | None = None  # None: no API session (basic auth on OData)
    set_cookies: list[tuple[str, str]] = field(default_factory=list)  # a session just opened


@dataclass
class Counters:
    logins: int = 0
    logouts: int = 0
    sessions_opened: int = 0
    basic_calls: int = 0  # OData calls signed with basic auth (api.md §8: a session each)
    issued: int = 0
    consumed: int = 0
    rejected: int = 0
    grants: dict[str, int] = field(default_factory=dict)


class Seats:
    """Identities, cookie sessions and API seats of one sandbox; thread-safe (one lock).

    oauth.AuthState adds the OAuth 2.0 / OIDC server on top.
    """

    def __init__(self, clock: VirtualClock, options: AuthOptions, seed: int) -> None:
        self.clock = clock
        self.opt = options
        rng = random.Random(seed)
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        self.client_id = f"{guid}@{TENANT}"  # api.md §7: client_id is <GUID>@<Tenant>
        self.password = new_secret("sbxpw-", 12)
        self.client_secret = new_secret("sbxcs-", 24)
        port = options.redirect_port
        self.redirect_uris = [
            f"http://localhost:{port}/callback",
            f"http://127.0.0.1:{port}/callback",
            "https://example.invalid/oauth/callback",
        ]
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every session, token and code (credentials stay)."""
        with self._lock:
            self.sessions: dict[str, Session] = {}
            self.chains: dict[str, Chain] = {}
            self.access: dict[str, AccessToken] = {}
            self.refresh: dict[str, RefreshToken] = {}
            self.codes: dict[str, Code] = {}
            self.pending: dict[str, tuple[float, dict[str, str]]] = {}
            self.counters = Counters()

    def credentials(self) -> dict[str, Any]:
        return {
            "tenant": TENANT,
            "username": USERNAME,
            "password": self.password,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "branch": BRANCH,
            "secret_prefixes": list(SECRET_PREFIXES),
        }

    # ------------------------------------------------------------------ seats and sessions
    def _idle_limit(self, sess: Session) -> float:
        if sess.kind == "oauth":
            return self.opt.oauth_session_idle_seconds
        return self.opt.session_idle_seconds

    def _purge(self, now: float) -> None:
        """api.md §6 "Idle seats": a session unused for its idle time frees its seat."""
        for sess in list(self.sessions.values()):
            if now - sess.last_used > self._idle_limit(sess):
                self._drop_session(sess.sid)

    def _drop_session(self, sid: str) -> bool:
        sess = self.sessions.pop(sid, None)
        if sess is None:
            return False
        for chain in self.chains.values():
            if chain.session == sid:
                chain.session = None
        return True

    def _take_seat(self, kind: str, user: str, now: float, chain: str | None = None) -> Session:
        self._purge(now)
        if len(self.sessions) >= self.opt.api_seats:
            raise LoginLimitError
        sess = Session(new_secret("sbxck-"), kind, user, now, new_secret("sbxck-"), chain)
        self.sessions[sess.sid] = sess
        self.counters.sessions_opened += 1
        return sess

    def session_alive(self, sid: str) -> bool:
        """Whether a session still exists (a request waiting for it may find it ended)."""
        with self._lock:
            return sid in self.sessions

    def active_sessions(self) -> int:
        with self._lock:
            self._purge(self.clock.time())
            return len(self.sessions)

    def check_user(self, name: str, password: str) -> bool:
        return hmac.compare_digest(name.strip().lower().encode(), USERNAME.encode()) and (
            hmac.compare_digest(password.encode(), self.password.encode())
        )

    def login(self, body: dict[str, Any]) -> Reply:
        """``POST /entity/auth/login`` (api.md §6): 204 + cookies, or a §9 error."""
        name = str(body.get("name") or "")
        password = str(body.get("password") or "")
        # api.md §6: "tenant" is current; older clients send "company".
        tenant = str(body.get("tenant") or body.get("company") or TENANT)
        branch = body.get("branch")
        if not self.check_user(name, password) or tenant.lower() != TENANT.lower():
            return json_reply(
                500,
                error_body("Error: Invalid credentials. Please try again.", "PX.Data.PXException"),
            )
        if branch not in (None, "", BRANCH):
            return json_reply(
                500,
                error_body(
                    f"Branch '{branch}' cannot be found in the system.", "PX.Data.PXException"
                ),
            )
        with self._lock:
            try:
                sess = self._take_seat("cookie", USERNAME, self.clock.time())
            except LoginLimitError:
                return login_limit_reply()
            self.counters.logins += 1
        if self.opt.login_delay_ms > 0:
            # api.md §6: the login opened the session (it holds a seat) before its answer leaves;
            # a client that stops waiting never learns its cookies and cannot sign it out.
            time.sleep(self.opt.login_delay_ms / 1000)
        return Reply(204, b"", None, session_cookies(sess))

    def logout(self, cookies: dict[str, str], authorization: str | None) -> Reply:
        """``POST /entity/auth/logout``: 204 always; frees the cookie or bearer session's seat."""
        return self.end_sessions(self.logout_sessions(cookies, authorization))

    def logout_sessions(self, cookies: dict[str, str], authorization: str | None) -> list[str]:
        """The sessions a logout ends: the cookie's, and the bearer grant's (api.md §6).

        With ``api:concurrent_access`` the grant has no session of its own: the cookie names it.
        The token itself stays valid (api.md §6: signing out does not kill a bearer token).
        """
        with self._lock:
            sids = []
            sid = cookies.get("ASP.NET_SessionId")
            if sid and sid in self.sessions:
                sids.append(sid)
            token = bearer_token(authorization)
            if token and token in self.access:
                chain = self.chains.get(self.access[token].chain)
                if chain and chain.session and chain.session not in sids:
                    sids.append(chain.session)
            return sorted(sids)

    def end_sessions(self, sids: list[str]) -> Reply:
        """Drop the sessions a logout named (after their running requests, see server.py)."""
        with self._lock:
            closed = False
            for sid in sids:
                closed = self._drop_session(sid) or closed
            if closed:
                self.counters.logouts += 1
        return Reply(204, b"", None)

    def authenticate(
        self, cookies: dict[str, str], authorization: str | None, *, allow_basic: bool = False
    ) -> Reply | None:
        """Check a request's cookie session or bearer token; None = OK, else the error reply.

        ``allow_basic``: OData also takes basic auth (api.md §8); the REST API does not.
        """
        return self.access_for(cookies, authorization, allow_basic=allow_basic).denied

    def access_for(
        self, cookies: dict[str, str], authorization: str | None, *, allow_basic: bool = False
    ) -> Access:
        """``authenticate`` plus the session the request runs in and cookies to set."""
        now = self.clock.time()
        with self._lock:
            self._purge(now)
            token = bearer_token(authorization)
            if token is not None:
                return self._check_bearer(token, now, cookies)
            basic = basic_credentials(authorization) if allow_basic else None
            if basic is not None and self.check_user(*basic):
                self.counters.basic_calls += 1
                return Access()  # api.md §8: basic auth is a conventional user, no API seat
            sid = cookies.get("ASP.NET_SessionId")
            sess = self.sessions.get(sid or "")
            if sess is None or sess.kind != "cookie":
                return Access(json_reply(401, NOT_LOGGED_IN))
            sent = cookies.get(".ASPXAUTH", "").encode()
            if not hmac.compare_digest(sent, sess.aspxauth.encode()):
                return Access(json_reply(401, NOT_LOGGED_IN))
            sess.last_used = now
            return Access(sid=sess.sid)

    def _check_bearer(self, token: str, now: float, cookies: dict[str, str]) -> Access:
        at = self.access.get(token)
        www = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
        if at is None or at.revoked or now >= at.expires:
            return Access(json_reply(401, NOT_LOGGED_IN, www))
        chain = self.chains[at.chain]
        if "api" not in chain.scope:  # api.md §7: the "api" scope grants REST/OData access
            body = {"message": "The access token does not grant the 'api' scope."}
            return Access(json_reply(403, body))
        if CONCURRENT_ACCESS in chain.scope:
            # api.md §6: a bearer call without the session cookie opens a new session (a new
            # seat) and returns its cookies; sending them back reuses that session.
            sess = self.sessions.get(cookies.get("ASP.NET_SessionId") or "")
            if sess is not None and sess.chain == chain.cid:
                sess.last_used = now
                return Access(sid=sess.sid)
            try:
                sess = self._take_seat("oauth", chain.user, now, chain.cid)
            except LoginLimitError:
                return Access(login_limit_reply())
            return Access(sid=sess.sid, set_cookies=session_cookies(sess))
        # api.md §6: scope "api" alone is one server session per grant, kept across refreshes.
        sess = self.sessions.get(chain.session or "")
        if sess is None:
            try:
                sess = self._take_seat("oauth", chain.user, now, chain.cid)
            except LoginLimitError:
                return Access(login_limit_reply())
            chain.session = sess.sid
        sess.last_used = now
        return Access(sid=sess.sid)

    def revoke(self, what: str = "all") -> dict[str, int]:
        """Revoke tokens and/or end sessions, like SM303010's "Revoke Access"."""
        with self._lock:
            n_at = n_rt = n_s = 0
            if what in ("all", "access_tokens"):
                for at in self.access.values():
                    n_at += not at.revoked
                    at.revoked = True
            if what in ("all", "refresh_tokens"):
                for rt in self.refresh.values():
                    n_rt += not rt.used
                    rt.used = True
            if what in ("all", "sessions"):
                n_s = len(self.sessions)
                for sid in list(self.sessions):
                    self._drop_session(sid)
            return {"access_tokens": n_at, "refresh_tokens": n_rt, "sessions": n_s}

    def revoke_credential(self, cookies: dict[str, str], authorization: str | None) -> None:
        """Kill the credential a request used (fault "revoke": 401 mid-sync)."""
        with self._lock:
            token = bearer_token(authorization)
            if token and token in self.access:
                self.access[token].revoked = True
                chain = self.chains.get(self.access[token].chain)
                if chain and chain.session:
                    self._drop_session(chain.session)
                sess = self.sessions.get(cookies.get("ASP.NET_SessionId") or "")
                if chain and sess is not None and sess.chain == chain.cid:
                    self._drop_session(sess.sid)  # an api:concurrent_access session
                return
            sid = cookies.get("ASP.NET_SessionId")
            if sid:
                self._drop_session(sid)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self._purge(self.clock.time())
            c = self.counters
            return {
                "active_sessions": len(self.sessions),
                "refresh_tokens": {
                    "issued": c.issued,
                    "consumed": c.consumed,
                    "rejected": c.rejected,
                },
                "logins": c.logins,
                "logouts": c.logouts,
                "sessions_opened": c.sessions_opened,
                "basic_calls": c.basic_calls,
                "token_grants": dict(c.grants),
            }


def session_cookies(sess: Session) -> list[tuple[str, str]]:
    """The cookies of a new session (api.md §6: send every one back)."""
    return [
        ("Set-Cookie", f"ASP.NET_SessionId={sess.sid}; path=/; HttpOnly; SameSite=Lax"),
        ("Set-Cookie", f".ASPXAUTH={sess.aspxauth}; path=/; HttpOnly"),
        ("Set-Cookie", f"UserBranch={BRANCH}; path=/"),
        ("Set-Cookie", "Locale=Culture=en-US&TimeZone=GMTM0500G; path=/"),
    ]


def login_limit_reply() -> Reply:
    # api.md §6/§11: exact status unverified; the sandbox answers 429 with the §9 JSON body.
    return json_reply(429, error_body(LOGIN_LIMIT, "PX.Data.PXException"))


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        raw = base64.b64decode(authorization[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, _, password = raw.partition(":")
    return user, password
