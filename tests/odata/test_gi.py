"""Generic Inquiry streams against the sandbox's GI service (docs/acumatica-api.md §8): rows in
the tenant's clock time without offset, decimals as text, CHAR keys padded. What the tap emits is
compared with the sandbox's ground truth (``/_sandbox/records/<Entity>``) or the GI's raw rows.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import urllib.request
import zoneinfo
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest

from tap_acumatica.auth.config import tenant_of
from tap_acumatica.errors import AnswerShapeError, TimeSemanticsError
from tap_acumatica.odata.gi import GiStream
from tap_acumatica.odata.metadata import json_schema
from tap_acumatica.odata.model import InquiryOptions
from tap_acumatica.odata.service import ODataServices
from tap_acumatica.stamps import parse_ms
from tap_acumatica.sync.stream import WindowedStream
from tap_acumatica.tap import TapAcumatica
from tests._taprun import tap_config
from tests.sandbox.odata import INQUIRIES
from tests.support import Sandbox

TENANT_ZONE = "America/New_York"  # the sandbox's default --tz
#: The REST entity each sandbox GI reads its rows from (tests/sandbox/odata.py INQUIRIES).
ENTITY = {
    "ModifiedStockItems": "StockItem",
    "SalesOrders": "SalesOrder",
    "CustomerList": "Customer",
}
KEYS = {gi: tuple(i.keys) for gi, i in INQUIRIES.items()}
RK = "LastModifiedOn"


@dataclass
class Run:
    """The Singer messages of one in-process run."""

    messages: list[dict[str, Any]]

    def records(self, gi: str) -> list[dict[str, Any]]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == gi]

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]


def gi_tap(config: dict[str, Any], gis: Mapping[str, InquiryOptions], state: Any = None) -> Any:
    """A tap whose streams are the GI streams of ``gis`` (``gi_<GI>``), built from ``$metadata``."""

    class GiTap(TapAcumatica):
        def discover_streams(self) -> list[WindowedStream]:
            services = ODataServices(self.connection, tenant_of(self.config))
            types = services.metadata("gi", lambda name: name in gis)
            return [
                GiStream(
                    self,
                    connection=self.connection,
                    settings=self.settings,
                    name=f"gi_{name}",
                    schema=json_schema(types[name]),
                    replication_key=options.replication_key,
                    services=services,
                    etype=types[name],
                    options=options,
                )
                for name, options in gis.items()
            ]

    return GiTap(config=config, state=state)


def run(
    sbx: Sandbox, gis: Mapping[str, InquiryOptions], *, state: Any = None, **settings: Any
) -> Run:
    """Sync the GI streams in-process, as the tap's own command would; collect the messages."""
    config = tap_config(sbx, entities=[], date_only_time_zone=TENANT_ZONE, **settings)
    result = Run([])
    sync(gi_tap(config, gis, state), result)
    return result


