"""OData rows → records (``odata.values``): GI text decimals, offset-less local date-times, CHAR
padding, annotations, drift; the window literals that select what the rows are read as; and the
GI stream's checks that need no server (options, empty answers, clocks going back).

docs/acumatica-api.md §8.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zoneinfo
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tap_acumatica.errors import AnswerShapeError, ConfigError
from tap_acumatica.odata.gi import GiStream
from tap_acumatica.odata.metadata import json_schema
from tap_acumatica.odata.model import EntityType, InquiryOptions, Property, Service
from tap_acumatica.odata.values import (
    MetadataDrift,
    clock_literal,
    clocks_back_ms,
    record_converter,
)
from tap_acumatica.stamps import iso_utc, parse_ms
from tap_acumatica.tap import TapAcumatica
from tests.sync.offline import CONFIG

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UTC = dt.timezone.utc

ETYPE = EntityType(
    name="SalesOrders",
    keys=("OrderType", "OrderNbr"),
    properties=(
        Property("OrderType", "Edm.String", nullable=False),
        Property("OrderNbr", "Edm.String", nullable=False),
        Property("Description", "Edm.String"),
        Property("OrderTotal", "Edm.Decimal"),
        Property("Lines", "Edm.Int32"),
        Property("Hold", "Edm.Boolean"),
        Property("LastModifiedOn", "Edm.DateTimeOffset"),
        Property("Shipped", "Edm.DateTime"),
        Property("NoteID", "Edm.Guid"),
        Property("Day", "Edm.Date"),
    ),
)


class Log:
    """Collects what a :class:`MetadataDrift` tells, as ``(level, message)``."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def __call__(self, level: int, message: str) -> None:
        self.lines.append((level, message))

    def at(self, level: int) -> list[str]:
        return [m for lv, m in self.lines if lv == level]


def convert(
    rows: list[dict[str, Any]], zone: dt.tzinfo = NEW_YORK, **kwargs: Any
) -> tuple[list[dict[str, Any]], Log]:
    log = Log()
    fn = record_converter(ETYPE, zone, drift=MetadataDrift("gi_SalesOrders", log), **kwargs)
    return [fn(row) for row in rows], log


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1999.000000", 1999),  # §8: GI decimals as text with six places
        ("201.730000", Decimal("201.73")),
        ("-0.000100", Decimal("-0.0001")),
        ("0.000000", 0),
        (" 12.5 ", Decimal("12.5")),
        (Decimal("410.4545"), Decimal("410.4545")),  # a JSON number decoded exactly
        (Decimal("7.00"), 7),
        (42, 42),
        (0.1, Decimal("0.1")),  # a float's shortest text: what the JSON said
        ("12345678901234567890.123456789", Decimal("12345678901234567890.123456789")),
    ],
)
def test_decimals_become_exact_numbers(value: Any, expected: Any) -> None:
    (record,), log = convert([{"OrderTotal": value}])
    got = record["OrderTotal"]
    assert got == expected
    assert type(got) is type(expected)  # integral → int; otherwise an exact Decimal, no float
    assert log.lines == []


def test_wrong_types_become_null_with_one_warning_per_column() -> None:
    rows = [
        {"OrderTotal": "n/a", "Lines": "1:30", "Hold": "maybe", "LastModifiedOn": 5},
        {"OrderTotal": True, "Lines": "x", "Hold": 3, "LastModifiedOn": "yesterday"},
    ]
    records, log = convert(rows)
    for record in records:
        assert record == {"OrderTotal": None, "Lines": None, "Hold": None, "LastModifiedOn": None}
    warnings = log.at(logging.WARNING)
    assert len(warnings) == 4  # one per column, not per value
    assert all("docs/acumatica-api.md §8" in w and "null" in w for w in warnings)
    assert any("OrderTotal = 'n/a'" in w for w in warnings)


