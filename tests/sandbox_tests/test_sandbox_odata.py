"""Sandbox OData (api.md §8, §10): GI service document, $metadata, queries, deleted records."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support import Sandbox, password_grant

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    s = Sandbox("--seed", "3", "--records", "60", "--burst-size", "0")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def basic(sbx: Sandbox) -> tuple[str, str]:
    creds = sbx.credentials()
    return creds["username"], creds["password"]


def gi(sbx: Sandbox, auth: Any, path: str = "", **params: str) -> requests.Response:
    url = f"{sbx.url}/t/Company/api/odata/gi{path}"
    return requests.get(url, params=params, auth=auth, timeout=30)


def rows(sbx: Sandbox, auth: Any, name: str, **params: str) -> list[dict[str, Any]]:
    r = gi(sbx, auth, f"/{name}", **params)
    assert r.status_code == 200, r.text
    assert r.headers["OData-Version"] == "4.0"
    value: list[dict[str, Any]] = r.json()["value"]
    return value


def test_service_document_and_metadata(sbx: Sandbox, basic: tuple[str, str]) -> None:
    doc = gi(sbx, basic).json()
    assert doc["@odata.context"].endswith("/t/Company/api/odata/gi/$metadata")
    names = [v["name"] for v in doc["value"]]
    assert len(names) >= 2
    assert all(v["kind"] == "EntitySet" for v in doc["value"])
    meta = gi(sbx, basic, "/$metadata")
    assert meta.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(meta.content)  # noqa: S314  (our own loopback server)
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    sets = {s.get("Name") for s in root.iter(f"{EDM}EntitySet")}
    assert set(names) == set(types) == sets
    stock = types["ModifiedStockItems"]
    assert [k.get("Name") for k in stock.iter(f"{EDM}PropertyRef")] == ["InventoryID"]
    props = {p.get("Name"): p.get("Type") for p in stock.iter(f"{EDM}Property")}
    assert props["LastModifiedOn"] == "Edm.DateTimeOffset"
    assert props["DefaultPrice"] == "Edm.Decimal"


def test_gi_rows_match_rest_records(sbx: Sandbox, basic: tuple[str, str]) -> None:
    data = rows(sbx, basic, "ModifiedStockItems")
    assert len(data) == len(sbx.ground_truth("StockItem")["live"])
    first = data[0]
    assert first["InventoryID"].endswith(" ")  # CHAR padding kept (§8)
    assert isinstance(first["DefaultPrice"], str)
    assert first["DefaultPrice"].split(".")[1].__len__() == 6  # "1999.000000"
    assert "+" not in first["LastModifiedOn"]
    assert not first["LastModifiedOn"].endswith("Z")
    ids = [r["InventoryID"].rstrip() for r in data]
    assert ids == sorted(ids)  # key order without $orderby
    # The display name with spaces addresses the same inquiry.
    assert rows(sbx, basic, "Modified Stock Items", **{"$top": "3"}) == data[:3]


def test_gi_top_skip_select_orderby(sbx: Sandbox, basic: tuple[str, str]) -> None:
    every = rows(sbx, basic, "SalesOrders")
    page = rows(sbx, basic, "SalesOrders", **{"$skip": "5", "$top": "4"})
    assert page == every[5:9]
    sel = rows(sbx, basic, "SalesOrders", **{"$select": "OrderNbr,OrderTotal", "$top": "2"})
    assert [set(r) for r in sel] == [{"OrderNbr", "OrderTotal"}] * 2
    ordered = rows(sbx, basic, "SalesOrders", **{"$orderby": "OrderTotal desc,OrderNbr"})
    totals = [float(r["OrderTotal"]) for r in ordered]
    assert totals == sorted(totals, reverse=True)
    assert len(ordered) == len(every)


def test_gi_filter(sbx: Sandbox, basic: tuple[str, str]) -> None:
    every = rows(sbx, basic, "SalesOrders")
    cut = sorted(r["LastModifiedOn"] for r in every)[len(every) // 2]
    # A literal without offset is tenant-local time, like the values.
    got = rows(sbx, basic, "SalesOrders", **{"$filter": f"LastModifiedOn ge {cut}"})
    assert got == [r for r in every if r["LastModifiedOn"] >= cut]
    assert got
    status = every[0]["Status"]
    flt = f"Status eq '{status}' and not (OrderTotal lt 100) or startswith(OrderNbr,'00001')"
    got = rows(sbx, basic, "SalesOrders", **{"$filter": flt})
    expected = [
        r
        for r in every
        if (r["Status"] == status and not float(r["OrderTotal"]) < 100)
        or r["OrderNbr"].startswith("00001")
    ]
    assert got == expected
    padded = every[0]["CustomerID"].rstrip()
    got = rows(sbx, basic, "SalesOrders", **{"$filter": f"CustomerID eq '{padded}'"})
    assert got
    assert all(r["CustomerID"].rstrip() == padded for r in got)
    got = rows(sbx, basic, "CustomerList", **{"$filter": "contains(CustomerName,'a')"})
    assert all("a" in r["CustomerName"] for r in got)


def test_gi_filter_timezone(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory(
        "--seed", "3", "--records", "20", "--tz", "Asia/Tokyo", "--burst-size", "0"
    )
    creds = sbx.credentials()
    auth = (creds["username"], creds["password"])
    every = rows(sbx, auth, "CustomerList")
    value = every[3]["LastModifiedOn"]  # Tokyo local time, no offset
    local = dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone(dt.timedelta(hours=9)))
    literal = local.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    got = rows(sbx, auth, "CustomerList", **{"$filter": f"LastModifiedOn eq {literal}"})
    assert every[3] in got


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"$filter": "Nope eq 1"}, "Nope"),
        ({"$filter": "OrderTotal eq"}, "Syntax"),
        ({"$filter": "OrderTotal eq 1 )"}, "Syntax"),
        ({"$select": "Nope"}, "Nope"),
        ({"$orderby": "Nope"}, "$orderby"),
        ({"$top": "-1"}, "$top"),
        ({"$expand": "Details"}, "$expand"),
        ({"$count": "true"}, "$count"),
    ],
)
def test_gi_bad_queries(
    sbx: Sandbox, basic: tuple[str, str], params: dict[str, str], fragment: str
) -> None:
    r = gi(sbx, basic, "/SalesOrders", **params)
    assert r.status_code == 400
    assert fragment in r.json()["error"]["message"]


def test_auth_required_bearer_and_tenant(sbx: Sandbox, basic: tuple[str, str]) -> None:
    r = gi(sbx, None)
    assert r.status_code == 401
    assert "Basic" in r.headers["WWW-Authenticate"]
    assert gi(sbx, ("admin", "wrong")).status_code == 401
    tok = password_grant(sbx, scope="api")["access_token"]
    r = requests.get(
        f"{sbx.url}/t/Company/api/odata/gi/CustomerList",
        headers={"Authorization": f"Bearer {tok}"},
        timeout=30,
    )
    assert r.status_code == 200
    assert (
        requests.get(f"{sbx.url}/t/Other/api/odata/gi", auth=basic, timeout=30).status_code == 404
    )
    assert gi(sbx, basic, "/NoSuchInquiry").status_code == 404
    # Basic auth is a conventional user: it takes no API seat.
    requests.post(
        f"{sbx.url}/entity/auth/logout", headers={"Authorization": f"Bearer {tok}"}, timeout=30
    )
    gi(sbx, basic, "/CustomerList")
    assert sbx.stats()["active_sessions"] == 0


def deleted(sbx: Sandbox, auth: Any, dac: str, **params: str) -> requests.Response:
    url = f"{sbx.url}/t/Company/api/odata/dac/{dac}/px.GetDeletedRecords()"
    return requests.get(url, params=params, auth=auth, timeout=30)


def test_get_deleted_records(sandbox_factory: Callable[..., Sandbox]) -> None:
    sbx = sandbox_factory("--seed", "4", "--records", "30", "--deleted-keep-days", "10")
    creds = sbx.credentials()
    auth = (creds["username"], creds["password"])
    before = {r["RefNoteID"] for r in deleted(sbx, auth, "SOOrder").json()["value"]}
    gone = sbx.admin("POST", "mutate", {"entity": "SalesOrder", "op": "delete", "count": 3})["ids"]
    r = deleted(sbx, auth, "SOOrder")
    assert r.status_code == 200
    body = r.json()
    assert "@odata.context" in body
    new = [v for v in body["value"] if v["RefNoteID"] not in before]
    assert {v["RefNoteID"] for v in new} == set(gone)
    assert all(v["DeleteDate"].endswith("Z") for v in new)
    truth = {d["id"] for d in sbx.ground_truth("SalesOrder")["deleted"]}
    assert set(gone) <= truth
    # RefNoteID = the REST record's id: GET by id no longer finds it.
    s = requests.Session()
    s.post(
        f"{sbx.url}/entity/auth/login",
        json={"name": "admin", "password": creds["password"]},
        timeout=30,
    )
    r = s.get(f"{sbx.url}/entity/Default/24.200.001/SalesOrder/{gone[0]}", timeout=30)
    assert r.status_code == 500
    # Full DAC names and $filter on DeleteDate work.
    stamp = new[0]["DeleteDate"]
    r = deleted(sbx, auth, "PX_Objects_SO_SOOrder", **{"$filter": f"DeleteDate ge {stamp}"})
    assert {v["RefNoteID"] for v in r.json()["value"]} >= set(gone)
    r = deleted(sbx, auth, "SOOrder", **{"$filter": "DeleteDate gt 2999-01-01T00:00:00Z"})
    assert r.json()["value"] == []
    assert deleted(sbx, auth, "NoSuchDac").status_code == 404
    # Tracked deletions are kept 10 days (SM207010 "Days to Keep Records").
    sbx.admin("POST", "clock", {"advance_seconds": 10 * 86400 + 60})
    assert deleted(sbx, auth, "SOOrder").json()["value"] == []


def test_dac_service_document_and_metadata(sbx: Sandbox, basic: tuple[str, str]) -> None:
    base = f"{sbx.url}/t/Company/api/odata/dac"
    doc = requests.get(base, auth=basic, timeout=30).json()
    assert doc["@odata.context"] == f"{base}/$metadata"
    names = [v["name"] for v in doc["value"]]
    assert "PX_Objects_SO_SOOrder" in names
    assert "PX_Objects_AR_Customer" in names
    assert not any(n.endswith("_Sub") for n in names)  # Subaccount has no change tracking
    meta = requests.get(f"{base}/$metadata", auth=basic, timeout=30)
    assert meta.status_code == 200
    assert meta.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(meta.content)  # noqa: S314  (our own loopback server)
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    assert set(types) == {s.get("Name") for s in root.iter(f"{EDM}EntitySet")} == set(names)
    order = types["PX_Objects_SO_SOOrder"]
    keys = [k.get("Name") for k in order.iter(f"{EDM}PropertyRef")]
    assert keys == ["OrderType", "OrderNbr"]
    props = {p.get("Name"): p.get("Type") for p in order.iter(f"{EDM}Property")}
    assert props["NoteID"] == "Edm.Guid"
    assert props["LastModifiedDateTime"] == "Edm.DateTimeOffset"
    bound = {
        next(f.iter(f"{EDM}Parameter")).get("Type")
        for f in root.iter(f"{EDM}Function")
        if f.get("Name") == "GetDeletedRecords" and f.get("IsBound") == "true"
    }
    assert bound == {f"Collection(Default.{n})" for n in names}
    returns = {r.get("Type") for r in root.iter(f"{EDM}ReturnType")}
    assert returns == {"Collection(PX.Api.ODataV4.DeletedRecord)"}
    (record,) = [c for c in root.iter(f"{EDM}ComplexType") if c.get("Name") == "DeletedRecord"]
    fields = {p.get("Name"): p.get("Type") for p in record.iter(f"{EDM}Property")}
    assert fields == {"RefNoteID": "Edm.Guid", "DeleteDate": "Edm.DateTimeOffset"}
    # every entity set in the document answers px.GetDeletedRecords(), but those built from
    # the default failing entities (api.md §9): --forbidden Employee 403, --not-set-up Project 500
    failing = {"PX_Objects_EP_EPEmployee": 403, "PX_Objects_PM_PMProject": 500}
    for name in names:
        status = failing.get(name, 200)
        assert deleted(sbx, basic, name).status_code == status, name
    # issue 13: DAC rows are served (tests/sandbox_tests/test_sandbox_dac.py)
    assert requests.get(f"{base}/SOOrder", auth=basic, timeout=30).status_code == 200
    assert requests.get(f"{base}/NoSuchDac", auth=basic, timeout=30).status_code == 404
