"""A 2026 R2 instance: ``--endpoints``, contract 5 on Default/26.200.001 (issue 11, api.md §1.1)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.sandbox import contract5
from tests.support import Sandbox, password_grant

FOUR = "23.200.001,24.200.001,25.200.001,26.200.001"
V24, V25, V26 = "24.200.001", "25.200.001", "26.200.001"
WINDOW4 = (
    "{f} ge datetimeoffset'2024-01-01T00:00:00Z' and {f} lt datetimeoffset'2025-01-01T00:00:00Z'"
)


class Client:
    """A signed-in (bearer) HTTP client of one sandbox."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {password_grant(box)['access_token']}"

    def get(self, version: str, path: str, **params: str) -> requests.Response:
        url = f"{self.box.url}/entity/Default/{version}/{path}"
        return self.http.get(url, params=params, timeout=60)

    def ok(self, version: str, path: str, **params: str) -> Any:
        r = self.get(version, path, **params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def c5(sandbox_factory: Callable[..., Sandbox]) -> Client:
    box = sandbox_factory("--endpoints", FOUR, "--records", "60", "--burst-size", "10")
    return Client(box)


def _refused(r: requests.Response, needle: str) -> None:
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["exceptionType"] == "Microsoft.OData.ODataException"
    assert needle in body["exceptionMessage"]


def test_default_is_a_2026_r2_instance(sandbox: Sandbox) -> None:
    # api.md §1.1: current instances list Default up to 26.200.001 (contract 5)
    listed = requests.get(f"{sandbox.url}/entity", timeout=30).json()["endpoints"]
    assert [e["version"] for e in listed] == FOUR.split(",")


def test_endpoints_flag_lists_the_versions(c5: Client) -> None:
    listed = requests.get(f"{c5.box.url}/entity", timeout=30).json()["endpoints"]
    assert [(e["name"], e["version"]) for e in listed] == [("Default", v) for v in FOUR.split(",")]
    assert all(e["href"] == f"/entity/Default/{e['version']}/" for e in listed)
    with pytest.raises(argparse.ArgumentTypeError):
        contract5.parse_endpoints("24.200.001,27.200.001")


def test_swagger_carries_the_contract(c5: Client) -> None:
    docs = {v: c5.ok(v, "swagger.json") for v in FOUR.split(",")}
    for v, doc in docs.items():
        assert doc["info"] == {"title": f"Default/{v}", "version": "5" if v == V26 else "4"}
    # 25.200.001 keeps 24's entities and shapes (api.md §1.1)
    assert json.loads(json.dumps(docs[V25]).replace(V25, V24)) == docs[V24]
    schemas = docs[V26]["components"]["schemas"]
    props = schemas["SalesOrder"]["allOf"][1]["properties"]
    ref = "#/components/schemas/"
    assert props["Status"] == {"$ref": ref + "StringSingleSelectValue"}
    assert props["Date"] == {"$ref": ref + "DateOnlyValue"}
    assert props["LastModifiedDateTime"] == {"$ref": ref + "DateTimeValue"}
    assert "LastModified" not in props
    assert props["OrderType"] == {"$ref": ref + "StringValue"}  # a selector, not a fixed list
    inv = schemas["SalesInvoice"]["allOf"][1]["properties"]
    assert inv["Type"] == {"$ref": ref + "StringSingleSelectValue"}
    assert "LastModified" not in schemas["StockItem"]["allOf"][1]["properties"]
    assert schemas["StringSingleSelectValue"]["properties"]["value"] == {
        "$ref": ref + "SingleSelectOption"
    }
    assert schemas["DateOnlyValue"]["properties"]["value"]["format"] == "date"
    assert "custom" not in docs[V26]["components"]["parameters"]
    assert "custom" in docs[V24]["components"]["parameters"]
    template = c5.ok(V26, "SalesOrder/$adHocSchema")
    assert "LastModifiedDateTime" in template
    assert "LastModified" not in template
    assert "Document" in template["custom"]


@pytest.mark.parametrize(
    ("entity", "field4", "literal"),
    [
        ("SalesOrder", "LastModified", "{}T00:00:00.000+00:00"),
        ("Customer", "LastModifiedDateTime", "{}T00:00:00Z"),
    ],
)
def test_bare_literal_matches_contract4(c5: Client, entity: str, field4: str, literal: str) -> None:
    ids4 = [r["id"] for r in c5.ok(V24, entity, **{"$filter": WINDOW4.format(f=field4)})]
    lo, hi = literal.format("2024-01-01"), literal.format("2025-01-01")
    f5 = f"LastModifiedDateTime ge {lo} and LastModifiedDateTime lt {hi}"
    ids5 = [r["id"] for r in c5.ok(V26, entity, **{"$filter": f5})]
    assert ids4, "the window must hold records"
    assert ids5 == ids4
    # date-only literal: bare on 26, date'…' on 24
    if entity == "SalesOrder":
        d4 = [r["id"] for r in c5.ok(V24, entity, **{"$filter": "Date ge date'2024-06-01'"})]
        assert d4
        assert d4 == [r["id"] for r in c5.ok(V26, entity, **{"$filter": "Date ge 2024-06-01"})]


def test_typed_literal_and_old_names_are_refused_on_26(c5: Client) -> None:
    window = WINDOW4.format(f="LastModifiedDateTime")
    assert c5.ok(V24, "Customer", **{"$filter": window})
    _refused(c5.get(V26, "Customer", **{"$filter": window}), "is not supported")
    old = "LastModifiedDateTime gt datetime'2024-01-01T00:00'"
    _refused(c5.get(V26, "Customer", **{"$filter": old}), "is not supported")
    # 26.200.001 keeps only LastModifiedDateTime (api.md §1.1)
    _refused(
        c5.get(V26, "SalesOrder", **{"$filter": "LastModified gt 2024-01-01T00:00:00Z"}),
        "LastModified",
    )
    _refused(c5.get(V26, "StockItem", **{"$select": "LastModified"}), "LastModified")


def test_parenthesised_expand_and_select(c5: Client) -> None:
    (rec,) = c5.ok(
        V26,
        "Customer",
        **{
            "$top": "1",
            "$expand": "MainContact($expand=Address;$select=Email,Address)",
            "$select": "CustomerID",
        },
    )
    assert set(rec) == {"id", "rowNumber", "note", "CustomerID", "MainContact", "custom", "_links"}
    contact = rec["MainContact"]
    assert {"Email", "Address"} <= set(contact)
    assert "DisplayName" not in contact
    assert "City" in contact["Address"]
    # the same as contract 4's slash form on 24
    (rec4,) = c5.ok(
        V24,
        "Customer",
        **{
            "$top": "1",
            "$expand": "MainContact,MainContact/Address",
            "$select": "CustomerID,MainContact/Email,MainContact/Address",
        },
    )
    assert rec4["MainContact"]["Address"] == contact["Address"]
    assert rec4["MainContact"]["Email"] == contact["Email"]
    # nested $select without a top-level one: every top-level field stays
    (order,) = c5.ok(V26, "SalesOrder", **{"$top": "1", "$expand": "Details($select=InventoryID)"})
    assert "OrderNbr" in order
    assert "LastModifiedDateTime" in order
    assert all(set(d) == {"id", "rowNumber", "note", "InventoryID", "custom", "_links"}
               for d in order["Details"])  # fmt: skip


def test_slash_paths_are_refused_on_26(c5: Client) -> None:
    _refused(c5.get(V26, "Customer", **{"$expand": "MainContact/Address"}), "MainContact/Address")
    _refused(
        c5.get(V26, "SalesOrder", **{"$expand": "Details", "$select": "Details/InventoryID"}),
        "Details/InventoryID",
    )
    assert c5.ok(V24, "Customer", **{"$top": "1", "$expand": "MainContact/Address"})


def test_custom_fields_go_in_select(c5: Client) -> None:
    _refused(c5.get(V26, "SalesOrder", **{"$custom": "Document.UsrRushOrder"}), "$custom")
    (rec,) = c5.ok(
        V26,
        "SalesOrder",
        **{
            "$top": "1",
            "$select": "OrderNbr,Document.UsrRushOrder",
            "$expand": "Details($select=InventoryID,Transactions.UsrGiftWrap)",
        },
    )
    (rec4,) = c5.ok(
        V24,
        "SalesOrder",
        **{
            "$top": "1",
            "$select": "OrderNbr,Details/InventoryID",
            "$expand": "Details",
            "$custom": "Document.UsrRushOrder,Details/Transactions.UsrGiftWrap",
        },
    )
    assert rec["custom"] == rec4["custom"]
    assert [d["custom"] for d in rec["Details"]] == [d["custom"] for d in rec4["Details"]]


def test_record_shapes_26_vs_24(c5: Client) -> None:
    orders = c5.ok(V24, "SalesOrder", **{"$top": "40"})
    for rec4 in orders:
        rec5 = c5.ok(V26, f"SalesOrder/{rec4['id']}")
        assert rec5["id"] == rec4["id"]
        text = rec4["Status"]["value"]
        code = contract5.single_select_id("SalesOrder", "Status", text)
        assert rec5["Status"] == {"value": {"id": code, "description": text}}
        for name in ("Date", "RequestedOn"):
            day = rec5[name]["value"]
            assert len(day) == 10
            assert rec4[name]["value"].startswith(day + "T00:00:00")
        assert rec5["LastModifiedDateTime"] == rec4["LastModified"]
        assert "LastModified" not in rec5
        assert "LastModifiedDateTime" not in rec4
        assert rec5["OrderType"] == rec4["OrderType"]  # not a single-select
        assert rec5["_links"]["self"].startswith(f"/entity/Default/{V26}/SalesOrder/")
    seen = {r["Status"]["value"] for r in orders}
    codes = {t: contract5.single_select_id("SalesOrder", "Status", t) for t in seen}
    assert codes.get("Open", "N") == "N"
    assert codes.get("Completed", "C") == "C"
    assert codes.get("On Hold", "H") == "H"
    assert len(set(codes.values())) == len(codes)
    # a single-select key: its id (INV/CRM) works in the URL too
    inv4 = c5.ok(V24, "SalesInvoice", **{"$top": "1"})[0]
    inv5 = c5.ok(V26, f"SalesInvoice/{inv4['id']}")
    code = inv5["Type"]["value"]["id"]
    assert code in {"INV", "CRM"}
    assert inv5["Type"]["value"]["description"] == inv4["Type"]["value"]
    by_key = c5.ok(V26, f"SalesInvoice/{code}/{inv4['ReferenceNbr']['value']}")
    assert by_key["id"] == inv4["id"]
    # 25.200.001 answers exactly like 24.200.001 (links aside)
    rec25 = c5.ok(V25, f"SalesOrder/{orders[0]['id']}")
    assert json.loads(json.dumps(rec25).replace(V25, V24)) == orders[0] | {"rowNumber": 1}
