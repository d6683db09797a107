"""Sandbox fault schedule: every fault kind, determinism per seed, and the token-endpoint delay."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support import REPO, Sandbox, password_grant, wait_for

LIST = "/entity/Default/24.200.001/Customer"


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    s = Sandbox("--records", "30", "--api-seats", "50")
    yield s
    s.stop()


@pytest.fixture
def auth(sbx: Sandbox) -> dict[str, str]:
    """A fresh bearer header; faults cleared before each test."""
    sbx.admin("POST", "reset")
    sbx.admin("POST", "faults", {})
    return {"Authorization": f"Bearer {password_grant(sbx, scope='api')['access_token']}"}


def get(sbx: Sandbox, headers: dict[str, str], path: str = LIST, **kw: Any) -> requests.Response:
    return requests.get(sbx.url + path, headers=headers, timeout=30, **kw)


def script(sbx: Sandbox, *kinds: str, **extra: Any) -> None:
    sbx.admin("POST", "faults", {"script": list(kinds), **extra})


def test_http_500_then_normal(sbx: Sandbox, auth: dict[str, str]) -> None:
    script(sbx, "http_500")
    r = get(sbx, auth)
    assert r.status_code == 500
    body = r.json()
    assert body["message"] == "An error has occurred."
    assert {"exceptionMessage", "exceptionType", "stackTrace"} <= set(body)
    assert get(sbx, auth).status_code == 200
    assert sbx.stats()["faults"] == {"http_500": 1}


def test_http_429(sbx: Sandbox, auth: dict[str, str]) -> None:
    script(sbx, "http_429")
    r = get(sbx, auth)
    assert r.status_code == 429
    assert "limit" in r.json()["exceptionMessage"]
    assert "Retry-After" not in r.headers  # api.md §6: none documented


def test_html_error_pages(sbx: Sandbox, auth: dict[str, str]) -> None:
    script(sbx, "html_error", "html_error", "html_error")
    pages = [get(sbx, auth) for _ in range(3)]
    assert [r.status_code for r in pages] == [503, 502, 500]
    for r in pages:
        assert r.headers["Content-Type"].startswith("text/html")
        with pytest.raises(ValueError):
            r.json()
    assert "Service Unavailable" in pages[0].text
    assert "Server Error in '/' Application." in pages[2].text


def test_connection_reset_mid_body(sbx: Sandbox, auth: dict[str, str]) -> None:
    script(sbx, "reset")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        get(sbx, auth).json()
    assert get(sbx, auth).status_code == 200  # the server survives


def test_truncated_json(sbx: Sandbox, auth: dict[str, str]) -> None:
    full = get(sbx, auth)
    script(sbx, "truncate")
    r = get(sbx, auth)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(r.content) < len(full.content)
    assert full.content.startswith(r.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


def test_slow_response(sbx: Sandbox, auth: dict[str, str]) -> None:
    script(sbx, "slow", slow_ms=400)
    started = time.monotonic()
    assert get(sbx, auth).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_revoke_mid_sync(sbx: Sandbox, auth: dict[str, str]) -> None:
    assert get(sbx, auth).status_code == 200
    script(sbx, "revoke")
    assert get(sbx, auth).status_code == 401
    assert get(sbx, auth).status_code == 401  # the token is dead, not just one answer
    assert sbx.stats()["active_sessions"] == 0


def test_cannot_optimize_expand(sbx: Sandbox, auth: dict[str, str]) -> None:
    sbx.admin("POST", "faults", {"optimization": {"Customer": ["MainContact"]}})
    r = get(sbx, auth, params={"$expand": "MainContact"})
    assert r.status_code == 500
    body = r.json()
    assert body["exceptionMessage"].startswith("Optimization cannot be performed.")
    assert body["exceptionType"] == "PX.Api.ContractBased.OptimizedExport.CannotOptimizeException"
    assert get(sbx, auth).status_code == 200  # without the $expand the list works


def test_entities_skip_first_and_max_faults(sbx: Sandbox, auth: dict[str, str]) -> None:
    sbx.admin(
        "POST",
        "faults",
        {"http_500": 100, "entities": ["Customer"], "skip_first": 2, "max_faults": 3},
    )
    statuses = [get(sbx, auth).status_code for _ in range(7)]
    assert statuses == [200, 200, 500, 500, 500, 200, 200]


def test_discovery_faults_only_when_asked(sbx: Sandbox, auth: dict[str, str]) -> None:
    swagger = "/entity/Default/24.200.001/swagger.json"
    adhoc = "/entity/Default/24.200.001/Customer/$adHocSchema"
    script(sbx, "http_500", "http_500")
    assert get(sbx, auth, swagger).status_code == 200  # not eligible by default
    assert get(sbx, auth, adhoc).status_code == 200
    assert get(sbx, auth).status_code == 500
    script(sbx, "http_500", "http_500", include_discovery=True)
    assert get(sbx, auth, swagger).status_code == 500
    assert get(sbx, auth, adhoc).status_code == 500
    assert get(sbx, auth, swagger).status_code == 200


def test_seeded_schedule_is_deterministic(sbx: Sandbox, auth: dict[str, str]) -> None:
    conf = {"http_500": 30, "http_429": 20, "html_error": 10, "seed": 5}

    def run() -> list[int]:
        sbx.admin("POST", "faults", conf)
        return [get(sbx, auth).status_code for _ in range(25)]

    first = run()
    assert first == run()
    assert {200, 500, 429, 503} <= set(first)
    sbx.admin("POST", "faults", {**conf, "seed": 6})
    assert [get(sbx, auth).status_code for _ in range(25)] != first


def test_faults_from_command_line(sandbox_factory: Any) -> None:
    s = sandbox_factory("--records", "5", "--faults", '{"script": ["http_500"]}')
    creds = s.credentials()
    cookie = requests.Session()
    body = {"name": "admin", "password": creds["password"]}
    assert cookie.post(f"{s.url}/entity/auth/login", json=body, timeout=30).status_code == 204
    assert cookie.get(s.url + LIST, timeout=30).status_code == 500
    assert cookie.get(s.url + LIST, timeout=30).status_code == 200
    s.admin("POST", "reset")  # reset restores the command-line schedule
    assert cookie.post(f"{s.url}/entity/auth/login", json=body, timeout=30).status_code == 204
    assert cookie.get(s.url + LIST, timeout=30).status_code == 500


def test_bad_fault_config_rejected(sbx: Sandbox) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        sbx.admin("POST", "faults", {"bogus": 1})
    assert err.value.code == 400
    proc = subprocess.run(
        [sys.executable, "-m", "tests.sandbox", "--port", "0", "--faults", '{"http_500": 101}'],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--faults" in proc.stderr


def _refresh_grant(sbx: Sandbox) -> tuple[dict[str, Any], str]:
    return sbx.credentials(), password_grant(sbx)["refresh_token"]


def _refresh(sbx: Sandbox, creds: dict[str, Any], rt: str, timeout: float) -> requests.Response:
    data = {
        "grant_type": "refresh_token",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "refresh_token": rt,
    }
    return requests.post(f"{sbx.url}/identity/connect/token", data=data, timeout=timeout)


def _token_requests(sbx: Sandbox) -> int:
    """Token requests the sandbox has finished handling (counted once answered or dropped)."""
    stats = sbx.stats()["requests"]
    return sum(r["count"] for r in stats if r["path"] == "/identity/connect/token")


def _wait_token_handled(sbx: Sandbox, count: int) -> None:
    """Wait until the sandbox is done with the abandoned, delayed token request."""
    done = wait_for(lambda: _token_requests(sbx) >= count, timeout=10)
    assert done, "the sandbox did not finish the delayed token request within 10 s"


def test_token_delay_client_gone_before_grant(sbx: Sandbox, auth: dict[str, str]) -> None:
    """Killed while the token endpoint stalls: the old refresh token is still valid."""
    creds, rt = _refresh_grant(sbx)
    handled = _token_requests(sbx)
    sbx.admin("POST", "faults", {"token_delay_ms": 800})
    with pytest.raises(requests.exceptions.ReadTimeout):
        _refresh(sbx, creds, rt, timeout=0.2)
    _wait_token_handled(sbx, handled + 1)
    sbx.admin("POST", "faults", {})
    assert _refresh(sbx, creds, rt, timeout=30).status_code == 200


def test_token_delay_after_rotation(sbx: Sandbox, auth: dict[str, str]) -> None:
    """Killed after the server rotated: the client never saw the new token; the old one is dead."""
    creds, rt = _refresh_grant(sbx)
    handled = _token_requests(sbx)
    sbx.admin("POST", "faults", {"token_delay_ms": 800, "token_delay_after": True})
    with pytest.raises(requests.exceptions.ReadTimeout):
        _refresh(sbx, creds, rt, timeout=0.2)
    _wait_token_handled(sbx, handled + 1)
    sbx.admin("POST", "faults", {})
    r = _refresh(sbx, creds, rt, timeout=30)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
