"""Sessions run one request at a time; ``api:concurrent_access``; seats, idle times, counters.

api.md §6: Acumatica processes the requests of one session one at a time (ASP.NET session state),
so parallel requests only help in different sessions; a bearer token with scope ``api`` is one
session per grant, and ``api:concurrent_access`` opens a session per cookieless call. Every test
talks HTTP to a real sandbox process and waits on the server's own counters, never on sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.support import Sandbox, password_grant, wait_for

V24 = "/entity/Default/24.200.001"
LIST = f"{V24}/Customer?$top=1"
SandboxFactory = Callable[..., Sandbox]


def login(sbx: Sandbox) -> requests.Session:
    c = sbx.credentials()
    s = requests.Session()
    body = {"name": c["username"], "password": c["password"], "tenant": c["tenant"]}
    r = s.post(f"{sbx.url}/entity/auth/login", json=body, timeout=30)
    assert r.status_code == 204, r.text
    return s


def grant(sbx: Sandbox, scope: str) -> dict[str, Any]:
    body = password_grant(sbx, scope)
    assert "access_token" in body, body
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def lines(sbx: Sandbox) -> dict[str, Any]:
    st: dict[str, Any] = sbx.stats()["session_lines"]
    return st


class Calls:
    """Requests sent from worker threads; each result is (status, finish time, response)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(8)

    def start(self, call: Callable[[], requests.Response]) -> Future[tuple[int, float, Any]]:
        def run() -> tuple[int, float, Any]:
            r = call()
            return r.status_code, time.monotonic(), r

        return self.pool.submit(run)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@pytest.fixture
def calls() -> Iterator[Calls]:
    c = Calls()
    yield c
    c.close()


def until(sbx: Sandbox, what: str, predicate: Callable[[dict[str, Any]], bool]) -> None:
    assert wait_for(lambda: predicate(lines(sbx)), timeout=30, interval=0.02), (what, lines(sbx))


# ---------------------------------------------------------------- one session, one request


def test_one_cookie_session_runs_its_requests_one_at_a_time_in_arrival_order(
    sandbox_factory: SandboxFactory, calls: Calls
) -> None:
    sbx = sandbox_factory("--records", "5", "--latency-ms", "1000", "--max-concurrent", "4")
    s = login(sbx)
    started = time.monotonic()
    first = calls.start(lambda: s.get(sbx.url + LIST, timeout=60))
    until(sbx, "first request running", lambda st: st["running"] == 1)
    second = calls.start(lambda: s.get(sbx.url + LIST, timeout=60))
    until(sbx, "second request waits for the session", lambda st: st["waiting"] == 1)
    third = calls.start(lambda: s.get(sbx.url + LIST, timeout=60))
    until(sbx, "third request waits too", lambda st: st["waiting"] == 2)
    done = [f.result(timeout=60) for f in (first, second, third)]
    assert [d[0] for d in done] == [200, 200, 200]
    # Arrival order: each finished at least one latency after the one before it.
    assert done[0][1] < done[1][1] < done[2][1]
    assert done[2][1] - started >= 3 * 1.0  # a lower bound: serialised, never faster
    st = sbx.stats()
    assert st["max_parallel_in_one_session"] == 1
    assert st["session_lines"]["max_waiting"] == 2
    assert st["session_lines"]["serialise"] is True


def test_two_sessions_run_in_parallel_but_each_one_serially(
    sandbox_factory: SandboxFactory, calls: Calls
) -> None:
    sbx = sandbox_factory("--records", "5", "--latency-ms", "1500", "--max-concurrent", "4")
    a, b = login(sbx), login(sbx)
    in_a = calls.start(lambda: a.get(sbx.url + LIST, timeout=60))
    until(sbx, "a running", lambda st: st["running"] == 1)
    in_b = calls.start(lambda: b.get(sbx.url + LIST, timeout=60))
    until(sbx, "a and b running together", lambda st: st["running"] == 2)
    assert [in_a.result(60)[0], in_b.result(60)[0]] == [200, 200]
    st = sbx.stats()
    assert st["max_parallel_in_one_session"] == 1
    assert st["license"]["max_active"] == 2  # overall concurrency reached 2
    assert st["session_lines"]["max_waiting"] == 0


def test_parallel_in_session_flag_restores_overlap(
    sandbox_factory: SandboxFactory, calls: Calls
) -> None:
    sbx = sandbox_factory("--records", "5", "--latency-ms", "1500", "--parallel-in-session")
    s = login(sbx)
    first = calls.start(lambda: s.get(sbx.url + LIST, timeout=60))
    until(sbx, "first running", lambda st: st["running"] == 1)
    second = calls.start(lambda: s.get(sbx.url + LIST, timeout=60))
    until(sbx, "both running in one session", lambda st: st["running"] == 2)
    assert [first.result(60)[0], second.result(60)[0]] == [200, 200]
    st = sbx.stats()
    assert st["max_parallel_in_one_session"] == 2
    assert st["session_lines"]["serialise"] is False


