"""Typed page decoding (msgspec structs) gives exactly the records of the plain-JSON path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tap_acumatica.contract import records
from tap_acumatica.contract.document import ApiDocument
from tap_acumatica.contract.records import build_plan, page_decoder, transform
from tap_acumatica.errors import ConfigError
from tests.support import EXAMPLES

PLAIN = msgspec.json.Decoder(float_hook=Decimal)

SCHEMA: dict[str, Any] = {
    "properties": {
        "id": {"type": "string"},
        "OrderNbr": {"type": ["string", "null"]},
        "Total": {"type": ["number", "null"]},
        "LastModified": {"type": ["string", "null"], "format": "date-time"},
        "note": {"type": ["string", "null"]},
        "Details": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "Qty": {"type": ["number", "null"]},
                    "ShipOn": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        },
        "Address": {
            "type": ["object", "null"],
            "properties": {"City": {"type": ["string", "null"]}},
        },
        "custom": {
            "type": ["object", "null"],
            "properties": {
                "Document": {
                    "type": ["object", "null"],
                    "properties": {"UsrX": {"type": ["string", "null"]}},
                }
            },
        },
    }
}


def both(schema: dict[str, Any], body: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(typed path, plain path) records of one page."""
    plan = build_plan(schema)
    decoder, convert = page_decoder(plan, "T")
    typed = [convert(row) for row in decoder.decode(body)]
    plain = [transform(row, plan) for row in PLAIN.decode(body)]
    return typed, plain


RAW: dict[str, Any] = {
    "id": "g1",
    "rowNumber": 3,
    "note": {"value": "hello"},
    "OrderNbr": {"value": "SO1"},
    "Total": {},
    "LastModified": {"value": "2024-01-01T10:00:00.5-05:00"},
    "Unknown": {"value": 1},
    "Details": [
        {
            "id": "d1",
            "rowNumber": 1,
            "Qty": {"value": 2.5},
            "ShipOn": {"value": "2024-01-02T00:00:00-05:00"},
            "_links": {"files:put": "/x"},
            "custom": {},
        }
    ],
    "Address": {"id": "a", "City": {"value": "Paris"}, "custom": {}},
    "custom": {"Document": {"UsrX": {"type": "CustomStringField", "value": "v"}}},
    "_links": {"self": "/x"},
}


def test_transform_unwraps_and_normalises() -> None:
    out = transform(RAW, build_plan(SCHEMA))
    assert out == {
        "id": "g1",
        "OrderNbr": "SO1",
        "Total": None,
        "LastModified": "2024-01-01T15:00:00.500000+00:00",
        "note": "hello",
        "Details": [{"id": "d1", "Qty": 2.5, "ShipOn": "2024-01-02T05:00:00.000000+00:00"}],
        "Address": {"City": "Paris"},
        "custom": {"Document": {"UsrX": "v"}},
    }


def test_typed_and_plain_paths_agree_on_every_shape() -> None:
    exact = Decimal("12345678901234.56789")
    page = [
        RAW,
        {"id": "g2", "OrderNbr": {"value": None}, "LastModified": {}, "Details": None},
        {"id": "g3", "Address": None, "note": None, "custom": None},
        {"id": "g4"},
        {"id": "g5", "Details": [{"id": "d2", "Qty": {"value": exact}, "_links": {}}]},
    ]
    typed, plain = both(SCHEMA, msgspec.json.Encoder(decimal_format="number").encode(page))
    assert typed == plain
    assert typed[0] == transform(RAW, build_plan(SCHEMA))
    assert typed[4]["Details"][0]["Qty"] == exact  # decimals stay exact
    assert "Unknown" not in typed[0]
    assert typed[3] == {"id": "g4"}  # absent members stay absent, as on the plain path


def test_a_page_of_another_shape_is_refused_by_the_typed_decoder() -> None:
    decoder, _ = page_decoder(build_plan(SCHEMA), "T")
    for body in (b'[{"OrderNbr": "SO1"}]', b'[{"Details": {"id": "x"}}]', b'{"id": "x"}'):
        with pytest.raises(msgspec.ValidationError):
            decoder.decode(body)
    assert transform(PLAIN.decode(b'{"OrderNbr": "SO1"}'), build_plan(SCHEMA)) == {
        "OrderNbr": "SO1"
    }


def _members(row: dict[str, Any]) -> list[str]:
    return [
        key
        for key, value in row.items()
        if (isinstance(value, dict) and "id" in value)
        or (isinstance(value, list) and value and isinstance(value[0], dict))
    ]


def test_typed_and_plain_paths_agree_on_acumatica_examples(real_openapi_path: str) -> None:
    if not EXAMPLES.is_dir():
        pytest.skip("../shared/acumatica/examples is not available")
    doc = ApiDocument.from_bytes(Path(real_openapi_path).read_bytes())
    names = {name.lower(): name for name in doc.entity_names()}
    typed_pages = 0
    for path in sorted(EXAMPLES.glob("rest-*-get-*.json")):
        entity = names.get(path.name.split("-")[1])
        body = path.read_bytes()
        page = PLAIN.decode(body)
        if entity is None or not isinstance(page, list) or not page:
            continue
        expand = []
        for member in _members(page[0]):
            try:
                doc.stream_schema(entity, expand=[member])
            except ConfigError:
                continue  # a member of another endpoint or version
            expand.append(member)
        typed, plain = both(doc.stream_schema(entity, expand=expand), body)
        assert typed == plain, path.name
        typed_pages += 1
    assert typed_pages >= 8  # the check ran on real pages, not on none


def test_utc_conversion_is_remembered_within_a_bound() -> None:
    first = records.to_utc("2024-03-10T01:30:00-05:00")
    assert records.to_utc("2024-03-10T01:30:00-05:00") is first  # remembered
    assert first == "2024-03-10T06:30:00.000000+00:00"
    for i in range(records._UTC_SEEN_MAX + 10):
        assert records.to_utc(f"2024-01-01T00:00:{i % 60:02}.{i:07}+02:00").endswith("+00:00")
    assert len(records._UTC_SEEN) <= records._UTC_SEEN_MAX
    assert records.to_utc("2024-08-15T16:03:27.513-04:00") == "2024-08-15T20:03:27.513000+00:00"
