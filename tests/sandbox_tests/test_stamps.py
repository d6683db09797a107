"""Change-stamp fidelity of the sandbox (issue 11, api.md §3): SQL Server datetime ticks,
per-table stamps of details and linked entities, and how a filter literal's offset is read.

Real HTTP against private sandboxes; mutations are stamped with explicit ``at`` values or the
virtual clock, never with sleeps.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import requests

from tests.sandbox.stamps import sql_ms, sql_us
from tests.support import Sandbox, wait_for

V24 = "/entity/Default/24.200.001"
Factory = Callable[..., Sandbox]
DAY = "2026-06-01T12:00:00"  # after all generated history: nothing else is stamped that day


@contextlib.contextmanager
def session(sbx: Sandbox) -> Iterator[requests.Session]:
    creds = sbx.credentials()
    s = requests.Session()
    body = {"name": creds["username"], "password": creds["password"], "tenant": creds["tenant"]}
    r = s.post(f"{sbx.url}/entity/auth/login", json=body, timeout=30)
    assert r.status_code == 204, r.text
    try:
        yield s
    finally:
        s.post(f"{sbx.url}/entity/auth/logout", timeout=30)


def listed(s: requests.Session, sbx: Sandbox, entity: str, **params: str) -> list[dict[str, Any]]:
    r = s.get(
        f"{sbx.url}{V24}/{entity}", params={f"${k}": v for k, v in params.items()}, timeout=60
    )
    assert r.status_code == 200, r.text
    return r.json()


def between(
    field: str, lo: str | None, hi: str | None, lo_op: str = "ge", hi_op: str = "lt"
) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{field} {lo_op} datetimeoffset'{lo}'")
    if hi is not None:
        parts.append(f"{field} {hi_op} datetimeoffset'{hi}'")
    return " and ".join(parts)


def ids(records: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in records}


def truth_row(sbx: Sandbox, entity: str, rid: str) -> dict[str, Any]:
    (row,) = [r for r in sbx.ground_truth(entity)["live"] if r["id"] == rid]
    return row


# ---------------------------------------------------------------- precision


def test_sql_rounding_matches_sql_server_datetime() -> None:
    # SQL Server docs: .990/.991 → .990, .992-.994 → .993, .995-.998 → .997, .999 → +1 s
    want = [990, 990, 993, 993, 993, 997, 997, 997, 997, 1000]
    assert [sql_ms(990 + d) for d in range(10)] == want
    assert sql_us(4_500) == 3_000  # 1.35 ticks → 1 tick (.003)
    assert sql_us(5_000) == 7_000  # 1.5 ticks → 2 ticks (.007): rounds half up
    assert sql_us(8_000) == 7_000  # 2.4 ticks
    assert sql_us(8_400) == 10_000  # 2.52 ticks: nearer to .010 than to .00667


def _ms_digit(value: str) -> str:
    """The last millisecond digit of a returned date-time (fraction of 0-3 digits)."""
    m = re.search(r"T\d\d:\d\d:\d\d(?:\.(\d{1,3}))?", value)
    assert m is not None, value
    return (m.group(1) or "").ljust(3, "0")[-1]


def test_sql_precision_stamps_and_filters(sandbox_factory: Factory) -> None:
    sbx = sandbox_factory(
        "--seed", "3", "--records", "40", "--burst-size", "0", "--stamp-precision", "sql"
    )
    assert {r["changed"][-2] for r in sbx.ground_truth("Customer")["live"]} <= set("037")
    live = [r["id"] for r in sbx.ground_truth("Customer")["live"]]
    a = sbx.admin("POST", "mutate", {"entity": "Customer", "op": "update", "ids": live[:1],
                                     "at": f"{DAY}.005Z"})  # fmt: skip
    b = sbx.admin("POST", "mutate", {"entity": "Customer", "op": "update", "ids": live[1:2],
                                     "at": f"{DAY}.002Z"})  # fmt: skip
    assert a["changed"] == [f"{DAY}.007Z"]  # stored as datetime ticks
    assert b["changed"] == [f"{DAY}.003Z"]
    ra, rb = live[0], live[1]
    field = "LastModifiedDateTime"
    with session(sbx) as s:
        records = listed(s, sbx, "Customer", select=f"{field},CreatedDateTime")
        assert len(records) == len(live)
        for record in records:
            assert _ms_digit(record[field]["value"]) in set("037")
            assert _ms_digit(record["CreatedDateTime"]["value"]) in set("037")

        def got(lo: str | None, hi: str | None, lo_op: str = "ge", hi_op: str = "lt") -> set[str]:
            filt = between(field, lo and f"{DAY}{lo}Z", hi and f"{DAY}{hi}Z", lo_op, hi_op)
            return ids(listed(s, sbx, "Customer", filter=filt, select=field))

        # a 1 ms window at a record's own stamp rounds to [tick, tick): empty
        assert got(".007", ".008") == set()
        assert got(".003", ".004") == set()
        assert got(".002", ".003") == set()
        # a window that misses a stamp can return it: [.004, .005) is [tick 1, tick 2) ∋ .003
        assert got(".004", ".005") == {rb}
        assert got(".006", ".009") == {ra}  # [tick 2, tick 3)
        # at tick boundaries
        assert got(".007", None) == {ra}
        assert got(".005", None) == {ra}
        assert got(".007", None, lo_op="gt") == set()
        assert got(".006", None, lo_op="gt") == set()  # .006 is tick 2 (.007)
        assert got(".004", None, lo_op="gt") == {ra}  # .004 is tick 1 (.003)
        assert got(".000", ".008") == {rb}  # lt .008 is lt .007
        assert got(".000", ".009") == {ra, rb}
        assert got(".000", ".008", hi_op="le") == {ra, rb}
        record = s.get(f"{sbx.url}{V24}/Customer/{ra}", timeout=30).json()
        assert record[field]["value"] == "2026-06-01T08:00:00.007-04:00"  # New York, EDT


def test_ms_precision_keeps_the_millisecond(sandbox_factory: Factory) -> None:
    sbx = sandbox_factory(
        "--seed", "3", "--records", "20", "--burst-size", "0", "--stamp-precision", "ms"
    )
    out = sbx.admin(
        "POST", "mutate", {"entity": "Customer", "op": "update", "count": 1, "at": f"{DAY}.005Z"}
    )
    assert out["changed"] == [f"{DAY}.005Z"]
    field = "LastModifiedDateTime"
    with session(sbx) as s:
        window = listed(s, sbx, "Customer", filter=between(field, f"{DAY}.005Z", f"{DAY}.006Z"))
        assert ids(window) == set(out["ids"])
        assert listed(s, sbx, "Customer", filter=between(field, f"{DAY}.004Z", f"{DAY}.005Z")) == []


# ---------------------------------------------------------------- per-table stamps


def _detail_edit(sbx: Sandbox, entity: str, rid: str, member: str, **extra: Any) -> dict[str, Any]:
    sbx.admin("POST", "clock", {"advance_seconds": 1})  # every edit gets a later stamp
    body = {"entity": entity, "op": "detail", "ids": [rid], "member": member, **extra}
    return sbx.admin("POST", "mutate", body)


def test_detail_edit_moves_only_the_detail_stamp(sandbox_factory: Factory) -> None:
    sbx = sandbox_factory(
        "--seed", "4", "--records", "30", "--burst-size", "0", "--detail-touches-header", "0"
    )
    with session(sbx) as s:
        orders = [
            r for r in listed(s, sbx, "SalesOrder", expand="Details") if len(r["Details"]) >= 2
        ]
        order = orders[0]
        rid = order["id"]
        before = truth_row(sbx, "SalesOrder", rid)
        out = _detail_edit(sbx, "SalesOrder", rid, "Details", line=1)
        assert out["lines"] == [1]
        assert out["header_changed"] == [before["changed"]]
        after = truth_row(sbx, "SalesOrder", rid)
        assert after["changed"] == before["changed"]  # the header's stamp did not move
        assert after["detail_changed"] == out["changed"][0] > before["changed"]
        again = s.get(f"{sbx.url}{V24}/SalesOrder/{rid}", params={"$expand": "Details"}, timeout=30)
        record = again.json()
        assert record["LastModified"] == order["LastModified"]
        assert record["Details"][0] == order["Details"][0]
        assert record["Details"][1]["id"] == order["Details"][1]["id"]
        assert record["Details"][1] != order["Details"][1]  # the line itself changed
        # an incremental read on the header stamp cannot see it (api.md §3, §13)
        since = out["changed"][0].replace("Z", "+00:00")
        assert listed(s, sbx, "SalesOrder", filter=f"LastModified ge datetimeoffset'{since}'") == []

        customer = listed(s, sbx, "Customer", expand="MainContact,MainContact/Address", top="1")[0]
        cid = customer["id"]
        out = _detail_edit(sbx, "Customer", cid, "MainContact")
        got = s.get(
            f"{sbx.url}{V24}/Customer/{cid}",
            params={"$expand": "MainContact,MainContact/Address"},
            timeout=30,
        ).json()
        assert got["LastModifiedDateTime"] == customer["LastModifiedDateTime"]
        assert got["MainContact"]["id"] == customer["MainContact"]["id"]
        # the contact shows its own stamp; its address is another row, untouched
        stamp = got["MainContact"]["LastModifiedDateTime"]["value"]
        assert stamp != customer["MainContact"]["LastModifiedDateTime"]["value"]
        assert got["MainContact"]["Address"] == customer["MainContact"]["Address"]
        row = truth_row(sbx, "Customer", cid)
        assert row["detail_changed"] == out["changed"][0] > row["changed"]
        out = _detail_edit(sbx, "Customer", cid, "MainContact/Address")
        got2 = s.get(
            f"{sbx.url}{V24}/Customer/{cid}",
            params={"$expand": "MainContact,MainContact/Address"},
            timeout=30,
        ).json()
        assert got2["MainContact"]["LastModifiedDateTime"]["value"] == stamp
        assert got2["MainContact"]["Address"] != customer["MainContact"]["Address"]
        assert truth_row(sbx, "Customer", cid)["detail_changed"] == out["changed"][0]


def _touched(sbx: Sandbox, rids: list[str]) -> list[bool]:
    moved = []
    for rid in rids:
        before = truth_row(sbx, "SalesOrder", rid)["changed"]
        out = _detail_edit(sbx, "SalesOrder", rid, "Details")
        moved.append(out["header_changed"][0] != before)
        if moved[-1]:
            assert out["header_changed"] == out["changed"]  # "totals changed": same save
    return moved


def _order_ids(sbx: Sandbox, n: int) -> list[str]:
    with session(sbx) as s:
        orders = listed(s, sbx, "SalesOrder", expand="Details")
    return [r["id"] for r in orders if r["Details"]][:n]


def test_header_moves_sometimes_never_or_always(sandbox_factory: Factory) -> None:
    common = ("--seed", "5", "--records", "40", "--burst-size", "0")
    half = sandbox_factory(*common)
    moved = _touched(half, _order_ids(half, 16))
    assert any(moved)
    assert not all(moved)
    never = sandbox_factory(*common, "--detail-touches-header", "0")
    assert not any(_touched(never, _order_ids(never, 6)))
    always = sandbox_factory(*common, "--detail-touches-header", "1")
    assert all(_touched(always, _order_ids(always, 6)))


def test_writers_edit_details_with_their_own_stamps(sandbox_factory: Factory) -> None:
    sbx = sandbox_factory(
        "--seed", "6", "--records", "30", "--burst-size", "0", "--writers", "200",
        "--detail-edits", "on", "--detail-touches-header", "0",
    )  # fmt: skip

    def detail_only() -> list[dict[str, Any]]:
        rows = sbx.ground_truth("SalesOrder")["live"] + sbx.ground_truth("Customer")["live"]
        return [r for r in rows if r["detail_changed"] > r["changed"]]

    assert wait_for(lambda: len(detail_only()) >= 3, timeout=20)
    # sql precision is the default: writers' stamps are datetime ticks too
    rows = sbx.ground_truth("SalesOrder")["live"]
    assert {r["changed"][-2] for r in rows} | {r["detail_changed"][-2] for r in rows} <= set("037")


def test_detail_edits_off_leaves_writers_on_headers(sandbox_factory: Factory) -> None:
    sbx = sandbox_factory(
        "--seed", "6", "--records", "30", "--burst-size", "0", "--writers", "200",
        "--detail-edits", "off",
    )  # fmt: skip
    first = len(sbx.ground_truth("SalesOrder")["live"])
    assert wait_for(lambda: len(sbx.ground_truth("SalesOrder")["live"]) != first, timeout=20)
    assert all("detail_changed" not in r for r in sbx.ground_truth("SalesOrder")["live"])


def test_detail_edit_of_random_records(sandbox_factory: Factory) -> None:
    sbx = sandbox_factory("--seed", "2", "--records", "20", "--burst-size", "0")
    out = sbx.admin("POST", "mutate", {"entity": "SalesOrder", "op": "detail", "count": 3})
    assert len(out["ids"]) == len(out["lines"]) == len(out["changed"]) == 3
    assert out["member"] == "Details"
    truth = {r["id"]: r for r in sbx.ground_truth("SalesOrder")["live"]}
    for rid, stamp in zip(out["ids"], out["changed"], strict=True):
        assert truth[rid]["detail_changed"] == stamp


def test_bad_detail_edits_are_refused(sandbox_factory: Factory) -> None:
    sbx = sandbox_factory("--seed", "2", "--records", "10", "--burst-size", "0")
    rid = sbx.ground_truth("Customer")["live"][0]["id"]
    for body in (
        {"entity": "Customer", "op": "detail", "ids": [rid], "member": "Nope"},
        {"entity": "Subaccount", "op": "detail", "count": 1},
        {"entity": "Customer", "op": "detail", "ids": [rid], "member": "MainContact", "at": "x"},
    ):
        r = requests.post(f"{sbx.root}/_sandbox/mutate", json=body, timeout=30)
        assert r.status_code == 400, (body, r.text)


# ---------------------------------------------------------------- time semantics


def _placed(sbx: Sandbox) -> dict[str, str]:
    """Three Customers stamped 08:00Z, 13:00Z and 15:00Z on DAY's date."""
    live = [r["id"] for r in sbx.ground_truth("Customer")["live"]]
    day = DAY[:10]
    out = {}
    for name, rid, hour in (("a", live[0], "08"), ("b", live[1], "13"), ("c", live[2], "15")):
        body = {"entity": "Customer", "op": "update", "ids": [rid], "at": f"{day}T{hour}:00:00Z"}
        sbx.admin("POST", "mutate", body)
        out[name] = rid
    return out


