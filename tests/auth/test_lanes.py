"""``auth.sessions.Lanes``: which thread sends in which server session (no network)."""

from __future__ import annotations

import threading

import requests

from tap_acumatica.auth.sessions import Lanes


def _jar(**cookies: str) -> requests.cookies.RequestsCookieJar:
    jar = requests.cookies.RequestsCookieJar()
    for name, value in cookies.items():
        jar.set(name, value)
    return jar


def _lane_of_new_thread(lanes: Lanes) -> int:
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(lanes.current()))
    t.start()
    t.join()
    return got[0]


def test_threads_spread_over_lanes_and_keep_theirs() -> None:
    lanes = Lanes(3)
    main = lanes.current()
    others = [_lane_of_new_thread(lanes) for _ in range(3)]
    assert [main, *others] == [0, 1, 2, 0]  # the fourth thread shares the least used lane
    assert lanes.current() == main


def test_refused_lane_is_dropped_only_when_another_session_is_open() -> None:
    lanes = Lanes(4)
    assert not lanes.drop(0)  # nothing open: the caller waits for a seat instead
    assert lanes.keep(0, _jar(**{"ASP.NET_SessionId": "a", ".ASPXAUTH": "x"}))
    assert lanes.drop(1)
    assert lanes.alive == 1  # lanes not opened yet would be refused as well
    assert _lane_of_new_thread(lanes) == 0
    assert lanes.take_all() == ["ASP.NET_SessionId=a; .ASPXAUTH=x"]
    assert lanes.cookies == {}


def test_only_session_cookies_replace_a_lane() -> None:
    lanes = Lanes(1)
    assert not lanes.keep(0, _jar(Other="1"))  # no session named: not a session's answer
    assert lanes.keep(0, _jar(Other="1"), opened=True)  # the answer to a sign-in
    assert lanes.keep(0, _jar(**{"ASP.NET_SessionId": "b"}))  # replaced by the server
    assert lanes.cookie() == "Other=1; ASP.NET_SessionId=b"


def test_one_session_opens_at_a_time() -> None:
    lanes = Lanes(2)
    assert lanes.cookie_or_open(lambda: None) is None  # this thread opens lane 0
    assert lanes.opening.locked()
    assert lanes.settle(_jar(**{"ASP.NET_SessionId": "s0"})) == 0
    assert not lanes.opening.locked()
    assert lanes.cookie_or_open(lambda: None) == "ASP.NET_SessionId=s0"
    assert lanes.settle(None) is None
