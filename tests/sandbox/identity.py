"""The ``/identity`` routes: OAuth 2.0 / OIDC endpoints over AuthState (api.md §7)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tests.sandbox import Reply, failing, json_reply, not_found

if TYPE_CHECKING:
    from tests.sandbox.server import Handler


def route_identity(h: Handler, method: str, segs: list[str]) -> Reply:
    """Discovery, authorize (sign-in page), token (with the token-delay fault), userinfo."""
    auth = h.server.app.auth
    base = h.server.app.base_url
    path = "/".join(segs)
    if path == ".well-known/openid-configuration" and method == "GET":
        return json_reply(200, auth.discovery(base))
    if path == ".well-known/openid-configuration/jwks" and method == "GET":
        return json_reply(200, {"keys": []})  # id_tokens are HS256 (client secret)
    if path == "connect/authorize" and method == "GET":
        return auth.authorize_get(h.params, base)
    if path == "connect/authorize" and method == "POST":
        return auth.authorize_post(h.form(), base)
    if path == "connect/token" and method == "POST":
        form = h.form()
        delay, after = h.server.app.faults.token_delay()
        if delay and not after:
            time.sleep(delay)
            if h.client_gone():  # killed while waiting: the grant never happens
                h.close_connection = True
                return Reply(499, b"", None)
        reply = failing.token(h.server.app, form, h.authorization, base)  # api.md §6: lockout
        if delay and after:  # the grant already happened; the client may never see it
            time.sleep(delay)
        return reply
    if path == "connect/userinfo" and method in ("GET", "POST"):
        return auth.userinfo(h.authorization)
    return not_found(h.stat_path)
