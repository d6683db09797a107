"""DAC streams without a server: the keyset ``$filter``, literals, pages and ``$select``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from singer_sdk.singerlib import Catalog

from tap_acumatica.odata.dac import DacStream, after, keyset_filter, value_literal
from tap_acumatica.odata.metadata import json_schema
from tap_acumatica.odata.model import EntityType, Property, Service
from tap_acumatica.stamps import iso_utc, parse_ms
from tap_acumatica.tap import TapAcumatica
from tests.sync.offline import CONFIG

V4 = Service("dac", "/t/Company/api/odata/dac")
SOLINE = EntityType(
    "PX_Objects_SO_SOLine",
    ("OrderType", "OrderNbr", "LineNbr"),
    (
        Property("OrderType", "Edm.String", nullable=False),
        Property("OrderNbr", "Edm.String", nullable=False),
        Property("LineNbr", "Edm.Int32", nullable=False),
        Property("OrderQty", "Edm.Decimal"),
        Property("NoteID", "Edm.Guid"),
        Property("LastModifiedDateTime", "Edm.DateTimeOffset"),
    ),
    aliases=("SOLine",),
)
STAMP = "LastModifiedDateTime"


# -- the keyset $filter ------------------------------------------------------------------


def test_after_is_the_sort_orders_greater_than() -> None:
    assert after([("a", "1")]) == "a gt 1"
    assert after([("a", "1"), ("b", "2")]) == "a gt 1 or (a eq 1 and b gt 2)"
    assert after([("s", "S"), ("k1", "'A'"), ("k2", "3")]) == (
        "s gt S or (s eq S and (k1 gt 'A' or (k1 eq 'A' and k2 gt 3)))"
    )


def test_keyset_filter_of_an_incremental_read() -> None:
    bounds = (STAMP, "B", "E")
    assert keyset_filter([], bounds) == f"{STAMP} ge B and {STAMP} lt E"
    position = [(STAMP, "S"), ("OrderNbr", "'X'")]
    assert keyset_filter(position, bounds) == (
        f"{STAMP} lt E and ({STAMP} gt S or ({STAMP} eq S and OrderNbr gt 'X'))"
    )


def test_keyset_filter_of_a_whole_table() -> None:
    assert keyset_filter([], None) is None
    assert keyset_filter([("k", "1"), ("j", "2")], None) == "k gt 1 or (k eq 1 and j gt 2)"


@pytest.mark.parametrize(
    ("edm", "value", "text"),
    [
        ("Edm.String", "O'Brien  ", "'O''Brien  '"),  # padding kept: the server compares it
        ("Edm.Int32", 7, "7"),
        ("Edm.Decimal", "1.50", "1.50"),
        (
            "Edm.Guid",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
        ),
        ("Edm.Boolean", True, "true"),
        ("Edm.DateTimeOffset", "2024-07-15T10:00:00.003Z", "2024-07-15T10:00:00.003Z"),
        ("Edm.DateTimeOffset", "2024-07-15T06:00:00.85-04:00", "2024-07-15T10:00:00.850Z"),
    ],
)
def test_value_literals(edm: str, value: Any, text: str) -> None:
    assert value_literal(edm, value, V4) == text


# -- reading, against a fake service ------------------------------------------------------


class Services:
    """What a DacStream asks of ``ODataServices``: the DAC service and entity paths."""

    def service(self, kind: str) -> Service:
        assert kind == "dac"
        return V4

    def path(self, kind: str, entity_set: str) -> str:
        return f"{V4.root}/{entity_set}"


class Client:
    """Answers GETs from a list of rows, remembering every query."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.queries: list[dict[str, Any]] = []

    def get_json(self, path: str, params: Mapping[str, Any], *, stream: str) -> Any:
        self.queries.append(dict(params))
        return {"@odata.context": "x", "value": self.pages.pop(0)}


def row(nbr: str, line: int, ms: int, note: str) -> dict[str, Any]:
    """A SOLine row as the DAC service writes it (padded key, ``Z`` stamp)."""
    stamp = iso_utc(ms).replace("+00:00", "Z")
    return {
        "OrderType": "SO",
        "OrderNbr": nbr.ljust(15),
        "LineNbr": line,
        "OrderQty": 2.5,
        "NoteID": note,
        STAMP: stamp,
    }


