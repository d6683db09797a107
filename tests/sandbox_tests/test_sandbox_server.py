"""Sandbox process and HTTP server: CLI contract, routing, admin API, license limits, overlap."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.sandbox.limits import DeclinedError, Limiter
from tests.support import REPO, Sandbox, wait_for

V24 = "/entity/Default/24.200.001"


def cookie_session(sbx: Sandbox) -> requests.Session:
    creds = sbx.credentials()
    s = requests.Session()
    body = {"name": creds["username"], "password": creds["password"], "tenant": creds["tenant"]}
    r = s.post(f"{sbx.url}/entity/auth/login", json=body, timeout=30)
    assert r.status_code == 204, r.text
    return s


# ---------------------------------------------------------------- process contract


def test_help_documents_every_option() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.sandbox", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for option in (
        "--port", "--seed", "--records", "--big-entity", "--big-records", "--tz", "--site-path",
        "--legacy-odata", "--type-drift", "--login-delay-ms",
        "--api-seats", "--session-idle-seconds", "--max-concurrent", "--per-minute",
        "--latency-ms", "--per-record-us", "--access-token-ttl", "--refresh-lifetime-days",
        "--sliding-days", "--auto-approve", "--writers", "--faults", "--fault-seed",
        "--token-delay-ms", "--burst-size", "--redirect-port",
    ):  # fmt: skip
        assert option in out, option


def test_first_line_is_url_and_sigterm_exits_cleanly() -> None:
    sbx = Sandbox("--records", "5")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sbx.url)
    assert requests.get(f"{sbx.url}/entity", timeout=30).status_code == 200
    sbx.proc.send_signal(signal.SIGTERM)
    assert sbx.proc.wait(timeout=15) == 0


def test_site_path(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "5", "--site-path", "AcumaticaERP/")
    assert sbx.url.endswith("/AcumaticaERP")
    assert sbx.root + "/AcumaticaERP" == sbx.url
    body = requests.get(f"{sbx.url}/entity", timeout=30).json()
    assert body["endpoints"][0]["href"].startswith("/AcumaticaERP/entity/Default/")
    assert requests.get(f"{sbx.root}/entity", timeout=30).status_code == 404
    s = cookie_session(sbx)
    assert s.get(f"{sbx.url}{V24}/Customer?$top=1", timeout=30).status_code == 200
    # Stats paths are relative to the instance URL; the admin API lives at the root.
    paths = {row["path"] for row in sbx.stats()["requests"]}
    assert f"{V24}/Customer" in paths


# ---------------------------------------------------------------- routing and stats


def test_endpoint_list_without_auth(sandbox: Sandbox) -> None:
    body = requests.get(f"{sandbox.url}/entity", timeout=30).json()
    assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"]["acumaticaBuildVersion"])
    versions = {(e["name"], e["version"]) for e in body["endpoints"]}
    assert {("Default", "23.200.001"), ("Default", "24.200.001")} <= versions
    assert all(e["href"] == f"/entity/Default/{e['version']}/" for e in body["endpoints"])


def test_unknown_routes_and_methods(sandbox: Sandbox) -> None:
    s = cookie_session(sandbox)
    try:
        assert (
            s.get(f"{sandbox.url}/entity/Default/99.200.001/Customer", timeout=30).status_code
            == 404
        )
        assert s.get(f"{sandbox.url}{V24}/NoSuchEntity", timeout=30).status_code == 404
        r = s.put(f"{sandbox.url}{V24}/Customer", json={}, timeout=30)
        assert r.status_code == 405
        assert "does not support http method 'PUT'" in r.json()["message"]
        assert s.get(f"{sandbox.url}/nowhere", timeout=30).status_code == 404
    finally:
        s.post(f"{sandbox.url}/entity/auth/logout", timeout=30)


def test_stats_count_requests_and_queries(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "10")
    s = cookie_session(sbx)
    for _ in range(3):
        s.get(f"{sbx.url}{V24}/Customer", params={"$top": "2", "$select": "CustomerID"}, timeout=30)
    requests.get(f"{sbx.url}{V24}/Customer", timeout=30)  # 401
    st = sbx.stats()
    rows = {(r["method"], r["path"], r["status"]): r["count"] for r in st["requests"]}
    assert rows[("GET", f"{V24}/Customer", 200)] == 3
    assert rows[("GET", f"{V24}/Customer", 401)] == 1
    assert rows[("POST", "/entity/auth/login", 204)] == 1
    assert st["requests_total"] == 5
    assert st["queries"][-1] == {
        "path": f"{V24}/Customer",
        "params": {"$top": "2", "$select": "CustomerID"},
    }
    assert st["max_in_flight"] >= 1
    assert st["logins"] == 1
    sbx.admin("POST", "reset")
    st = sbx.stats()
    assert (st["requests_total"], st["active_sessions"], st["queries"]) == (0, 0, [])


def test_clock_endpoint(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "5")
    before = sbx.admin("GET", "clock")
    after = sbx.admin("POST", "clock", {"advance_seconds": 86400})
    assert after["offset_seconds"] >= 86400
    assert after["now"] > before["now"]
    assert after["now"].endswith("Z")


# ---------------------------------------------------------------- license limits (§6)


def _burst(sbx: Sandbox, n: int, path: str = f"{V24}/Customer?$top=1") -> list[int]:
    """n concurrent requests, each on its own connection, released together."""
    cookies = cookie_session(sbx).cookies.get_dict()
    gate = threading.Barrier(n)

    def one(_: int) -> int:
        with requests.Session() as s:
            s.get(f"{sbx.url}/entity", timeout=60)  # connect first
            gate.wait(30)
            return s.get(sbx.url + path, cookies=cookies, timeout=60).status_code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_requests_overlap_and_latency(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory(
        "--records",
        "5",
        "--max-concurrent",
        "0",
        "--latency-ms",
        "300",
        "--per-record-us",
        "100000",
    )
    assert _burst(sbx, 6) == [200] * 6
    assert sbx.stats()["max_in_flight"] >= 4
    s = cookie_session(sbx)
    started = time.monotonic()
    r = s.get(f"{sbx.url}{V24}/Customer?$top=3", timeout=30)
    assert time.monotonic() - started >= 0.3 + 0.1 * len(r.json())


def test_max_concurrent_caps_processing(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "5", "--max-concurrent", "2", "--latency-ms", "200")
    assert _burst(sbx, 6) == [200] * 6
    st = sbx.stats()
    assert st["max_in_flight"] == 2
    assert st["license"]["max_queued"] >= 1


def test_more_than_20_queued_get_429(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "5", "--max-concurrent", "1", "--latency-ms", "150")
    statuses = _burst(sbx, 30)
    assert statuses.count(429) >= 1
    assert statuses.count(200) >= 21
    assert sbx.stats()["license"]["declined"] == statuses.count(429)


def test_per_minute_budget_slows_requests(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "5", "--per-minute", "120")
    s = cookie_session(sbx)  # the login is request 1 of the minute
    for _ in range(59):  # requests 2..60: within the first half of the budget
        assert s.get(f"{sbx.url}{V24}/Customer?$top=1", timeout=30).status_code == 200
    assert sbx.stats()["license"]["delayed"] == 0
    started = time.monotonic()
    assert s.get(f"{sbx.url}{V24}/Customer?$top=1", timeout=30).status_code == 200
    # (time left in the minute) / (60 requests left) ~ 1 s: a real wait, not a refusal.
    assert time.monotonic() - started >= 0.5
    assert sbx.stats()["license"]["delayed"] == 1


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_per_minute_slow_down_formula() -> None:
    """api.md §6: past half the budget, delay = time left in the minute / requests left."""
    t = FakeTime()
    lim = Limiter(max_concurrent=4, per_minute=10, monotonic=t.monotonic, sleep=t.sleep)
    for _ in range(5):  # the first half of the budget is not delayed
        with lim.slot():
            pass
    assert t.slept == []
    t.now += 20  # 20 s into the minute, 5 requests used, 5 remaining: 40 s / 5 = 8 s each
    for _ in range(5):
        with lim.slot():
            pass
    assert t.slept == [pytest.approx(8.0)] * 5
    assert t.now == pytest.approx(1060.0)
    t.slept.clear()
    with lim.slot():  # a new minute starts: no delay
        pass
    assert t.slept == []
    assert lim.stats()["delayed"] == 5


def test_queue_declines_past_20_waiting() -> None:
    lim = Limiter(max_concurrent=1)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with lim.slot():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    waiting: list[threading.Thread] = []

    def queued() -> None:
        with lim.slot():
            pass

    for _ in range(20):
        th = threading.Thread(target=queued)
        th.start()
        waiting.append(th)
    deadline = time.monotonic() + 5
    while lim.queued < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lim.queued == 20
    with pytest.raises(DeclinedError), lim.slot():
        pass
    release.set()
    holder.join(5)
    for th in waiting:
        th.join(5)
    assert lim.queued == 0
    assert lim.declined == 1


# ---------------------------------------------------------------- data through the server


def test_entity_routes_serve_the_dataset(sandbox: Sandbox) -> None:
    s = cookie_session(sandbox)
    try:
        r = s.get(f"{sandbox.url}{V24}/Customer", params={"$top": "3"}, timeout=30)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("application/json")
        page = r.json()
        assert [rec["rowNumber"] for rec in page] == [1, 2, 3]
        first = page[0]
        by_id = s.get(f"{sandbox.url}{V24}/Customer/{first['id']}", timeout=30).json()
        key = first["CustomerID"]["value"]
        by_key = s.get(f"{sandbox.url}{V24}/Customer/{key}", timeout=30).json()
        assert by_id["id"] == by_key["id"] == first["id"]
        missing = s.get(f"{sandbox.url}{V24}/Customer/NO-SUCH-KEY", timeout=30)
        assert missing.status_code == 500
        assert missing.json()["exceptionMessage"] == "No entity satisfies the condition."
        bad = s.get(f"{sandbox.url}{V24}/Customer", params={"$filter": "Nope eq 1"}, timeout=30)
        assert bad.status_code >= 400
        assert {"message", "exceptionMessage", "exceptionType"} <= set(bad.json())
        adhoc = s.get(f"{sandbox.url}{V24}/Customer/$adHocSchema", timeout=30)
        assert adhoc.status_code == 200
        assert "custom" in adhoc.json()
        rows = {(q["path"]) for q in sandbox.stats()["queries"]}
        assert f"{V24}/Customer/{{id}}" in rows
        assert f"{V24}/Customer/{{keys}}" in rows
    finally:
        s.post(f"{sandbox.url}/entity/auth/logout", timeout=30)


def test_swagger_routes(sandbox: Sandbox) -> None:
    assert requests.get(f"{sandbox.url}{V24}/swagger.json", timeout=30).status_code == 401
    doc = requests.get(f"{sandbox.url}{V24}/swagger.json?company=Company", timeout=30).json()
    assert doc["openapi"] == "3.0.1"
    old = "/entity/Default/23.200.001/swagger.json?company=Company"
    assert requests.get(sandbox.url + old, timeout=30).json()["swagger"] == "2.0"
    inst = requests.get(f"{sandbox.url}/entity/swagger.json", timeout=30).json()
    assert "/auth/login" in inst["paths"]


def test_mutate_shows_up_in_lists_and_ground_truth(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "20", "--burst-size", "0")
    s = cookie_session(sbx)
    before = sbx.ground_truth("Customer")
    out = sbx.admin("POST", "mutate", {"entity": "Customer", "op": "insert", "count": 2})
    assert len(out["ids"]) == 2
    after = sbx.ground_truth("Customer")
    assert len(after["live"]) == len(before["live"]) + 2
    listed = s.get(f"{sbx.url}{V24}/Customer", timeout=30).json()
    assert {r["id"] for r in listed} == {r["id"] for r in after["live"]}
    sbx.admin("POST", "mutate", {"entity": "Customer", "op": "delete", "ids": out["ids"][:1]})
    assert out["ids"][0] in {d["id"] for d in sbx.ground_truth("Customer")["deleted"]}


def test_background_writers(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "20", "--writers", "200")

    def snapshot() -> tuple[Any, ...]:
        gt = sbx.ground_truth("SalesOrder"), sbx.ground_truth("Customer")
        return tuple(
            (len(g["live"]), len(g["deleted"]), max(r["changed"] for r in g["live"])) for g in gt
        )

    first = snapshot()
    assert wait_for(lambda: snapshot() != first, timeout=10)
