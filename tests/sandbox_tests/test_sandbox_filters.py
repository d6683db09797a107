"""$filter in the sandbox: the OData v3 subset of api.md §4, its errors, and the fast path."""
# ruff: noqa: E501  (the case table reads best one case per line)

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.sandbox.data import Dataset
from tests.sandbox.entities import V24
from tests.sandbox.errors import ApiError

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
UTC = dt.timezone.utc
NY = dt.timezone(dt.timedelta(hours=-5))


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return Dataset(seed=3, records=150, tz="America/New_York", now=lambda: NOW, burst_size=200)


@pytest.fixture(scope="module")
def rows(ds: Dataset) -> dict[str, list[dict[str, Any]]]:
    return {e: list(ds.rows(e)) for e in ("SalesOrder", "Customer", "StockItem", "Contact")}


def ids(ds: Dataset, entity: str, flt: str, **extra: str) -> list[str]:
    params = {"$filter": flt, **{f"${k}": v for k, v in extra.items()}}
    body, _ = ds.list_records(V24, entity, params)
    return [r["id"] for r in json.loads(body)]


def oracle(rows: list[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [r["id"] for r in rows if pred(r)]


def cf(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def at(*args: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


CASES: list[tuple[str, str, Callable[[dict[str, Any]], bool]]] = [
    ("SalesOrder", "Status eq 'Open'", lambda r: r["Status"] == "Open"),
    ("SalesOrder", "Status eq 'open'", lambda r: r["Status"] == "Open"),  # case-insensitive
    ("SalesOrder", "Status ne 'Open'", lambda r: r["Status"] != "Open"),
    ("SalesOrder", "OrderTotal gt 500", lambda r: r["OrderTotal"] is not None and r["OrderTotal"] > 500),
    ("SalesOrder", "OrderTotal le 100.5m", lambda r: r["OrderTotal"] is not None and r["OrderTotal"] <= 100.5),
    ("SalesOrder", "Hold eq true", lambda r: r["Hold"] is True),
    ("SalesOrder", "Hold", lambda r: r["Hold"] is True),
    ("SalesOrder", "not Hold", lambda r: r["Hold"] is not True),
    ("SalesOrder", "OrderType eq 'SO' and (Status eq 'Open' or Status eq 'Completed')",
     lambda r: r["OrderType"] == "SO" and r["Status"] in {"Open", "Completed"}),
    ("SalesOrder", "OrderType eq 'SO' and Status eq 'Open' or Status eq 'Completed'",
     lambda r: (r["OrderType"] == "SO" and r["Status"] == "Open") or r["Status"] == "Completed"),
    ("SalesOrder", "not (OrderType eq 'SO')", lambda r: r["OrderType"] != "SO"),
    ("SalesOrder", "CustomerOrder eq null", lambda r: r["CustomerOrder"] is None),
    ("SalesOrder", "CustomerOrder ne null", lambda r: r["CustomerOrder"] is not None),
    ("SalesOrder", "CustomerOrder gt ''", lambda r: r["CustomerOrder"] is not None and r["CustomerOrder"] > ""),
    ("SalesOrder", "startswith(Description,'Rush')", lambda r: (r["Description"] or "").startswith("Rush")),
    ("SalesOrder", "endswith(Description, 'ORDER')",
     lambda r: cf(r["Description"] or "").endswith("order") and r["Description"] is not None),
    ("SalesOrder", "substringof('café', Description)", lambda r: "café" in cf(r["Description"] or "")),
    ("SalesOrder", "startswith(Description,'Rush') eq false",
     lambda r: not (r["Description"] or "").startswith("Rush")),  # empty field: false
    ("SalesOrder", "Description eq 'Tab\tseparated and new\nline'",
     lambda r: r["Description"] == "Tab\tseparated and new\nline"),
    ("Customer", "CustomerName eq 'O''Brien Hardware & Co.'", lambda r: r["CustomerName"] == "O'Brien Hardware & Co."),
    ("Customer", "CustomerName eq '東京商事株式会社'", lambda r: r["CustomerName"] == "東京商事株式会社"),
    ("Customer", "BAccountID ge 7010 and BAccountID lt 7020", lambda r: 7010 <= r["BAccountID"] < 7020),
    ("SalesOrder", "LastModified gt datetimeoffset'2024-01-01T00:00:00Z'",
     lambda r: r["LastModified"] > at(2024, 1, 1)),
    ("SalesOrder", "LastModified ge datetimeoffset'2024-07-15T10:31:28.402+03:00' and LastModified lt datetimeoffset'2025-01-01T00:00:00.000-05:00'",
     lambda r: at(2024, 7, 15, 7, 31, 28, 402000) <= r["LastModified"] < at(2025, 1, 1, 5)),
    # no offset: tenant-local time (America/New_York, EST in January)
    ("SalesOrder", "LastModified lt datetimeoffset'2023-01-01T00:00:00.000'",
     lambda r: r["LastModified"] < at(2023, 1, 1, 5)),
    ("SalesOrder", "LastModified lt datetime'2023-01-01T00:00:00'",
     lambda r: r["LastModified"] < at(2023, 1, 1, 5)),
    ("SalesOrder", "datetimeoffset'2024-01-01T00:00:00Z' lt LastModified",
     lambda r: r["LastModified"] > at(2024, 1, 1)),
    ("SalesOrder", "Date ge datetime'2024-03-01T00:00:00' and Date lt datetime'2024-04-01T00:00:00'",
     lambda r: at(2024, 3, 1, 5) <= r["Date"] < at(2024, 4, 1, 4)),
    ("SalesOrder", "(LastModified gt datetimeoffset'2024-01-01T00:00:00Z') and Status eq 'Open'",
     lambda r: r["LastModified"] > at(2024, 1, 1) and r["Status"] == "Open"),
    ("SalesOrder", "LastModified gt datetimeoffset'2024-01-01T00:00:00Z' or Status eq 'Open'",
     lambda r: r["LastModified"] > at(2024, 1, 1) or r["Status"] == "Open"),
    ("StockItem", "LastModifiedDateTime le datetimeoffset'2023-06-30T23:59:59.999+00:00'",
     lambda r: r["LastModifiedDateTime"] <= at(2023, 6, 30, 23, 59, 59, 999000)),
    ("StockItem", "ItemStatus eq 'Active' and LastModified gt datetimeoffset'2022-11-14T00:00:00.000'",
     lambda r: r["ItemStatus"] == "Active" and r["LastModified"] > at(2022, 11, 14, 5)),
    ("Contact", "ContactID eq 105", lambda r: r["ContactID"] == 105),
]  # fmt: skip


@pytest.mark.parametrize(("entity", "flt", "pred"), CASES, ids=[c[1][:60] for c in CASES])
def test_filter_matches_oracle(
    ds: Dataset,
    rows: dict[str, list[dict[str, Any]]],
    entity: str,
    flt: str,
    pred: Callable[[dict[str, Any]], bool],
) -> None:
    want = oracle(rows[entity], pred)
    assert ids(ds, entity, flt) == want
    assert want or "null" in flt or "'" in flt  # most cases select something


def test_guid_literal(ds: Dataset, rows: dict[str, list[dict[str, Any]]]) -> None:
    target = rows["SalesOrder"][5]["id"]
    assert ids(ds, "SalesOrder", f"NoteID eq guid'{target}'") == [target]
    assert ids(ds, "SalesOrder", f"NoteID eq '{target.upper()}'") == [target]


def test_burst_is_reachable_by_exact_timestamp(ds: Dataset) -> None:
    t = ds.tables["SalesOrder"]
    stamp = dt.datetime.fromtimestamp(t.burst_ms / 1000, UTC).isoformat()
    got = ids(ds, "SalesOrder", f"LastModified eq datetimeoffset'{stamp}'")
    assert len(got) == 200


def test_fast_path_agrees_with_per_record_evaluation(ds: Dataset) -> None:
    cut = "datetimeoffset'2023-09-01T08:00:00.5-04:00'"
    fast = ids(ds, "SalesOrder", f"LastModified gt {cut}", top="37", skip="11")
    slow = ids(ds, "SalesOrder", f"not (LastModified le {cut})", top="37", skip="11")
    assert fast == slow
    assert len(fast) == 37


def test_linked_paths_and_custom_functions(ds: Dataset) -> None:
    body, _ = ds.list_records(
        V24, "Customer", {"$expand": "MainContact", "$custom": "CurrentCustomer.UsrLoyaltyTier"}
    )
    recs = json.loads(body)
    email = next(v for r in recs if (v := r["MainContact"]["Email"].get("value")))
    want = [r["id"] for r in recs if r["MainContact"]["Email"].get("value") == email]
    assert ids(ds, "Customer", f"MainContact/Email eq '{email}'") == want
    tier = [
        r["id"]
        for r in recs
        if r["custom"]["CurrentCustomer"]["UsrLoyaltyTier"]["value"] == "Battery"
    ]
    flt = "cf.String(f='CurrentCustomer.UsrLoyaltyTier') eq 'Battery'"
    assert ids(ds, "Customer", flt) == tier
    assert tier
    score = "cf.Int(f='CurrentCustomer.UsrCreditScore') ge 42"
    assert set(ids(ds, "Customer", score)) < {r["id"] for r in recs}


def test_filtered_fields_come_back_even_without_select(ds: Dataset) -> None:
    body, _ = ds.list_records(
        V24, "SalesOrder", {"$filter": "Status eq 'Open'", "$select": "OrderNbr", "$top": "3"}
    )
    for rec in json.loads(body):
        assert set(rec) == {"id", "rowNumber", "note", "OrderNbr", "Status", "custom", "_links"}


def test_empty_filter_means_no_filter(ds: Dataset) -> None:
    assert len(ids(ds, "Customer", "  ")) == 150


@pytest.mark.parametrize(
    ("flt", "fragment"),
    [
        ("Nope eq 1", "Could not find a property named 'Nope' on type 'Default.SalesOrder'"),
        ("Status eq", "Syntax error at position"),
        ("Status eq 'Open' and", "Syntax error"),
        ("(Status eq 'Open'", "Syntax error"),
        ("Status eq 'Open')", "Syntax error"),
        ("Status eq 'unterminated", "Syntax error"),
        ("Status == 'Open'", "Syntax error"),
        ("Status like 'Open'", "unknown operator 'like'"),
        ("Status eq 'Open' && Hold", "Syntax error"),
        ("tolower(Status) eq 'open'", "Unknown function 'tolower'"),
        ("Status eq 5", "incompatible types"),
        ("OrderTotal eq 'x'", "incompatible types"),
        ("LastModified gt '2024-01-01'", "incompatible types"),
        ("LastModified gt datetimeoffset'yesterday'", "Unrecognized 'Edm.DateTimeOffset' literal"),
        ("NoteID eq guid'123'", "Unrecognized 'Edm.Guid' literal"),
        ("Details/InventoryID eq 'X'", "detail entity 'Details'"),
        ("ShipToAddress/Nope eq 'X'", "'Nope' on type 'Default.Address'"),
        ("Totals eq 'x'", "cannot be used in $filter"),
        ("Status", "must evaluate to a Boolean"),
        ("cf.String(f='Document.UsrNope') eq 'x'", "UsrNope"),
        ("cf.Bogus(f='Document.AttributePRODUCT') eq 'x'", "Unknown function 'cf.Bogus'"),
        ("startswith(OrderTotal, '1')", "No function signature"),
        ("Status eq 'Open' or", "Syntax error"),
    ],
)
def test_bad_filters_answer_acumatica_500(ds: Dataset, flt: str, fragment: str) -> None:
    with pytest.raises(ApiError) as err:
        ds.list_records(V24, "SalesOrder", {"$filter": flt})
    assert err.value.status == 500
    body = err.value.body
    assert set(body) == {"message", "exceptionMessage", "exceptionType", "stackTrace"}
    assert body["message"] == "An error has occurred."
    assert fragment in body["exceptionMessage"], body["exceptionMessage"]


def test_filter_on_get_by_key_is_validated(ds: Dataset) -> None:
    rec = json.loads(ds.list_records(V24, "Customer", {"$top": "1"})[0])[0]
    with pytest.raises(ApiError):
        ds.get_record(V24, "Customer", [rec["id"]], {"$filter": "Nope eq 1"})