def sync(tap: TapAcumatica, into: Run) -> None:
    """Run ``tap.sync_all()``; its messages go ``into`` (also when it raises)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out):
            tap.sync_all()
    finally:
        tap.connection.close()
        out.flush()
        raw = out.buffer.getvalue().decode()
        into.messages.extend(json.loads(line) for line in raw.splitlines() if line.strip())


def raw_rows(sbx: Sandbox, gi: str, *, legacy: bool = False) -> list[dict[str, Any]]:
    """The GI's rows as the service sends them (basic auth, no tap code involved)."""
    creds = sbx.credentials()
    token = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    path = f"/odata/Company/{gi}" if legacy else f"/t/Company/api/odata/gi/{gi}"
    request = urllib.request.Request(
        sbx.url.rstrip("/") + path, headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return list(json.loads(response.read())["value"])


def expected(row: Mapping[str, Any]) -> dict[str, Any]:
    """A raw GI row as the tap should write it, converted here independently of odata.values."""
    return {name: _expected_value(value) for name, value in row.items()}


def _expected_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if len(value) >= 19 and value[4] == "-" and value[10] == "T":
        local = dt.datetime.fromisoformat(value).replace(tzinfo=zoneinfo.ZoneInfo(TENANT_ZONE))
        return parse_ms(local.isoformat())
    if value.replace(".", "", 1).lstrip("-").isdigit():
        return Decimal(value)  # §8: GI decimals as text
    return value.rstrip(" ")  # CHAR padding


def comparable(record: Mapping[str, Any]) -> dict[str, Any]:
    """A tap record in the form of :func:`expected`: stamps as ms, numbers exact."""
    return {name: _comparable_value(value) for name, value in record.items()}


def _comparable_value(value: Any) -> Any:
    if isinstance(value, str) and value.endswith("+00:00"):
        return parse_ms(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def key_of(gi: str, record: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(record[k] for k in KEYS[gi])


def truth_stamps(sbx: Sandbox, gi: str) -> Counter[int | None]:
    return Counter(parse_ms(r["changed"]) for r in sbx.ground_truth(ENTITY[gi])["live"])


def gi_queries(sbx: Sandbox, gi: str) -> list[dict[str, str]]:
    return [q["params"] for q in sbx.stats()["queries"] if gi in q["path"]]


def test_full_table_read_equals_the_gi_rows(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "5", "--records", "90", "--burst-size", "20")
    gis = {name: InquiryOptions() for name in ENTITY}
    result = run(sbx, gis, page_size=25)
    for gi in ENTITY:
        records = result.records(f"gi_{gi}")
        raw = raw_rows(sbx, gi)
        assert any(v.endswith(" ") for r in raw for v in key_of(gi, r))  # CHAR keys padded
        want = [expected(r) for r in raw]
        assert len(records) == len(want) == len(sbx.ground_truth(ENTITY[gi])["live"])
        got = {key_of(gi, r): comparable(r) for r in records}
        assert len(got) == len(records)  # each row once, though pages overlap
        assert got == {key_of(gi, r): r for r in want}
        # Values normalised: trimmed keys, numbers for decimals, UTC date-times.
        assert all(not k.endswith(" ") for r in records for k in key_of(gi, r))
        assert Counter(parse_ms(r[RK]) for r in records) == truth_stamps(sbx, gi)
        for record in records:
            assert "id" not in record  # the row identity windows and pages use stays inside
            assert record[RK] is None or record[RK].endswith("+00:00")
    prices = [r["DefaultPrice"] for r in result.records("gi_ModifiedStockItems")]
    assert all(p is None or isinstance(p, (int, float)) for p in prices)
    queries = [q for q in gi_queries(sbx, "SalesOrders") if "$top" in q]  # the tap's reads
    assert all(q.get("$orderby") == "OrderType,OrderNbr" for q in queries), queries
    # Overlapping pages (page_consistently), read once: no restart on a quiet instance.
    assert [int(q.get("$skip", 0)) for q in queries] == [0, 23, 46, 69, 92]


def test_incremental_reads_every_row_then_a_change_arrives_from_the_state(
    sandbox_factory: Any,
) -> None:
    sbx = sandbox_factory("--seed", "6", "--records", "120", "--burst-size", "10")
    gis = {"ModifiedStockItems": InquiryOptions(replication_key=RK)}
    first = run(sbx, gis, page_size=40)
    records = first.records("gi_ModifiedStockItems")
    assert Counter(parse_ms(r[RK]) for r in records) == truth_stamps(sbx, "ModifiedStockItems")
    assert len({key_of("ModifiedStockItems", r) for r in records}) == len(records)
    state = first.states[-1]
    bookmark = state["bookmarks"]["gi_ModifiedStockItems"]
    assert bookmark["replication_key"] == RK
    # The windows' literals are the tenant's clock time with its offset (§8).
    filters = [q["$filter"] for q in gi_queries(sbx, "ModifiedStockItems") if "$filter" in q]
    assert any("-05:00" in f or "-04:00" in f for f in filters)

    changed = sbx.admin("POST", "mutate", {"entity": "StockItem", "op": "update", "count": 3})
    sbx.admin("POST", "clock", {"advance_seconds": 2})
    second = run(sbx, gis, state=state, page_size=40)
    again = second.records("gi_ModifiedStockItems")
    assert Counter(parse_ms(r[RK]) for r in again) == Counter(map(parse_ms, changed["changed"]))


def test_a_resumed_run_loses_nothing(sandbox_factory: Any) -> None:
    sbx = sandbox_factory(
        "--seed", "8", "--records", "150", "--burst-size", "10",
        "--big-entity", "SalesOrder", "--big-records", "18000",
    )  # fmt: skip  # several windows of up to 16,000 rows (issue 15)
    gis = {"SalesOrders": InquiryOptions(replication_key=RK)}
    first = run(sbx, gis, page_size=500)
    states = [
        (i, m["value"])
        for i, m in enumerate(first.messages)
        if m["type"] == "STATE" and "gi_SalesOrders" in m["value"].get("bookmarks", {})
    ]
    assert len(states) > 3  # many windows, each committed
    last = max(i for i, m in enumerate(first.messages) if m["type"] == "RECORD")
    inside = [(i, s) for i, s in states if i < last]  # STATEs with records still after them
    cut, state = inside[len(inside) // 2]
    before = {
        key_of("SalesOrders", m["record"]) for m in first.messages[:cut] if m["type"] == "RECORD"
    }
    resumed = run(sbx, gis, state=state, page_size=500)
    after = {key_of("SalesOrders", r) for r in resumed.records("gi_SalesOrders")}
    every = {key_of("SalesOrders", r) for r in first.records("gi_SalesOrders")}
    assert before
    assert after
    assert before | after == every
    assert len(every) == len(sbx.ground_truth("SalesOrder")["live"])


def test_a_tie_burst_larger_than_a_page_is_paged(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "9", "--records", "80", "--burst-size", "60")
    gis = {"SalesOrders": InquiryOptions(replication_key=RK)}
    result = run(sbx, gis, page_size=25)
    records = result.records("gi_SalesOrders")
    assert Counter(parse_ms(r[RK]) for r in records) == truth_stamps(sbx, "SalesOrders")
    assert max(Counter(r[RK] for r in records).values()) >= 60  # the burst really is there
    assert len({key_of("SalesOrders", r) for r in records}) == len(records)
    paged = [q for q in gi_queries(sbx, "SalesOrders") if "$skip" in q]
    assert paged
    assert all(q["$orderby"] == f"{RK},OrderType,OrderNbr" for q in paged)


def test_legacy_v3_service(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "10", "--records", "60", "--burst-size", "10", "--legacy-odata")
    gis = {
        "SalesOrders": InquiryOptions(replication_key=RK),
        "CustomerList": InquiryOptions(),
    }
    result = run(sbx, gis, page_size=20)
    for gi in gis:
        want = {key_of(gi, r): r for r in map(expected, raw_rows(sbx, gi, legacy=True))}
        got = {key_of(gi, r): comparable(r) for r in result.records(f"gi_{gi}")}
        assert got == want
    queries = [q for q in sbx.stats()["queries"] if q["path"].startswith("/odata/Company/")]
    windows = [q["params"]["$filter"] for q in queries if " ge " in q["params"].get("$filter", "")]
    assert windows
    assert all(f.count("datetime'") == 2 for f in windows)  # v3 literals: tenant clock time


def test_a_wrong_tenant_zone_stops_before_any_bookmark(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "12", "--records", "40", "--burst-size", "5")
    gis = {"SalesOrders": InquiryOptions(replication_key=RK)}
    config = tap_config(sbx, entities=[], date_only_time_zone="Asia/Tokyo", page_size=50)
    result = Run([])
    with pytest.raises(TimeSemanticsError, match="date_only_time_zone"):
        sync(gi_tap(config, gis), result)
    assert not result.records("gi_SalesOrders")
    assert not result.states


def test_a_parameter_gi_is_read_through_with_parameters(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "14", "--records", "80", "--burst-size", "5")
    gi = "SalesOrdersByStatus"
    opened = InquiryOptions(replication_key=RK, parameters={"Status": "Open"})
    quoted = InquiryOptions(parameters={"Status": "it's / 50% & more"})
    result = run(sbx, {gi: opened}, page_size=15)
    records = result.records(f"gi_{gi}")
    want = [r for r in map(expected, raw_rows(sbx, "SalesOrders")) if r["Status"] == "Open"]
    assert records
    assert {key_of("SalesOrders", r) for r in records} == {key_of("SalesOrders", r) for r in want}
    assert {r["Status"] for r in records} == {"Open"}
    paths = {q["path"] for q in sbx.stats()["queries"] if gi in q["path"]}
    assert paths == {f"/t/Company/api/odata/gi/{gi}_WithParameters(Status='Open')"}
    # A value with a quote and URL characters: quoted as an OData literal and in the path.
    before = len(sbx.stats()["queries"])
    assert run(sbx, {gi: quoted}, page_size=15).records(f"gi_{gi}") == []
    (path,) = {q["path"] for q in sbx.stats()["queries"][before:] if gi in q["path"]}
    assert "/" not in path.rpartition("gi/")[2]
    assert "&" not in path
    assert unquote(path).endswith("_WithParameters(Status='it''s / 50% & more')")


def test_a_filter_on_a_formula_column_is_one_clear_error(sandbox_factory: Any) -> None:
    """§8: a GI answers a $filter on a formula column with 200 and no body at all."""
    sbx = sandbox_factory("--seed", "15", "--records", "30", "--burst-size", "5")
    gi = "SalesOrdersByStatus"
    options = InquiryOptions(replication_key="LastActivityOn")
    config = tap_config(sbx, entities=[], date_only_time_zone=TENANT_ZONE, max_tries=3)
    with pytest.raises(AnswerShapeError) as caught:
        sync(gi_tap(config, {gi: options}), Run([]))
    message = str(caught.value)
    assert "\n" not in message
    assert "empty body" in message
    assert "SalesOrdersByStatus" in message
    assert "LastActivityOn" in message
    assert "replication_key" in message
    assert len([q for q in sbx.stats()["queries"] if gi in q["path"]]) == 1  # not retried


def test_deselected_columns_are_not_requested(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "16", "--records", "30", "--burst-size", "5")
    config = tap_config(sbx, entities=[], date_only_time_zone=TENANT_ZONE)
    tap = gi_tap(config, {"CustomerList": InquiryOptions(replication_key=RK)})
    stream = tap.streams["gi_CustomerList"]
    for name in ("Email", "CreditLimit", "CustomerID", RK):  # keys and the stamp stay
        stream.metadata[("properties", name)].selected = False
    result = Run([])
    sync(tap, result)
    records = result.records("gi_CustomerList")
    assert len(records) == 30
    assert set(records[0]) == {"CustomerID", "CustomerName", "Status", "BAccountID", RK}
    selects = {
        q["params"].get("$select") for q in sbx.stats()["queries"] if "CustomerList" in q["path"]
    }
    assert selects == {f"CustomerID,CustomerName,Status,BAccountID,{RK}"}
