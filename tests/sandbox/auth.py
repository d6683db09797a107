"""Identities, cookie sessions, API seats and the OAuth 2.0 / OIDC server (API-FACTS §6, §7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

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

LOGIN_LIMIT = "API Login Limit"  # API-FACTS §6: all API-user seats are taken


def _secret(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


@dataclass
class Session:
    """An API-user session holding one seat (cookie login or one OAuth grant)."""

    sid: str
    kind: str  # "cookie" | "oauth"
    user: str
    last_used: float
    aspxauth: str = ""


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
    session_idle_seconds: float = 600.0
    access_token_ttl: float = 3600.0
    refresh_lifetime_days: float = 30.0
    sliding_days: float = 0.0  # 0 = absolute expiration mode
    auto_approve: str | None = None
    redirect_port: int = 8765


class LoginLimitError(Exception):
    """No API seat is free (API-FACTS §6 "API Login Limit")."""


@dataclass
class Counters:
    logins: int = 0
    logouts: int = 0
    issued: int = 0
    consumed: int = 0
    rejected: int = 0
    grants: dict[str, int] = field(default_factory=dict)


class AuthState:
    """All identity state of one sandbox; thread-safe (one lock)."""

    def __init__(self, clock: VirtualClock, options: AuthOptions, seed: int) -> None:
        self.clock = clock
        self.opt = options
        rng = random.Random(seed)
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        self.client_id = f"{guid}@{TENANT}"  # API-FACTS §7: client_id is <GUID>@<Tenant>
        self.password = _secret("sbxpw-", 12)
        self.client_secret = _secret("sbxcs-", 24)
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
    def _purge(self, now: float) -> None:
        idle = self.opt.session_idle_seconds
        for sid in [s.sid for s in self.sessions.values() if now - s.last_used > idle]:
            self._drop_session(sid)

    def _drop_session(self, sid: str) -> bool:
        sess = self.sessions.pop(sid, None)
        if sess is None:
            return False
        for chain in self.chains.values():
            if chain.session == sid:
                chain.session = None
        return True

    def _take_seat(self, kind: str, user: str, now: float) -> Session:
        self._purge(now)
        if len(self.sessions) >= self.opt.api_seats:
            raise LoginLimitError
        sess = Session(_secret("sbxck-"), kind, user, now, _secret("sbxck-"))
        self.sessions[sess.sid] = sess
        return sess

    def active_sessions(self) -> int:
        with self._lock:
            self._purge(self.clock.time())
            return len(self.sessions)

    def check_user(self, name: str, password: str) -> bool:
        return hmac.compare_digest(name.strip().lower().encode(), USERNAME.encode()) and (
            hmac.compare_digest(password.encode(), self.password.encode())
        )

    def login(self, body: dict[str, Any]) -> Reply:
        """``POST /entity/auth/login`` (API-FACTS §6): 204 + cookies, or a §9 error."""
        name = str(body.get("name") or "")
        password = str(body.get("password") or "")
        # API-FACTS §6: "tenant" is current; older clients send "company".
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
        cookies = [
            ("Set-Cookie", f"ASP.NET_SessionId={sess.sid}; path=/; HttpOnly; SameSite=Lax"),
            ("Set-Cookie", f".ASPXAUTH={sess.aspxauth}; path=/; HttpOnly"),
            ("Set-Cookie", f"UserBranch={BRANCH}; path=/"),
            ("Set-Cookie", "Locale=Culture=en-US&TimeZone=GMTM0500G; path=/"),
        ]
        return Reply(204, b"", None, cookies)

    def logout(self, cookies: dict[str, str], authorization: str | None) -> Reply:
        """``POST /entity/auth/logout``: 204 always; frees the cookie or bearer session's seat."""
        with self._lock:
            closed = False
            sid = cookies.get("ASP.NET_SessionId")
            if sid and sid in self.sessions:
                closed = self._drop_session(sid)
            token = _bearer(authorization)
            if token and token in self.access:
                chain = self.chains.get(self.access[token].chain)
                if chain and chain.session:
                    closed = self._drop_session(chain.session) or closed
            if closed:
                self.counters.logouts += 1
        return Reply(204, b"", None)

    def authenticate(
        self, cookies: dict[str, str], authorization: str | None, *, allow_basic: bool = False
    ) -> Reply | None:
        """Check a request's cookie session or bearer token; None = OK, else the error reply.

        ``allow_basic``: OData also takes basic auth (API-FACTS §8); the REST API does not.
        """
        now = self.clock.time()
        with self._lock:
            self._purge(now)
            token = _bearer(authorization)
            if token is not None:
                return self._check_bearer(token, now)
            basic = _basic(authorization) if allow_basic else None
            if basic is not None and self.check_user(*basic):
                return None  # API-FACTS §8: basic auth is a conventional user, no API seat
            sid = cookies.get("ASP.NET_SessionId")
            sess = self.sessions.get(sid or "")
            if sess is None or sess.kind != "cookie":
                return json_reply(401, NOT_LOGGED_IN)
            sent = cookies.get(".ASPXAUTH", "").encode()
            if not hmac.compare_digest(sent, sess.aspxauth.encode()):
                return json_reply(401, NOT_LOGGED_IN)
            sess.last_used = now
            return None

    def _check_bearer(self, token: str, now: float) -> Reply | None:
        at = self.access.get(token)
        www = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
        if at is None or at.revoked or now >= at.expires:
            return json_reply(401, NOT_LOGGED_IN, www)
        chain = self.chains[at.chain]
        if "api" not in chain.scope:  # API-FACTS §7: the "api" scope grants REST/OData access
            return json_reply(403, {"message": "The access token does not grant the 'api' scope."})
        sess = self.sessions.get(chain.session or "")
        if sess is None:
            try:
                sess = self._take_seat("oauth", chain.user, now)
            except LoginLimitError:
                return login_limit_reply()
            chain.session = sess.sid
        sess.last_used = now
        return None

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
            token = _bearer(authorization)
            if token and token in self.access:
                self.access[token].revoked = True
                chain = self.chains.get(self.access[token].chain)
                if chain and chain.session:
                    self._drop_session(chain.session)
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
                "token_grants": dict(c.grants),
            }

    # ------------------------------------------------------------------ OAuth / OIDC
    def discovery(self, base: str) -> dict[str, Any]:
        ident = f"{base}/identity"
        return {
            "issuer": ident,
            "jwks_uri": f"{ident}/.well-known/openid-configuration/jwks",
            "authorization_endpoint": f"{ident}/connect/authorize",
            "token_endpoint": f"{ident}/connect/token",
            "userinfo_endpoint": f"{ident}/connect/userinfo",
            "scopes_supported": list(SCOPES),
            "claims_supported": ["sub", "name", "email", "preferred_username"],
            # Acumatica also offers implicit and hybrid flows (§7); the sandbox serves code only.
            "grant_types_supported": ["authorization_code", "refresh_token", "password"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "code_challenge_methods_supported": ["S256"],  # API-FACTS §7: PKCE S256 only
        }

    def userinfo(self, authorization: str | None) -> Reply:
        token = _bearer(authorization)
        with self._lock:
            at = self.access.get(token or "")
            if at is None or at.revoked or self.clock.time() >= at.expires:
                return json_reply(401, {"error": "invalid_token"})
            user = self.chains[at.chain].user
        return json_reply(
            200, {"sub": f"{user}@{TENANT}", "preferred_username": user, "name": user}
        )

    def validate_authorize(self, params: dict[str, str]) -> tuple[str | None, Reply | None]:
        """Check an authorize request: (redirect_uri or None, error reply or None)."""
        if params.get("client_id") != self.client_id:
            return None, _html_error(400, "invalid_client", "Unknown client_id.")
        redirect = params.get("redirect_uri", "")
        # API-FACTS §7: redirect URIs are matched exactly (no prefix, no port wildcard).
        if redirect not in self.redirect_uris:
            return None, _html_error(400, "invalid_request", "Invalid redirect_uri.")
        state = params.get("state")
        if params.get("response_type") != "code":
            return redirect, _redirect(redirect, {"error": "unsupported_response_type"}, state)
        scope = params.get("scope", "").split()
        if not scope or any(s not in SCOPES for s in scope):
            return redirect, _redirect(redirect, {"error": "invalid_scope"}, state)
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            # API-FACTS §7: PKCE S256 only.
            desc = "code_challenge_method must be S256"
            return redirect, _redirect(
                redirect, {"error": "invalid_request", "error_description": desc}, state
            )
        return redirect, None

    def authorize_get(self, params: dict[str, str], base: str) -> Reply:
        """``GET /identity/connect/authorize``: sign-in + consent page, or auto-approve."""
        redirect, err = self.validate_authorize(params)
        if err is not None:
            return err
        assert redirect is not None
        if self.opt.auto_approve:
            return self._approve(params, self.opt.auto_approve)
        rid = secrets.token_urlsafe(16)
        with self._lock:
            now = self.clock.time()
            self.pending = {k: v for k, v in self.pending.items() if v[0] > now}
            self.pending[rid] = (now + PENDING_TTL, dict(params))
        return _signin_page(base, rid, params, error=None)

    def authorize_post(self, form: dict[str, str], base: str) -> Reply:
        """The sign-in page's form post: Approve (with credentials) or Deny."""
        rid = form.get("request_id", "")
        with self._lock:
            entry = self.pending.get(rid)
            if entry is None or entry[0] <= self.clock.time():
                return _html_error(400, "invalid_request", "The sign-in request has expired.")
            params = entry[1]
        state = params.get("state")
        if form.get("action") != "approve":
            with self._lock:
                self.pending.pop(rid, None)
            return _redirect(params["redirect_uri"], {"error": "access_denied"}, state)
        user = form.get("username", "")
        if not self.check_user(user, form.get("password", "")):
            return _signin_page(base, rid, params, error="Invalid credentials. Please try again.")
        with self._lock:
            self.pending.pop(rid, None)
        return self._approve(params, user.strip().lower())

    def _approve(self, params: dict[str, str], user: str) -> Reply:
        code = _secret("sbxcd-", 24)
        scope = params.get("scope", "").split()
        with self._lock:
            self.codes[code] = Code(
                client_id=params["client_id"],
                redirect_uri=params["redirect_uri"],
                scope=scope,
                user=user,
                expires=self.clock.time() + CODE_TTL,
                challenge=params.get("code_challenge") or None,
                nonce=params.get("nonce"),
            )
        query = {"code": code, "scope": " ".join(scope)}
        return _redirect(params["redirect_uri"], query, params.get("state"))

    def token(self, form: dict[str, str], authorization: str | None, base: str) -> Reply:
        """``POST /identity/connect/token`` (API-FACTS §7)."""
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic(authorization)
        if basic is not None and not client_secret:  # client_secret_basic
            client_id, client_secret = basic
        if client_id != self.client_id or not hmac.compare_digest(
            (client_secret or "").encode(), self.client_secret.encode()
        ):
            return _oauth_error(400, "invalid_client")
        grant = form.get("grant_type", "")
        with self._lock:
            self.counters.grants[grant] = self.counters.grants.get(grant, 0) + 1
            if grant == "password":
                return self._grant_password(form, base)
            if grant == "authorization_code":
                return self._grant_code(form, base)
            if grant == "refresh_token":
                return self._grant_refresh(form, base)
        return _oauth_error(400, "unsupported_grant_type")

    def _grant_password(self, form: dict[str, str], base: str) -> Reply:
        if not self.check_user(form.get("username", ""), form.get("password", "")):
            return _oauth_error(400, "invalid_grant", "invalid_username_or_password")
        scope = (form.get("scope") or "api").split()
        if any(s not in SCOPES for s in scope):
            return _oauth_error(400, "invalid_scope")
        return self._new_chain(USERNAME, scope, None, base)

    def _grant_code(self, form: dict[str, str], base: str) -> Reply:
        code = self.codes.get(form.get("code", ""))
        now = self.clock.time()
        if code is None or code.used or now >= code.expires:
            return _oauth_error(400, "invalid_grant")
        code.used = True  # single use, even when the exchange fails below
        if code.client_id != form.get("client_id", self.client_id):
            return _oauth_error(400, "invalid_grant")
        if form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(400, "invalid_grant", "invalid redirect_uri")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or not hmac.compare_digest(expected.encode(), code.challenge.encode()):
                return _oauth_error(400, "invalid_grant", "invalid code_verifier")
        return self._new_chain(code.user, code.scope, code.nonce, base)

    def _grant_refresh(self, form: dict[str, str], base: str) -> Reply:
        now = self.clock.time()
        rt = self.refresh.get(form.get("refresh_token", ""))
        # API-FACTS §7: refresh tokens rotate; a used (or expired) one gets invalid_grant.
        if rt is None or rt.used or now >= rt.expires or rt.chain not in self.chains:
            self.counters.rejected += 1
            return _oauth_error(400, "invalid_grant")
        chain = self.chains[rt.chain]
        try:
            self._ensure_seat(chain, now)
        except LoginLimitError:
            return login_limit_reply()
        rt.used = True
        self.counters.consumed += 1
        return self._issue(chain, None, base)

    def _ensure_seat(self, chain: Chain, now: float) -> None:
        if chain.session is None or chain.session not in self.sessions:
            chain.session = self._take_seat("oauth", chain.user, now).sid
        self.sessions[chain.session].last_used = now

    def _new_chain(self, user: str, scope: list[str], nonce: str | None, base: str) -> Reply:
        now = self.clock.time()
        chain = Chain(uuid.uuid4().hex, user, scope, self.client_id, now)
        try:
            self._ensure_seat(chain, now)  # API-FACTS §6: OAuth sessions are API users too
        except LoginLimitError:
            return login_limit_reply()
        self.chains[chain.cid] = chain
        return self._issue(chain, nonce, base)

    def _issue(self, chain: Chain, nonce: str | None, base: str) -> Reply:
        now = self.clock.time()
        access = _secret("sbxat-", 32)
        self.access[access] = AccessToken(chain.cid, now + self.opt.access_token_ttl)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(self.opt.access_token_ttl),
            "token_type": "Bearer",
            "scope": " ".join(chain.scope),
        }
        if "offline_access" in chain.scope:
            absolute = chain.started + self.opt.refresh_lifetime_days * DAY
            expires = absolute
            if self.opt.sliding_days > 0:  # sliding mode: each refresh extends the lifetime
                expires = min(absolute, now + self.opt.sliding_days * DAY)
            refresh = _secret("sbxrt-", 32)
            self.refresh[refresh] = RefreshToken(chain.cid, expires)
            self.counters.issued += 1
            body["refresh_token"] = refresh
        if "openid" in chain.scope:
            body["id_token"] = self._id_token(chain, nonce, now, base)
        return json_reply(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def _id_token(self, chain: Chain, nonce: str | None, now: float, base: str) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        claims: dict[str, Any] = {
            "iss": f"{base}/identity",
            "sub": f"{chain.user}@{TENANT}",
            "aud": chain.client_id,
            "iat": int(now),
            "exp": int(now + self.opt.access_token_ttl),
        }
        if nonce:
            claims["nonce"] = nonce
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64(json.dumps(claims).encode())
        sig = hmac.new(self.client_secret.encode(), f"{head}.{payload}".encode(), "sha256")
        return f"{head}.{payload}.{b64(sig.digest())}"


def login_limit_reply() -> Reply:
    # API-FACTS §6/§11: exact status unverified; the sandbox answers 429 with the §9 JSON body.
    return json_reply(429, error_body(LOGIN_LIMIT, "PX.Data.PXException"))


def _oauth_error(status: int, error: str, description: str | None = None) -> Reply:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return json_reply(status, body, [("Cache-Control", "no-store")])


def _redirect(uri: str, query: dict[str, str], state: str | None) -> Reply:
    if state is not None:
        query = {**query, "state": state}
    sep = "&" if "?" in uri else "?"
    return Reply(302, b"", None, [("Location", f"{uri}{sep}{urlencode(query)}")])


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        raw = base64.b64decode(authorization[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, _, password = raw.partition(":")
    return user, password


_STYLE = (
    "body{font-family:sans-serif;background:#f3f5f8;margin:0}"
    "main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:6px}"
    "label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;box-sizing:border-box}"
    "button{margin-top:1.2rem;margin-right:.6rem;padding:.5rem 1.2rem}#error{color:#b00020}"
)


def _html_error(status: int, error: str, description: str) -> Reply:
    """IdentityServer-style error page (never redirects to an unvalidated redirect_uri)."""
    body = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Error</title>'
        f"<style>{_STYLE}</style></head><body><main><h1>Sorry, there was an error</h1>"
        f'<p id="error-code">{escape(error)}</p><p id="error-description">'
        f"{escape(description)}</p></main></body></html>"
    )
    return Reply(status, body.encode(), "text/html; charset=utf-8")


def _signin_page(base: str, rid: str, params: dict[str, str], error: str | None) -> Reply:
    """One page that signs the user in and asks for consent; stable ids for browser tests."""
    scopes = "".join(f"<li>{escape(s)}</li>" for s in params.get("scope", "").split())
    err = f'<p id="error" role="alert">{escape(error)}</p>' if error else ""
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Acumatica ERP - Sign In</title>
<style>{_STYLE}</style></head>
<body><main id="signin">
<h1>Acumatica ERP</h1>
<p id="consent-text">The application
<strong id="client-id">{escape(params.get("client_id", ""))}</strong>
requests access to tenant <strong>{TENANT}</strong> with these permissions:</p>
<ul id="scopes">{scopes}</ul>
<form id="signin-form" method="post" action="{escape(base)}/identity/connect/authorize">
<input type="hidden" name="request_id" value="{escape(rid)}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
{err}
<button id="approve" name="action" value="approve" type="submit">Approve</button>
<button id="deny" name="action" value="deny" type="submit">Deny</button>
</form></main></body></html>
"""
    return Reply(200, body.encode(), "text/html; charset=utf-8", [("Cache-Control", "no-store")])
