"""A rejected sign-in is never sent again (docs/acumatica-api.md §6: wrong passwords lock users).

Every path that signs in is checked against the sandbox's ``failed_logins`` counter: the cookie
login after a 401, the password grant after a failed refresh, and several threads at once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tap_acumatica.auth.factory import build_authenticator
from tap_acumatica.errors import AuthError, CredentialsRejectedError
from tap_acumatica.http.client import AcumaticaClient
from tests.support import Sandbox

LIST = "/entity/Default/24.200.001/Customer"


def _config(box: Sandbox, method: str) -> dict[str, Any]:
    c = box.credentials()
    config: dict[str, Any] = {
        "base_url": box.url,
        "auth_method": method,
        "username": c["username"],
        "password": c["password"],
        "tenant": c["tenant"],
        "max_concurrent_requests": 4,
    }
    if method == "oauth_password":
        config.update(client_id=c["client_id"], client_secret=c["client_secret"])
    return config


def _hammer(client: AcumaticaClient, threads: int = 4) -> list[BaseException]:
    """GET from ``threads`` threads at once; the errors they raised."""
    errors: list[BaseException] = []

    def one() -> None:
        try:
            client.get_json(LIST, {"$top": 1})
        except BaseException as exc:  # collected for the assertions
            errors.append(exc)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    return errors


@pytest.mark.parametrize("method", ["cookie", "oauth_password"])
def test_sign_in_rejected_after_a_401_is_sent_once(sandbox_factory: Any, method: str) -> None:
    box = sandbox_factory("--records", "20", "--api-seats", "10")
    authenticator = build_authenticator(_config(box, method))
    client = AcumaticaClient(box.url, authenticator, max_tries=2, backoff_base=0.01)
    try:
        assert not _hammer(client)  # four sessions (cookie) or one grant, all fine
        # The password changes on the server while the run goes on, and every session ends.
        if method == "cookie":
            authenticator._body["password"] = "changed"  # type: ignore[attr-defined]
        else:
            authenticator._password = "changed"  # type: ignore[attr-defined]
        box.admin("POST", "revoke", {"what": "all"})
        errors = _hammer(client) + _hammer(client)
        assert len(errors) == 8
        assert all(isinstance(e, AuthError) for e in errors), errors
        assert any(isinstance(e, CredentialsRejectedError) for e in errors)
        assert box.stats()["failed_logins"] == 1
    finally:
        client.close()
        authenticator.sign_out()


def test_password_grant_after_a_dead_refresh_token_is_sent_once(sandbox_factory: Any) -> None:
    box = sandbox_factory("--records", "20", "--api-seats", "10")
    authenticator = build_authenticator(_config(box, "oauth_password"))
    client = AcumaticaClient(box.url, authenticator, max_tries=2, backoff_base=0.01)
    try:
        client.get_json(LIST, {"$top": 1})
        authenticator._password = "changed"  # type: ignore[attr-defined]
        box.admin("POST", "revoke", {"what": "all"})  # refresh token dead too: falls back
        for _ in range(3):
            with pytest.raises(CredentialsRejectedError, match="rejected the username or pass"):
                client.get_json(LIST, {"$top": 1})
        stats = box.stats()
        assert stats["failed_logins"] == 1
        assert stats["refresh_tokens"]["rejected"] == 1  # the refresh was tried once as well
    finally:
        client.close()
        authenticator.sign_out()
