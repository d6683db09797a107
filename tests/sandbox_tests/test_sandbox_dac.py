"""Sandbox DAC OData rows (issue 13; api.md §8, §10, §3 "Stamps are per table")."""

from __future__ import annotations

import functools
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.support import Sandbox, wait_for

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
LINE_KEYS = ("OrderType", "OrderNbr", "LineNbr")
Auth = tuple[str, str]


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    s = Sandbox("--seed", "5", "--records", "60", "--burst-size", "0")
    yield s
    s.stop()


def auth_of(sbx: Sandbox) -> Auth:
    creds = sbx.credentials()
    return creds["username"], creds["password"]


@pytest.fixture(scope="module")
def basic(sbx: Sandbox) -> Auth:
    return auth_of(sbx)


def get(sbx: Sandbox, auth: Auth, path: str, **params: str) -> requests.Response:
    return requests.get(
        f"{sbx.url}/t/Company/api/odata{path}", params=params, auth=auth, timeout=60
    )


def dac(sbx: Sandbox, auth: Auth, name: str, **params: str) -> list[dict[str, Any]]:
    r = get(sbx, auth, f"/dac/{name}", **params)
    assert r.status_code == 200, r.text
    assert r.headers["OData-Version"] == "4.0"
    value: list[dict[str, Any]] = r.json()["value"]
    return value


def truth(sbx: Sandbox, name: str) -> dict[str, Any]:
    got: dict[str, Any] = sbx.admin("GET", f"records/dac/{name}")
    return got


def key(row: dict[str, Any], keys: tuple[str, ...] = LINE_KEYS) -> tuple[Any, ...]:
    return tuple(row[k].rstrip() if isinstance(row[k], str) else row[k] for k in keys)


def test_rows_in_key_order_match_ground_truth_and_rest(sbx: Sandbox, basic: Auth) -> None:
    lines = dac(sbx, basic, "SOLine")
    assert [key(r) for r in lines] == sorted(key(r) for r in lines)  # no $orderby: key order
    assert len(lines) > 60
    first = lines[0]
    assert len(first["OrderNbr"]) == 15  # CHAR padding kept (§8)
    assert isinstance(first["CuryLineAmt"], int | float)
    assert first["LastModifiedDateTime"].endswith("Z")
    assert first["LastModifiedDateTime"][20:23][-1:] in "Z037"  # 1/300 s ticks
    gt = truth(sbx, "SOLine")
    assert [r["NoteID"] for r in lines] == [g["id"] for g in gt["live"]]
    assert gt["live"][0]["keys"] == dict(zip(LINE_KEYS, key(first), strict=True))
    # header NoteID = the REST record id (api.md §10)
    orders = dac(sbx, basic, "SOOrder", **{"$select": "NoteID"})
    assert {o["NoteID"] for o in orders} == {
        r["id"] for r in sbx.ground_truth("SalesOrder")["live"]
    }
    rest = rest_list(sbx, basic, "SalesOrder", **{"$expand": "Details", "$top": "5"})
    assert {o["NoteID"] for o in orders[:5]} == {o["id"] for o in rest}
    heads = {key(o, LINE_KEYS[:2]) for o in dac(sbx, basic, "SOOrder", **{"$top": "5"})}
    mine = {r["NoteID"] for r in lines if key(r)[:2] in heads}
    assert mine == {d["id"] for o in rest for d in o.get("Details", [])}  # line NoteID = REST id


def rest_list(sbx: Sandbox, auth: Auth, entity: str, **params: str) -> list[dict[str, Any]]:
    s = requests.Session()
    login = {"name": "admin", "password": auth[1]}
    assert s.post(f"{sbx.url}/entity/auth/login", json=login, timeout=30).status_code == 204
    try:
        url = f"{sbx.url}/entity/Default/24.200.001/{entity}"
        got: list[dict[str, Any]] = s.get(url, params=params, timeout=30).json()
    finally:
        s.post(f"{sbx.url}/entity/auth/logout", timeout=30)
    return got