def test_lossless_conversions_are_silent_or_told_once() -> None:
    records, log = convert([{"Lines": "0100", "Hold": "true", "Description": 12}, {"Lines": 3}])
    assert records == [{"Lines": 100, "Hold": True, "Description": "12"}, {"Lines": 3}]
    assert len(log.at(logging.INFO)) == 1  # a number in a text column: the same value, told
    assert log.at(logging.WARNING) == []


def test_offsetless_date_times_are_tenant_clock_time() -> None:
    rows = [
        {"LastModifiedOn": "2024-07-15T06:00:00.85", "Shipped": "2024-01-15T00:00:00"},
        {"LastModifiedOn": "2024-07-15T10:00:00Z", "Shipped": "2024-01-15T05:00:00+00:00"},
        {"LastModifiedOn": "2024-07-15T12:00:00.123+02:00", "Shipped": "/Date(1705294800000)/"},
    ]
    records, log = convert(rows)
    assert records[0] == {
        "LastModifiedOn": "2024-07-15T10:00:00.850000+00:00",  # EDT: UTC-4
        "Shipped": "2024-01-15T05:00:00.000000+00:00",  # EST: UTC-5
    }
    assert records[1] == {
        "LastModifiedOn": "2024-07-15T10:00:00.000000+00:00",
        "Shipped": "2024-01-15T05:00:00.000000+00:00",
    }
    assert records[2]["LastModifiedOn"] == "2024-07-15T10:00:00.123000+00:00"
    assert records[2]["Shipped"] == iso_utc(1705294800000)  # v3 verbose JSON's /Date(ms)/
    assert log.lines == []


def test_offsetless_date_times_without_a_zone_warn_once() -> None:
    rows = [{"LastModifiedOn": f"2024-07-15T06:00:0{i}"} for i in range(3)]
    records, log = convert(rows, UTC)
    assert records[0] == {"LastModifiedOn": "2024-07-15T06:00:00.000000+00:00"}
    (warning,) = log.at(logging.WARNING)
    assert "date_only_time_zone" in warning


def test_padding_trimmed_on_trim_columns_only() -> None:
    row = {"OrderType": "SO", "OrderNbr": "000123         ", "Description": "  Widget  "}
    (trimmed,), _ = convert([row], trim=("OrderType", "OrderNbr", "Description"))
    assert trimmed == {"OrderType": "SO", "OrderNbr": "000123", "Description": "  Widget"}
    (kept,), _ = convert([row])
    assert kept == row


def test_annotations_dropped_unknown_members_told_once_and_selection() -> None:
    rows = [
        {
            "@odata.etag": 'W/"1"',
            "odata.type": "Default.SalesOrders",
            "OrderTotal@odata.type": "#Decimal",
            "OrderNbr": "1",
            "Extra": 1,
            "NoteID": "9A4D5C1E-0000-4000-8000-00000000ABCD",
            "Day": "2024-07-15",
            "Description": None,
        },
        {"OrderNbr": "2", "Extra": 2, "Description": "x"},
    ]
    records, log = convert(rows)
    assert records == [
        {
            "OrderNbr": "1",
            "NoteID": "9a4d5c1e-0000-4000-8000-00000000abcd",  # as REST writes ids
            "Day": "2024-07-15",
            "Description": None,  # null stays null; absent stays absent
        },
        {"OrderNbr": "2", "Description": "x"},
    ]
    (info,) = log.at(logging.INFO)
    assert "Extra" in info
    assert "$metadata" in info
    chosen, _ = convert(rows, selected=("OrderNbr",))
    assert chosen == [{"OrderNbr": "1"}, {"OrderNbr": "2"}]


def test_default_drift_logs_to_the_tap_logger(caplog: pytest.LogCaptureFixture) -> None:
    fn = record_converter(ETYPE, NEW_YORK)
    with caplog.at_level(logging.WARNING, logger="tap-acumatica"):
        assert fn({"OrderTotal": "lots"}) == {"OrderTotal": None}
    assert "SalesOrders: OrderTotal = 'lots'" in caplog.text


# -- GiStream without a server ----------------------------------------------------------------