def test_bearer_with_scope_api_is_one_session_per_grant_across_refreshes(
    sandbox_factory: SandboxFactory, calls: Calls
) -> None:
    sbx = sandbox_factory("--records", "5", "--latency-ms", "1000")
    tokens = grant(sbx, "api offline_access")
    assert sbx.stats()["sessions_opened"] == 1  # the grant holds its seat
    h = bearer(tokens["access_token"])
    first = calls.start(lambda: requests.get(sbx.url + LIST, headers=h, timeout=60))
    until(sbx, "first running", lambda st: st["running"] == 1)
    second = calls.start(lambda: requests.get(sbx.url + LIST, headers=h, timeout=60))
    until(sbx, "second waits for the grant's session", lambda st: st["waiting"] == 1)
    assert [first.result(60)[0], second.result(60)[0]] == [200, 200]
    assert "ASP.NET_SessionId" not in first.result()[2].cookies  # no cookies without the scope
    c = sbx.credentials()
    r = requests.post(
        f"{sbx.url}/identity/connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": c["client_id"],
            "client_secret": c["client_secret"],
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert requests.get(sbx.url + LIST, headers=bearer(r.json()["access_token"]), timeout=30).ok
    st = sbx.stats()
    assert (st["sessions_opened"], st["active_sessions"]) == (1, 1)
    assert st["max_parallel_in_one_session"] == 1


# ---------------------------------------------------------------- api:concurrent_access


def test_concurrent_access_opens_a_session_per_cookieless_call_and_reuses_cookies(
    sandbox_factory: SandboxFactory,
) -> None:
    sbx = sandbox_factory("--records", "5", "--api-seats", "2")
    token = grant(sbx, "api offline_access api:concurrent_access")["access_token"]
    assert sbx.stats()["active_sessions"] == 0  # its sessions open with the calls
    h = bearer(token)
    one = requests.get(sbx.url + LIST, headers=h, timeout=30)
    two = requests.get(sbx.url + LIST, headers=h, timeout=30)
    assert (one.status_code, two.status_code) == (200, 200)
    sid1, sid2 = one.cookies["ASP.NET_SessionId"], two.cookies["ASP.NET_SessionId"]
    assert sid1 != sid2
    assert {sid1[:6], sid2[:6]} == {"sbxck-"}
    assert {".ASPXAUTH", "UserBranch"} <= set(one.cookies.keys())
    assert sbx.stats()["sessions_opened"] == 2
    # Sending the cookies back reuses the session: no new seat, no new cookies.
    again = requests.get(sbx.url + LIST, headers=h, cookies=one.cookies, timeout=30)
    assert again.status_code == 200
    assert "ASP.NET_SessionId" not in again.cookies
    st = sbx.stats()
    assert (st["sessions_opened"], st["active_sessions"]) == (2, 2)
    # Both seats taken: the next cookieless call is refused with "API Login Limit".
    third = requests.get(sbx.url + LIST, headers=h, timeout=30)
    assert third.status_code == 429
    assert third.json()["exceptionMessage"] == "API Login Limit"
    # The session cookie alone is not a credential: the bearer authenticates.
    assert requests.get(sbx.url + LIST, cookies=one.cookies, timeout=30).status_code == 401
    # Logout with the bearer + a cookie frees that session's seat, not the token.
    out = requests.post(f"{sbx.url}/entity/auth/logout", headers=h, cookies=one.cookies, timeout=30)
    assert out.status_code == 204
    st = sbx.stats()
    assert (st["active_sessions"], st["logouts"]) == (1, 1)
    gone = requests.get(sbx.url + LIST, headers=h, cookies=one.cookies, timeout=30)
    assert gone.status_code == 200  # the token lives on: a new session for the dead cookie
    assert gone.cookies["ASP.NET_SessionId"] not in (sid1, sid2)
    for cookies in (two.cookies, gone.cookies):
        requests.post(f"{sbx.url}/entity/auth/logout", headers=h, cookies=cookies, timeout=30)
    assert sbx.stats()["active_sessions"] == 0


def test_concurrent_access_sessions_run_in_parallel_each_one_serially(
    sandbox_factory: SandboxFactory, calls: Calls
) -> None:
    sbx = sandbox_factory("--records", "5", "--latency-ms", "1500", "--api-seats", "4")
    h = bearer(grant(sbx, "api api:concurrent_access")["access_token"])
    jars = [requests.get(sbx.url + LIST, headers=h, timeout=30).cookies for _ in range(2)]

    def in_session(i: int) -> Callable[[], requests.Response]:
        return lambda: requests.get(sbx.url + LIST, headers=h, cookies=jars[i], timeout=60)

    first = calls.start(in_session(0))
    until(sbx, "first running", lambda st: st["running"] == 1)
    other, same = calls.start(in_session(1)), calls.start(in_session(0))
    until(
        sbx, "the other runs, the same waits", lambda st: (st["running"], st["waiting"]) == (2, 1)
    )
    assert [f.result(60)[0] for f in (first, other, same)] == [200, 200, 200]
    st = sbx.stats()
    assert st["max_parallel_in_one_session"] == 1
    assert st["sessions_opened"] == 2


# ---------------------------------------------------------------- logout, idle seats, revocation


def test_logout_waits_for_the_running_request_and_later_ones_find_the_session_closed(
    sandbox_factory: SandboxFactory, calls: Calls
) -> None:
    sbx = sandbox_factory("--records", "5", "--latency-ms", "1500")
    s = login(sbx)
    running = calls.start(lambda: s.get(sbx.url + LIST, timeout=60))
    until(sbx, "request running", lambda st: st["running"] == 1)
    logout = calls.start(lambda: s.post(f"{sbx.url}/entity/auth/logout", timeout=60))
    until(sbx, "logout waits for it in the session's line", lambda st: st["waiting"] == 1)
    late = calls.start(lambda: s.get(sbx.url + LIST, timeout=60))
    until(sbx, "a later request waits behind the logout", lambda st: st["waiting"] == 2)
    ran, out, after = running.result(60), logout.result(60), late.result(60)
    # The running request finished normally; the logout then ended the session, so the
    # request queued behind the logout found it closed.
    assert (ran[0], out[0], after[0]) == (200, 204, 401)
    st = sbx.stats()
    assert (st["active_sessions"], st["logouts"]) == (0, 1)


def test_idle_times_differ_for_cookie_and_oauth_sessions(sandbox_factory: SandboxFactory) -> None:
    sbx = sandbox_factory(
        "--records",
        "5",
        "--api-seats",
        "3",
        "--session-idle-seconds",
        "1800",
        "--oauth-session-idle-seconds",
        "3600",
    )
    s = login(sbx)
    grant(sbx, "api")  # the grant's session, never used after
    assert sbx.stats()["active_sessions"] == 2
    sbx.admin("POST", "clock", {"advance_seconds": 1801})
    assert sbx.stats()["active_sessions"] == 1  # the cookie session timed out
    assert s.get(sbx.url + LIST, timeout=30).status_code == 401
    sbx.admin("POST", "clock", {"advance_seconds": 1800})
    assert sbx.stats()["active_sessions"] == 0  # the OAuth one after 3601 s idle


def test_revoking_tokens_does_not_free_the_seat(sandbox_factory: SandboxFactory) -> None:
    sbx = sandbox_factory("--records", "5", "--api-seats", "1")
    token = grant(sbx, "api offline_access")["access_token"]
    assert requests.get(sbx.url + LIST, headers=bearer(token), timeout=30).status_code == 200
    sbx.admin("POST", "revoke", {"what": "access_tokens"})
    sbx.admin("POST", "revoke", {"what": "refresh_tokens"})
    assert requests.get(sbx.url + LIST, headers=bearer(token), timeout=30).status_code == 401
    assert sbx.stats()["active_sessions"] == 1  # api.md §6: revoking does not free the seat
    c = sbx.credentials()
    body = {"name": c["username"], "password": c["password"], "tenant": c["tenant"]}
    r = requests.post(f"{sbx.url}/entity/auth/login", json=body, timeout=30)
    assert r.status_code == 429


# ---------------------------------------------------------------- counters


def test_stats_count_sessions_opened_and_failed_logins(sandbox_factory: SandboxFactory) -> None:
    sbx = sandbox_factory("--records", "5", "--api-seats", "5")
    st = sbx.stats()
    assert (st["sessions_opened"], st["failed_logins"], st["max_parallel_in_one_session"]) == (
        0,
        0,
        0,
    )
    s = login(sbx)
    assert s.get(sbx.url + LIST, timeout=30).status_code == 200
    h = bearer(grant(sbx, "api api:concurrent_access")["access_token"])
    for _ in range(2):
        assert requests.get(sbx.url + LIST, headers=h, timeout=30).status_code == 200
    bad = {"name": "admin", "password": "wrong", "tenant": "Company"}
    assert requests.post(f"{sbx.url}/entity/auth/login", json=bad, timeout=30).status_code == 500
    st = sbx.stats()
    assert (st["sessions_opened"], st["failed_logins"], st["max_parallel_in_one_session"]) == (
        3,
        1,
        1,
    )
    sbx.admin("POST", "reset")
    st = sbx.stats()
    assert (st["sessions_opened"], st["failed_logins"], st["max_parallel_in_one_session"]) == (
        0,
        0,
        0,
    )