def test_contact_and_address_rows_carry_the_rest_ids(sbx: Sandbox, basic: Auth) -> None:
    expand = {"$expand": "MainContact,MainContact/Address", "$top": "3"}
    customers = rest_list(sbx, basic, "Customer", **expand)
    for cust in customers:
        (row,) = dac(sbx, basic, "Customer", **{"$filter": f"NoteID eq {cust['id']}"})
        assert row["AcctCD"].rstrip() == cust["CustomerID"]["value"]
        flt = {"$filter": f"ContactID eq {row['DefContactID']}", "$expand": "AddressByDefAddressID"}
        (contact,) = dac(sbx, basic, "Contact", **flt)
        assert contact["NoteID"] == cust["MainContact"]["id"]
        assert contact["AddressByDefAddressID"]["NoteID"] == cust["MainContact"]["Address"]["id"]
        assert contact["BAccountID"] == row["BAccountID"]


def test_filter_orderby_top_skip_select(sbx: Sandbox, basic: Auth) -> None:
    every = dac(sbx, basic, "SOLine")
    stamps = sorted(r["LastModifiedDateTime"] for r in every)
    cut = stamps[len(stamps) // 2]
    got = dac(sbx, basic, "SOLine", **{"$filter": f"LastModifiedDateTime ge {cut}"})
    assert got == [r for r in every if r["LastModifiedDateTime"] >= cut]
    # the same instant with an offset
    utc = cut.rstrip("Z")
    hh = int(utc[11:13])
    local = f"{utc[:11]}{hh - 4:02d}{utc[13:]}-04:00" if hh >= 4 else None
    if local is not None:
        offset = dac(sbx, basic, "SOLine", **{"$filter": f"LastModifiedDateTime ge {local}"})
        assert offset == got
    flt = "(CuryLineAmt gt 100 and not (Completed eq true)) or OrderNbr eq '000003'"
    got = dac(sbx, basic, "SOLine", **{"$filter": flt})
    want = [
        r
        for r in every
        if (r["CuryLineAmt"] > 100 and r["Completed"] is not True) or key(r)[1] == "000003"
    ]
    assert got == want
    assert got
    guid = every[7]["NoteID"]
    assert dac(sbx, basic, "SOLine", **{"$filter": f"NoteID eq {guid}"}) == [every[7]]
    assert every[7] not in dac(sbx, basic, "SOLine", **{"$filter": f"NoteID ne {guid}"})
    ordered = dac(sbx, basic, "SOLine", **{"$orderby": "CuryLineAmt desc,LineNbr asc"})
    assert [(-r["CuryLineAmt"], r["LineNbr"]) for r in ordered] == sorted(
        (-r["CuryLineAmt"], r["LineNbr"]) for r in every
    )
    page = dac(sbx, basic, "SOLine", **{"$skip": "10", "$top": "5"})
    assert page == every[10:15]
    sel = dac(sbx, basic, "SOLine", **{"$select": "OrderNbr,CuryLineAmt", "$top": "2"})
    assert [set(r) for r in sel] == [{"OrderNbr", "CuryLineAmt"}] * 2


def test_keyset_filter_returns_exactly_the_next_rows(sbx: Sandbox, basic: Auth) -> None:
    order = "LastModifiedDateTime," + ",".join(LINE_KEYS)
    every = dac(sbx, basic, "SOLine", **{"$orderby": order})
    assert len(every) > 40
    for pos in (0, 17, len(every) - 3):
        row = every[pos]
        s, (t_, n, line) = row["LastModifiedDateTime"], key(row)
        after = (
            f"OrderType gt '{t_}' or (OrderType eq '{t_}' and (OrderNbr gt '{n}' or "
            f"(OrderNbr eq '{n}' and LineNbr gt {line})))"
        )
        flt = (
            "LastModifiedDateTime lt 2999-01-01T00:00:00.000Z and (LastModifiedDateTime gt "
            f"{s} or (LastModifiedDateTime eq {s} and ({after})))"
        )
        got = dac(sbx, basic, "SOLine", **{"$filter": flt, "$orderby": order, "$top": "10"})
        assert got == every[pos + 1 : pos + 11]


def test_expand_navigation(sbx: Sandbox, basic: Auth) -> None:
    orders = dac(sbx, basic, "SOOrder", **{"$expand": "SOLineCollection", "$top": "4"})
    lines = dac(sbx, basic, "SOLine")
    for order in orders:
        want = [r for r in lines if key(r)[:2] == key(order, LINE_KEYS[:2])]
        assert order["SOLineCollection"] == want
    line = dac(sbx, basic, "SOLine", **{"$expand": "SOOrderByOrderNbr", "$top": "1"})[0]
    assert key(line["SOOrderByOrderNbr"], LINE_KEYS[:2]) == key(line)[:2]
    cust = dac(sbx, basic, "Customer", **{"$expand": "ContactByDefContactID", "$top": "1"})[0]
    assert cust["ContactByDefContactID"]["ContactID"] == cust["DefContactID"]
    r = get(sbx, basic, "/dac/SOLine", **{"$expand": "Nope"})
    assert r.status_code == 400


def test_names_full_short_display_dotted(sbx: Sandbox, basic: Auth) -> None:
    want = dac(sbx, basic, "SOLine", **{"$top": "3"})
    for name in ("PX_Objects_SO_SOLine", "PX.Objects.SO.SOLine", quote("Sales Order Line")):
        assert dac(sbx, basic, name, **{"$top": "3"}) == want
    assert get(sbx, basic, "/dac/NoSuchDac").status_code == 404
    doc = get(sbx, basic, "/dac").json()
    names = {v["name"] for v in doc["value"]}
    for short, module in (("SOOrder", "SO"), ("SOLine", "SO"), ("ARInvoice", "AR"),
                          ("Customer", "AR"), ("Contact", "CR"), ("Address", "CR"),
                          ("InventoryItem", "IN")):  # fmt: skip
        assert f"PX_Objects_{module}_{short}" in names
        assert dac(sbx, basic, short, **{"$top": "2"})


def test_metadata_types_keys_navigation(sbx: Sandbox, basic: Auth) -> None:
    root = ET.fromstring(get(sbx, basic, "/dac/$metadata").content)  # noqa: S314
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    line = types["PX_Objects_SO_SOLine"]
    assert [k.get("Name") for k in line.iter(f"{EDM}PropertyRef")] == list(LINE_KEYS)
    props = {p.get("Name"): p.get("Type") for p in line.iter(f"{EDM}Property")}
    assert props["NoteID"] == "Edm.Guid"
    assert props["CuryLineAmt"] == "Edm.Decimal"
    assert props["LineNbr"] == "Edm.Int32"
    nav = {n.get("Name"): n.get("Type") for n in root.iter(f"{EDM}NavigationProperty")}
    assert nav["SOOrderByOrderNbr"] == "Default.PX_Objects_SO_SOOrder"
    assert nav["SOLineCollection"] == "Collection(Default.PX_Objects_SO_SOLine)"


def test_legacy_path_serves_rows(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--seed", "5", "--records", "20", "--burst-size", "0", "--legacy-odata")
    auth = auth_of(sbx)
    r = requests.get(
        f"{sbx.url}/odatav4/Company/SOLine", params={"$top": "2"}, auth=auth, timeout=30
    )
    assert r.status_code == 200
    assert r.json()["@odata.context"].startswith(f"{sbx.url}/odatav4/Company/$metadata#")
    assert len(r.json()["value"]) == 2
    assert get(sbx, auth, "/dac/SOLine").status_code == 404


def stamps_of(sbx: Sandbox, name: str) -> dict[str, str]:
    return {r["id"]: r["changed"] for r in truth(sbx, name)["live"]}


def test_a_change_moves_only_its_rows_stamp(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--seed", "6", "--records", "30", "--burst-size", "0")
    auth = auth_of(sbx)
    order = next(
        o
        for o in dac(sbx, auth, "SOOrder")
        if dac(sbx, auth, "SOLine", **{"$filter": f"OrderNbr eq '{o['OrderNbr'].rstrip()}'"})
    )
    lines0, orders0 = stamps_of(sbx, "SOLine"), stamps_of(sbx, "SOOrder")
    sbx.admin("POST", "clock", {"advance_seconds": 60})
    edit = {"entity": "SalesOrder", "op": "detail", "member": "Details", "ids": [order["NoteID"]],
            "line": 0, "touch_header": False}  # fmt: skip
    changed = sbx.admin("POST", "mutate", edit)["changed"][0]
    lines1, orders1 = stamps_of(sbx, "SOLine"), stamps_of(sbx, "SOOrder")
    moved = {i for i in lines1 if lines1[i] != lines0[i]}
    assert len(moved) == 1
    assert lines1[moved.pop()] == changed
    assert orders1 == orders0  # the line edit did not move the header's stamp
    (edited,) = dac(sbx, auth, "SOLine", **{"$filter": f"LastModifiedDateTime ge {changed}"})
    assert edited["LastModifiedDateTime"].rstrip("Z").ljust(23, "0")[:23] == changed[:23]
    sbx.admin("POST", "clock", {"advance_seconds": 60})
    upd = sbx.admin(
        "POST", "mutate", {"entity": "SalesOrder", "op": "update", "ids": [order["NoteID"]]}
    )
    orders2, lines2 = stamps_of(sbx, "SOOrder"), stamps_of(sbx, "SOLine")
    assert orders2[order["NoteID"]] == upd["changed"][0]
    assert {i for i in orders2 if orders2[i] != orders1[i]} == {order["NoteID"]}
    assert lines2 == lines1  # the header update did not move its lines' stamps
    # a Customer MainContact edit moves that Contact row only
    contacts0 = stamps_of(sbx, "Contact")
    cust = dac(sbx, auth, "Customer", **{"$top": "1"})[0]
    sbx.admin("POST", "mutate", {"entity": "Customer", "op": "detail", "member": "MainContact",
                                 "ids": [cust["NoteID"]], "touch_header": False})  # fmt: skip
    contacts1 = stamps_of(sbx, "Contact")
    moved_ids = {i for i in contacts1 if contacts1[i] != contacts0[i]}
    (contact,) = dac(sbx, auth, "Contact", **{"$filter": f"ContactID eq {cust['DefContactID']}"})
    assert moved_ids == {contact["NoteID"]}


def deleted(sbx: Sandbox, auth: Auth, name: str) -> list[dict[str, Any]]:
    r = get(sbx, auth, f"/dac/{name}/px.GetDeletedRecords()")
    assert r.status_code == 200, r.text
    value: list[dict[str, Any]] = r.json()["value"]
    return value


def test_deleting_an_order_deletes_its_lines(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--seed", "6", "--records", "30", "--burst-size", "0")
    auth = auth_of(sbx)
    lines = dac(sbx, auth, "SOLine")
    order = dac(sbx, auth, "SOOrder", **{"$filter": f"OrderNbr eq '{key(lines[0])[1]}'"})[0]
    own = {r["NoteID"] for r in lines if key(r)[:2] == key(order, LINE_KEYS[:2])}
    assert own
    gone = sbx.admin(
        "POST", "mutate", {"entity": "SalesOrder", "op": "delete", "ids": [order["NoteID"]]}
    )
    when = gone["changed"][0]
    assert {d["RefNoteID"] for d in deleted(sbx, auth, "SOOrder")} == {order["NoteID"]}
    got = deleted(sbx, auth, "SOLine")
    assert {d["RefNoteID"] for d in got} == own
    assert {d["DeleteDate"] for d in got} == {when}
    assert {d["id"] for d in truth(sbx, "SOOrder")["deleted"]} == {order["NoteID"]}
    gt = truth(sbx, "SOLine")
    assert {d["id"] for d in gt["deleted"]} == own
    assert not own & {r["id"] for r in gt["live"]}
    assert not own & {r["NoteID"] for r in dac(sbx, auth, "SOLine")}


def test_untracked_deletions(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "20", "--burst-size", "0", "--untracked-deletions", "SOLine")
    auth = auth_of(sbx)
    root = ET.fromstring(get(sbx, auth, "/dac/$metadata").content)  # noqa: S314
    bound = {
        next(f.iter(f"{EDM}Parameter")).get("Type")
        for f in root.iter(f"{EDM}Function")
        if f.get("Name") == "GetDeletedRecords"
    }
    assert "Collection(Default.PX_Objects_SO_SOOrder)" in bound
    assert "Collection(Default.PX_Objects_SO_SOLine)" not in bound
    r = get(sbx, auth, "/dac/SOLine/px.GetDeletedRecords()")
    assert r.status_code == 404
    assert "PX_Objects_SO_SOLine" in r.json()["error"]["message"]
    assert get(sbx, auth, "/dac/SOOrder/px.GetDeletedRecords()").status_code == 200
    assert get(sbx, auth, "/dac/SOLine", **{"$top": "1"}).status_code == 200


def test_gi_with_parameters(sbx: Sandbox, basic: Auth) -> None:
    every = get(sbx, basic, "/gi/SalesOrdersByStatus").json()["value"]
    opened = [r for r in every if r["Status"] == "Open"]
    assert opened
    assert len(opened) < len(every)
    direct = get(sbx, basic, "/gi/SalesOrdersByStatus_WithParameters(Status='Open')")
    assert direct.status_code == 200, direct.text
    assert direct.json()["value"] == opened
    alias = get(sbx, basic, "/gi/SalesOrdersByStatus_WithParameters(Status=@1)", **{"@1": "'Open'"})
    assert alias.json()["value"] == opened
    assert get(sbx, basic, "/gi/SalesOrdersByStatus_WithParameters(Status=@1)").status_code == 400
    assert get(sbx, basic, "/gi/SalesOrdersByStatus_WithParameters(Nope='x')").status_code == 404
    root = ET.fromstring(get(sbx, basic, "/gi/$metadata").content)  # noqa: S314
    imports = {f.get("Name"): f.get("EntitySet") for f in root.iter(f"{EDM}FunctionImport")}
    assert imports == {"SalesOrdersByStatus_WithParameters": "SalesOrdersByStatus"}
    (fn,) = [
        f for f in root.iter(f"{EDM}Function") if (f.get("Name") or "").endswith("_WithParameters")
    ]
    assert [p.get("Name") for p in fn.iter(f"{EDM}Parameter")] == ["Status"]


def test_gi_filter_on_formula_column_answers_empty_body(sbx: Sandbox, basic: Auth) -> None:
    r = get(
        sbx,
        basic,
        "/gi/SalesOrdersByStatus",
        **{"$filter": "LastActivityOn gt 2020-01-01T00:00:00Z"},
    )
    assert r.status_code == 200
    assert r.content == b""
    ok = get(
        sbx,
        basic,
        "/gi/SalesOrdersByStatus",
        **{"$filter": "LastModifiedOn gt 2020-01-01T00:00:00Z"},
    )
    assert ok.json()["value"]
    ordered = get(sbx, basic, "/gi/SalesOrdersByStatus", **{"$orderby": "LastActivityOn"})
    assert ordered.json()["value"]


def test_big_metadata(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "20", "--burst-size", "0", "--big-metadata")
    auth = auth_of(sbx)
    r = get(sbx, auth, "/dac/$metadata")
    assert len(r.content) >= 15 * 1024 * 1024
    assert b'<EntityType Name="PX_Objects_SO_SOLine">' in r.content
    names = [v["name"] for v in get(sbx, auth, "/dac").json()["value"]]
    assert len(names) > 1000
    assert dac(sbx, auth, names[0]) == []
    again = time.monotonic()
    assert len(get(sbx, auth, "/dac/$metadata").content) == len(r.content)
    assert time.monotonic() - again < 10  # cached, not rebuilt per request


def test_writers_change_dac_rows(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "30", "--burst-size", "0", "--writers", "100")
    before = {name: stamps_of(sbx, name) for name in ("SOOrder", "SOLine", "Contact")}

    def changed(name: str) -> bool:
        return stamps_of(sbx, name) != before[name]

    for name in before:
        assert wait_for(functools.partial(changed, name), timeout=30, interval=0.2), name
    auth = auth_of(sbx)
    rows = dac(sbx, auth, "SOLine")
    assert len({r["NoteID"] for r in rows}) == len(rows)


def test_paging_two_thousand_rows_is_fast(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--records", "800", "--burst-size", "0")
    auth = auth_of(sbx)
    order = "LastModifiedDateTime," + ",".join(LINE_KEYS)
    total, slowest, skip = 0, 0.0, 0
    while True:
        start = time.monotonic()
        page = dac(sbx, auth, "SOLine", **{"$orderby": order, "$top": "100", "$skip": str(skip)})
        slowest = max(slowest, time.monotonic() - start)
        total += len(page)
        skip += 100
        if len(page) < 100:
            break
    assert total >= 1500
    assert slowest < 2.0, slowest