AGED = EntityType(
    "Aged",
    keys=(),
    properties=(
        Property("Customer", "Edm.String"),
        Property("Due", "Edm.Decimal"),
        Property("Changed", "Edm.DateTimeOffset"),
    ),
)


def offline_gi(
    monkeypatch: pytest.MonkeyPatch,
    options: InquiryOptions,
    state: Any = None,
    *,
    etype: EntityType = AGED,
    answer: bytes = b" \r\n",
) -> tuple[GiStream, list[tuple[str, dict[str, Any]]]]:
    """A GI stream whose client answers every GET with ``answer`` (empty), and its GETs."""
    config = {**CONFIG, "date_only_time_zone": "America/New_York"}
    tap = TapAcumatica(config=config, state=state, setup_mapper=False)
    calls: list[tuple[str, dict[str, Any]]] = []

    def get_bytes(path: str, params: dict[str, Any], **_: Any) -> bytes:
        calls.append((path, params))
        return answer

    client = SimpleNamespace(get_bytes=get_bytes)
    monkeypatch.setattr(type(tap.connection), "client", property(lambda _self: client))
    services = SimpleNamespace(
        service=lambda kind: Service(kind, "/t/C/api/odata/gi"),
        path=lambda kind, name, parameters: f"/t/C/api/odata/gi/{name}",
    )
    stream = GiStream(
        tap,
        connection=tap.connection,
        settings=tap.settings,
        name=f"gi_{etype.name}",
        schema=json_schema(etype),
        replication_key=options.replication_key,
        services=services,  # type: ignore[arg-type]
        etype=etype,
        options=options,
    )
    return stream, calls


def test_a_column_named_id_is_a_value_not_the_row_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = EntityType(
        "Lines",
        keys=("Order", "Line"),
        properties=(
            Property("Order", "Edm.String"),
            Property("Line", "Edm.Int32"),
            Property("id", "Edm.Int32"),  # e.g. a joined table's id: repeats across rows
        ),
    )
    rows = [{"Order": "SO1", "Line": n, "id": 7} for n in (1, 2, 3)]
    body = json.dumps({"value": rows}).encode()
    stream, calls = offline_gi(monkeypatch, InquiryOptions(), etype=lines, answer=body)
    got = list(stream.get_records(None))
    assert got == rows  # three rows, each with its own id column, none collapsed
    assert calls[0][1]["$orderby"] == "Order,Line"


def test_an_empty_answer_without_a_filter_names_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    stream, calls = offline_gi(monkeypatch, InquiryOptions())
    assert stream.primary_keys == []  # no key: the target can only append
    with pytest.raises(AnswerShapeError, match=r"ordered by Customer,Due,Changed .*primary_keys"):
        list(stream.get_records(None))
    query = {"$orderby": "Customer,Due,Changed", "$top": 1000, "$skip": None}
    assert calls == [("/t/C/api/odata/gi/Aged", query)]


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (InquiryOptions(replication_key="Due"), "replication_key 'Due' is a Edm.Decimal column"),
        (InquiryOptions(replication_key="Nope"), "replication_key 'Nope' is not one of"),
        (InquiryOptions(primary_keys=("Customer", "Id")), "primary_keys names Id, not columns"),
    ],
)
def test_options_must_name_fitting_columns(
    monkeypatch: pytest.MonkeyPatch, options: InquiryOptions, why: str
) -> None:
    stream, calls = offline_gi(monkeypatch, options)
    with pytest.raises(ConfigError, match=why):
        list(stream.get_records(None))
    assert calls == []


def test_a_bookmark_near_clocks_going_back_resumes_an_hour_earlier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def start_of(bookmark: str) -> dt.datetime | None:
        state = {"replication_key": "Changed", "replication_key_value": bookmark}
        state["starting_replication_value"] = bookmark  # what the SDK sets as a sync starts
        options = InquiryOptions(replication_key="Changed")
        stream, _ = offline_gi(monkeypatch, options, {"bookmarks": {"gi_Aged": state}})
        return stream.get_starting_timestamp(None)

    assert start_of("2024-11-03T05:40:00+00:00") == dt.datetime(2024, 11, 3, 4, 40, tzinfo=UTC)
    assert start_of("2024-07-15T05:40:00+00:00") == dt.datetime(2024, 7, 15, 5, 40, tzinfo=UTC)


