"""Issue 12 (10, 11): values unlike the endpoint document, and date-times without an offset.

docs/acumatica-api.md §3: older records carry values of another type than the document says
("0100" in an IntValue field), custom date-times come without an offset while standard fields
carry the tenant's, and a record may hold members the document does not know.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from tap_acumatica.contract.records import build_plan, page_decoder, to_utc, transform
from tap_acumatica.contract.values import Drift, coerce, unknown_members
from tests._taprun import run_tap, tap_config
from tests.support import Sandbox
from tests.sync.offline import offline_stream

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
ENCODE = msgspec.json.Encoder(decimal_format="number").encode
PLAIN = msgspec.json.Decoder(float_hook=Decimal)

SCHEMA: dict[str, Any] = {
    "properties": {
        "id": {"type": "string"},
        "Count": {"type": ["integer", "null"]},
        "Amount": {"type": ["number", "null"]},
        "Hold": {"type": ["boolean", "null"]},
        "Year": {"type": ["string", "null"]},
        "Shipped": {"type": ["string", "null"], "format": "date-time"},
        "Details": {
            "type": ["array", "null"],
            "items": {"type": "object", "properties": {"id": {}, "Qty": {"type": ["integer"]}}},
        },
        "custom": {
            "type": ["object", "null"],
            "properties": {
                "Document": {
                    "type": ["object", "null"],
                    "properties": {
                        "UsrAudited": {"type": ["string", "null"], "format": "date-time"},
                        "UsrScore": {"type": ["integer", "null"]},
                    },
                }
            },
        },
    }
}


@pytest.mark.parametrize(
    ("value", "declared", "expected"),
    [
        ("0100", "integer", 100),  # leading zeros are formatting: the same integer
        (" 42 ", "integer", 42),
        (Decimal("3.0"), "integer", 3),
        ("1:30", "integer", None),  # not an integer in any reading: cannot be kept typed
        (Decimal("2.5"), "integer", None),
        ("12.50", "number", Decimal("12.50")),  # exact, digits kept
        ("1e3", "number", Decimal("1e3")),
        ("n/a", "number", None),
        ("TRUE", "boolean", True),
        ("false", "boolean", False),
        ("yes", "boolean", None),
        (2024, "string", "2024"),
        (Decimal("201.73"), "string", "201.73"),
        (True, "string", None),
        (1706713200, "date-time", None),
    ],
)
def test_coercion_keeps_only_what_converts_exactly(
    value: Any, declared: str, expected: Any
) -> None:
    got = coerce(value, declared)
    assert got == expected
    assert type(got) is type(expected)


def _both(
    raw: list[dict[str, Any]], drift: Drift, zone: Any = None, *, typed: bool = True
) -> list[Any]:
    """Records of a page on the plain path, and on the typed one where its decoder takes it.

    Text, integer and boolean values are checked by the typed decoder: a page with one of
    another type is refused, and the client decodes it as plain JSON (``transform``).
    """
    plan = build_plan(SCHEMA, zone, drift)
    decoder, convert = page_decoder(plan, "T")
    body = ENCODE(raw)
    plain = [transform(row, plan) for row in PLAIN.decode(body)]
    if not typed:
        with pytest.raises(msgspec.ValidationError):
            decoder.decode(body)
        return plain
    assert [convert(row) for row in decoder.decode(body)] == plain
    return plain


def test_drifting_values_are_coerced_or_nulled_and_told_once_per_field() -> None:
    told: list[tuple[int, str]] = []
    drift = Drift("SalesOrder", lambda level, msg: told.append((level, msg)))
    raw = [
        {
            "id": f"r{i}",
            "Count": {"value": "0100"},
            "Amount": {"value": "12.50"},
            "Hold": {"value": "1:30"},
            "Year": {"value": 2024},
            "Shipped": {"value": 1706713200},
            "Details": [{"id": "d", "Qty": {"value": "0003"}}],
            "custom": {"Document": {"UsrScore": {"type": "CustomIntField", "value": "07"}}},
        }
        for i in range(3)
    ]
    out = _both(raw, drift, typed=False)
    assert out[2] == {
        "id": "r2",
        "Count": 100,
        "Amount": Decimal("12.50"),
        "Hold": None,
        "Year": "2024",
        "Shipped": None,
        "Details": [{"id": "d", "Qty": 3}],
        "custom": {"Document": {"UsrAudited": None, "UsrScore": 7}},
    }
    fields = [msg.split(" = ")[0] for _, msg in told]
    names = ("Count", "Amount", "Hold", "Year", "Shipped", "Details/Qty")
    expected = [f"SalesOrder: {f}" for f in (*names, "custom/Document.UsrScore")]
    assert sorted(fields) == sorted(expected)
    levels = {msg.split(" = ")[0].split(": ")[1]: level for level, msg in told}
    assert levels["Hold"] == levels["Shipped"] == logging.WARNING  # nulled
    assert levels["Count"] == logging.INFO  # coerced, the same value
    assert any("'0100' where the endpoint document says integer" in m for _, m in told)
    assert any("written as null" in m and "'1:30'" in m for _, m in told)


def test_a_drifting_number_is_coerced_on_the_typed_path_too() -> None:
    told: list[tuple[int, str]] = []
    raw = [{"id": "a", "Amount": {"value": "12.50"}, "Count": {"value": 3}}]
    out = _both(raw * 2, Drift("T", lambda level, msg: told.append((level, msg))))
    assert out[0] == {"id": "a", "Amount": Decimal("12.50"), "Count": 3}
    assert len(told) == 1  # both paths, two records: told once


def test_the_change_field_keeps_any_value_for_the_consistency_check() -> None:
    plan = build_plan(SCHEMA, None, Drift("T"), stamp="Shipped")
    assert transform({"id": "x", "Shipped": {"value": 17}}, plan)["Shipped"] == 17


def test_a_date_time_without_an_offset_is_read_in_the_tenant_zone() -> None:
    raw = [
        {
            "id": "a",
            "Shipped": {"value": "2024-07-01T09:30:00-04:00"},  # a standard field: offset kept
            "custom": {"Document": {"UsrAudited": {"type": "CustomDateTimeField", "value": s}}},
        }
        for s in ("2024-07-01T09:30:00", "2024-01-15T09:30:00.5", "2024-01-15T09:30:00Z")
    ]
    out = _both(raw, Drift("T"), NEW_YORK)
    audited = [r["custom"]["Document"]["UsrAudited"] for r in out]
    assert audited == [
        "2024-07-01T13:30:00.000000+00:00",  # EDT, -04:00: the same instant as Shipped
        "2024-01-15T14:30:00.500000+00:00",  # EST, -05:00
        "2024-01-15T09:30:00.000000+00:00",  # Z is UTC whatever the zone
    ]
    assert out[0]["Shipped"] == audited[0]
    # Without a zone (date_only_time_zone left at UTC) the clock time is taken as UTC, and
    # the stream says so once per field, naming the setting.
    told: list[str] = []
    utc = _both(raw, Drift("T", lambda level, msg: told.append(msg)), dt.timezone.utc)
    assert utc[0]["custom"]["Document"]["UsrAudited"] == "2024-07-01T09:30:00.000000+00:00"
    assert len(told) == 1
    assert "T: custom/Document.UsrAudited = '2024-07-01T09:30:00' has no offset" in told[0]
    assert "set date_only_time_zone" in told[0]
    assert to_utc("2024-07-01T09:30:00", dt.timezone.utc) == "2024-07-01T09:30:00.000000+00:00"


def test_unknown_members_are_named_once_per_stream(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plan = build_plan(SCHEMA)
    rows = [
        {"id": "a", "Count": {}, "New": {}, "Details": [{"id": "d", "Extra": {}}], "_links": {}}
    ]
    assert unknown_members(rows, plan) == {"New", "Details/Extra"}
    stream = offline_stream(SCHEMA, replication_key=None)
    monkeypatch.setattr(stream.endpoint, "path", lambda: "/entity/Default/24.200.001")
    monkeypatch.setattr(stream.endpoint, "contract", lambda: "4")
    answers: list[Any] = []

    def get_json(path: str, params: Any, *, stream: str, decoder: Any) -> Any:
        answers.append(decoder)
        body = ENCODE(rows)
        return PLAIN.decode(body) if decoder is None else decoder.decode(body)

    monkeypatch.setattr(stream.connection.client, "get_json", get_json)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert stream._records({})[0]["Details"] == [{"id": "d"}]
    named = [
        r.getMessage() for r in caplog.records if "not in the endpoint document" in r.getMessage()
    ]
    assert named == [
        "SalesOrder: Details/Extra is not in the endpoint document (a newer or customised "
        "endpoint?); it is dropped",
        "SalesOrder: New is not in the endpoint document (a newer or customised endpoint?); "
        "it is dropped",
    ]
    assert answers[0] is None  # the first page read as plain JSON, to see them
    assert all(d is not None for d in answers[1:])  # then typed again


def test_the_sandbox_drift_reaches_the_target_typed_as_the_document_says(
    sandbox_factory: Any,
) -> None:
    """Default sandbox: Shipment.PackageCount is served as "0012" (api.md §3)."""
    sbx: Sandbox = sandbox_factory("--seed", "6", "--records", "30", "--burst-size", "5")
    config = tap_config(
        sbx,
        entities=["Shipment", "Customer"],
        endpoint_version="24.200.001",
        custom_fields={"Customer": "all"},
        date_only_time_zone="America/New_York",
    )
    run = run_tap(config)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = [r.get("PackageCount") for r in run.records["Shipment"]]
    assert counts
    assert all(type(c) is int for c in counts), counts[:5]
    assert max(counts) > 0
    told = [line for line in run.stderr.splitlines() if "Shipment: PackageCount = " in line]
    assert len(told) == 1
    assert "where the endpoint document says integer" in told[0]
    # Custom date-times come without an offset, in the tenant's time (America/New_York).
    audited = {
        r["custom"]["CurrentCustomer"]["UsrLastAuditedOn"]
        for r in run.records["Customer"]
        if r["custom"]["CurrentCustomer"]["UsrLastAuditedOn"]
    }
    assert audited <= {"2020-08-17T09:50:43.000000+00:00", "2024-02-29T05:00:00.000000+00:00"}
    assert audited
