"""The OAuth 2.0 / OIDC server (api.md §7).

Authorize (sign-in and consent page, or auto-approve), the token endpoint's code, refresh and
password grants with rotating refresh tokens, discovery and userinfo. Seats come from auth.Seats.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

from tests.sandbox import Reply, json_reply
from tests.sandbox.auth import (
    CODE_TTL,
    CONCURRENT_ACCESS,
    DAY,
    PENDING_TTL,
    SCOPES,
    TENANT,
    USERNAME,
    AccessToken,
    Chain,
    Code,
    LoginLimitError,
    RefreshToken,
    Seats,
    basic_credentials,
    bearer_token,
    login_limit_reply,
    new_secret,
)
from tests.sandbox.signin import html_error, signin_page


class AuthState(Seats):
    """All identity state of one sandbox: seats and sessions (auth.Seats) plus OAuth/OIDC."""

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
            "code_challenge_methods_supported": ["S256"],  # api.md §7: PKCE S256 only
        }

    def userinfo(self, authorization: str | None) -> Reply:
        token = bearer_token(authorization)
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
            return None, html_error(400, "invalid_client", "Unknown client_id.")
        redirect = params.get("redirect_uri", "")
        # api.md §7: redirect URIs are matched exactly (no prefix, no port wildcard).
        if redirect not in self.redirect_uris:
            return None, html_error(400, "invalid_request", "Invalid redirect_uri.")
        state = params.get("state")
        if params.get("response_type") != "code":
            return redirect, _redirect(redirect, {"error": "unsupported_response_type"}, state)
        scope = params.get("scope", "").split()
        if not scope or any(s not in SCOPES for s in scope):
            return redirect, _redirect(redirect, {"error": "invalid_scope"}, state)
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            # api.md §7: PKCE S256 only.
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
        return signin_page(base, rid, params, error=None)

    def authorize_post(self, form: dict[str, str], base: str) -> Reply:
        """The sign-in page's form post: Approve (with credentials) or Deny."""
        rid = form.get("request_id", "")
        with self._lock:
            entry = self.pending.get(rid)
            if entry is None or entry[0] <= self.clock.time():
                return html_error(400, "invalid_request", "The sign-in request has expired.")
            params = entry[1]
        state = params.get("state")
        if form.get("action") != "approve":
            with self._lock:
                self.pending.pop(rid, None)
            return _redirect(params["redirect_uri"], {"error": "access_denied"}, state)
        user = form.get("username", "")
        if not self.check_user(user, form.get("password", "")):
            return signin_page(base, rid, params, error="Invalid credentials. Please try again.")
        with self._lock:
            self.pending.pop(rid, None)
        return self._approve(params, user.strip().lower())

    def _approve(self, params: dict[str, str], user: str) -> Reply:
        code = new_secret("sbxcd-", 24)
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
        """``POST /identity/connect/token`` (api.md §7)."""
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = basic_credentials(authorization)
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
        # api.md §7: refresh tokens rotate; a used (or expired) one gets invalid_grant.
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
        if CONCURRENT_ACCESS in chain.scope:
            return  # api.md §6: its sessions open with the cookieless calls, one each
        if chain.session is None or chain.session not in self.sessions:
            chain.session = self._take_seat("oauth", chain.user, now, chain.cid).sid
        self.sessions[chain.session].last_used = now

    def _new_chain(self, user: str, scope: list[str], nonce: str | None, base: str) -> Reply:
        now = self.clock.time()
        chain = Chain(uuid.uuid4().hex, user, scope, self.client_id, now)
        try:
            self._ensure_seat(chain, now)  # api.md §6: OAuth sessions are API users too
        except LoginLimitError:
            return login_limit_reply()
        self.chains[chain.cid] = chain
        return self._issue(chain, nonce, base)

    def _issue(self, chain: Chain, nonce: str | None, base: str) -> Reply:
        now = self.clock.time()
        access = new_secret("sbxat-", 32)
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
            refresh = new_secret("sbxrt-", 32)
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