# -- window literals ---------------------------------------------------------------------------


def _ms(text: str) -> int:
    value = parse_ms(text)
    assert value is not None
    return value


@pytest.mark.parametrize(
    ("instant", "v4", "v3"),
    [
        (
            "2024-07-15T10:00:00.003Z",
            "2024-07-15T06:00:00.003-04:00",
            "datetime'2024-07-15T06:00:00.003'",
        ),
        (
            "2024-01-15T05:00:00Z",
            "2024-01-15T00:00:00.000-05:00",
            "datetime'2024-01-15T00:00:00.000'",
        ),
        # 2024-11-03: New York's clocks go back at 06:00 UTC; 01:00-02:00 is shown twice, and
        # an offset-less 01:30 is read as the first (EDT) one. Instants in the second pass
        # are never a row's reading: the first clock time read at or after them is 02:00.
        (
            "2024-11-03T05:30:00Z",
            "2024-11-03T01:30:00.000-04:00",
            "datetime'2024-11-03T01:30:00.000'",
        ),
        (
            "2024-11-03T06:30:00Z",
            "2024-11-03T02:00:00.000-05:00",
            "datetime'2024-11-03T02:00:00.000'",
        ),
    ],
)
def test_clock_literals(instant: str, v4: str, v3: str) -> None:
    assert clock_literal(_ms(instant), NEW_YORK) == v4
    assert clock_literal(_ms(instant), NEW_YORK, "3") == v3


def test_utc_literals_are_plain() -> None:
    assert clock_literal(_ms("2024-07-15T10:00:00Z"), UTC) == "2024-07-15T10:00:00.000+00:00"


@pytest.mark.parametrize("day", ["2024-03-10", "2024-11-03"])
def test_a_literal_selects_exactly_the_clock_times_read_at_or_after_it(day: str) -> None:
    """Around both daylight-saving changes: ``c >= literal`` ⇔ ``reading(c) >= instant``."""
    start = _ms(f"{day}T04:00:00Z")
    clocks = [
        dt.datetime.fromisoformat(f"{day}T00:00:00") + dt.timedelta(minutes=m)
        for m in range(0, 5 * 60, 7)
    ]
    # The rows' readings (odata.values reads an offset-less value in the zone, fold=0).
    readings = {c: _ms(c.replace(tzinfo=NEW_YORK).isoformat()) for c in clocks}
    for step in range(0, 5 * 60 * 60_000, 11 * 60_000 + 3):
        ms = start + step
        text = clock_literal(ms, NEW_YORK, "3")[len("datetime'") : -1]
        literal = dt.datetime.fromisoformat(text)
        for clock, reading in readings.items():
            if (
                clock.replace(tzinfo=NEW_YORK)
                .astimezone(UTC)
                .astimezone(NEW_YORK)
                .replace(tzinfo=None)
                != clock
            ):
                continue  # a clock time that does not exist (spring forward): never a value
            assert (clock >= literal) == (reading >= ms), (clock, iso_utc(ms), text)


@pytest.mark.parametrize(
    ("instant", "back_minutes"),
    [
        ("2024-11-03T05:40:00Z", 60),  # New York: 01:40 EDT, clocks go back at 06:00 UTC
        ("2024-11-03T06:40:00Z", 60),  # 01:40 EST, the hour's second pass
        ("2024-11-02T12:00:00Z", 60),  # the day before
        ("2024-11-05T12:00:00Z", 0),
        ("2024-03-10T07:30:00Z", 0),  # clocks go forward: no clock time is shown twice
        ("2024-07-15T10:00:00Z", 0),
    ],
)
def test_clocks_going_back_near_a_bookmark(instant: str, back_minutes: int) -> None:
    assert clocks_back_ms(_ms(instant), NEW_YORK) == back_minutes * 60_000
    assert clocks_back_ms(_ms(instant), UTC) == 0