def dac_stream(
    client: Client, *, page_size: int = 2, rk: str | None = STAMP, ready: bool = True
) -> DacStream:
    tap = TapAcumatica(config={**CONFIG, "page_size": page_size}, setup_mapper=False)
    tap.connection.__dict__["client"] = client  # no HTTP: the fake answers
    schema = json_schema(SOLINE)
    schema["properties"] = {"id": {"type": "string"}, **schema["properties"]}
    stream = DacStream(
        tap,
        connection=tap.connection,
        settings=tap.settings,
        services=Services(),  # type: ignore[arg-type]
        etype=SOLINE,
        name="dac_SOLine",
        schema=schema,
        replication_key=rk,
    )
    if ready:
        stream.prepare()
    return stream


T = 1_720_000_000_000


def test_pages_continue_after_the_last_row_of_the_page_before() -> None:
    client = Client(
        [
            [row("SO1", 1, T, "A1"), row("SO1", 2, T + 3, "A2")],
            [row("SO2", 1, T + 3, "B1"), row("SO2", 2, T + 10, "B2")],
            [row("SO3", 1, T + 20, "C1")],
        ]
    )
    stream = dac_stream(client)
    pages = list(stream.read_pages(T, T + 1000))
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [p.covered_ms for p in pages] == [T + 3, T + 10, T + 1000]
    first, second, third = client.queries
    assert first["$orderby"] == f"{STAMP},OrderType,OrderNbr,LineNbr"
    assert first["$top"] == 2
    assert "$skip" not in first
    assert set(first["$select"].split(",")) == {p.name for p in SOLINE.properties}
    assert first["$filter"] == (
        f"{STAMP} ge {iso_utc(T)[:23]}Z and {STAMP} lt {iso_utc(T + 1000)[:23]}Z"
    )
    s = iso_utc(T + 3)[:23] + "Z"
    assert second["$filter"] == (
        f"{STAMP} lt {iso_utc(T + 1000)[:23]}Z and ({STAMP} gt {s} or ({STAMP} eq {s} and "
        "(OrderType gt 'SO' or (OrderType eq 'SO' and (OrderNbr gt 'SO1            ' or "
        "(OrderNbr eq 'SO1            ' and LineNbr gt 2))))))"
    )
    assert "'SO2            '" in third["$filter"]
    rec = pages[0].records[0]
    assert rec["id"] == "a1"  # NoteID, lower case
    assert rec["OrderNbr"] == "SO1"  # CHAR padding trimmed
    assert rec[STAMP] == iso_utc(T)  # the records' fixed-width UTC form
    assert parse_ms(rec[STAMP]) == T


def test_a_full_last_page_costs_one_more_request() -> None:
    client = Client([[row("SO1", 1, T, "A1"), row("SO1", 2, T + 3, "A2")], []])
    pages = list(dac_stream(client).read_pages(T, T + 1000))
    assert [p.covered_ms for p in pages] == [T + 3, T + 1000]
    assert len(client.queries) == 2


def test_deselected_columns_are_not_requested() -> None:
    stream = dac_stream(Client([]), ready=False)
    entry = {
        "tap_stream_id": "dac_SOLine",
        "stream": "dac_SOLine",
        "schema": stream.schema,
        "replication_key": STAMP,
        "metadata": [
            {"breadcrumb": [], "metadata": {"selected": True}},
            {"breadcrumb": ["properties", "OrderQty"], "metadata": {"selected": False}},
            {"breadcrumb": ["properties", "NoteID"], "metadata": {"selected": False}},
        ],
    }
    stream.apply_catalog(Catalog.from_dict({"streams": [entry]}))
    stream.prepare()
    # keys, the stamp and NoteID (the id) are always read
    assert stream.columns() == ["OrderType", "OrderNbr", "LineNbr", "NoteID", STAMP]


def test_a_table_without_stamp_is_walked_on_its_keys() -> None:
    client = Client([[row("SO1", 1, T, "A1"), row("SO1", 2, T, "A2")], [row("SO2", 1, T, "B")]])
    stream = dac_stream(client, rk=None)
    assert [r["id"] for r in stream.fetch_all()] == ["a1", "a2", "b"]
    first, second = client.queries
    assert first["$orderby"] == "OrderType,OrderNbr,LineNbr"
    assert first.get("$filter") is None
    assert second["$filter"].startswith("OrderType gt 'SO' or (OrderType eq 'SO' and")