def test_time_semantics_offset_vs_local(sandbox_factory: Factory) -> None:
    common = ("--seed", "8", "--records", "20", "--burst-size", "0")
    offset = sandbox_factory(*common)
    local = sandbox_factory(*common, "--time-semantics", "local")
    field = "LastModifiedDateTime"
    literal = f"{DAY[:10]}T10:00:00+03:00"  # 07:00Z; as New York clock time (EDT) 14:00Z
    found = {}
    for name, sbx in (("offset", offset), ("local", local)):
        placed = _placed(sbx)
        with session(sbx) as s:
            got = ids(listed(s, sbx, "Customer", filter=f"{field} ge datetimeoffset'{literal}'"))
            naive = ids(
                listed(s, sbx, "Customer", filter=f"{field} ge datetime'{DAY[:10]}T10:00:00'")
            )
            zulu = ids(
                listed(
                    s, sbx, "Customer", filter=f"{field} ge datetimeoffset'{DAY[:10]}T10:00:00Z'"
                )
            )
        found[name] = {k for k, v in placed.items() if v in got}
        assert {k for k, v in placed.items() if v in naive} == {"c"}  # no offset: local in both
        assert {k for k, v in placed.items() if v in zulu} == (
            {"b", "c"} if name == "offset" else {"c"}
        )
    assert found == {"offset": {"a", "b", "c"}, "local": {"c"}}
