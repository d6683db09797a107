"""The OData catalog: DAC and GI streams (settings or ``--catalog``), deletion feeds, --check.

Every test but the first two runs the tap as a subprocess against a sandbox (tests/_taprun.py).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from singer_sdk.singerlib import Catalog

from tap_acumatica.odata.entry import add_deleted_at, entity_type_of, stream_schema
from tap_acumatica.odata.model import EntityType, Property
from tap_acumatica.odata.registry import deletion_dac
from tests._taprun import discover, only_streams, run_tap, tap_config, write_json
from tests.support import REPO, Sandbox

SOLINE = EntityType(
    "PX_Objects_SO_SOLine",
    ("OrderType", "OrderNbr", "LineNbr"),
    (
        Property("OrderType", "Edm.String", nullable=False),
        Property("OrderNbr", "Edm.String", nullable=False),
        Property("LineNbr", "Edm.Int32", nullable=False),
        Property("OrderQty", "Edm.Decimal"),
        Property("ShipDate", "Edm.Date"),
        Property("NoteID", "Edm.Guid"),
        Property("Flag", "Edm.Geography"),  # a type the tap does not know
        Property("LastModifiedDateTime", "Edm.DateTimeOffset"),
    ),
    aliases=("SOLine",),
)
GI_V3 = EntityType(  # the legacy GI service: tenant-local Edm.DateTime (api.md §8)
    "SalesOrders",
    ("OrderType", "OrderNbr"),
    (
        Property("OrderType", "Edm.String"),
        Property("OrderNbr", "Edm.String"),
        Property("id", "Edm.Int64"),  # a GI column that happens to be called id
        Property("Total", "Edm.Double"),
        Property("LastModifiedOn", "Edm.DateTime"),
    ),
)


def _through_a_catalog(schema: dict[str, Any], name: str, keys: list[str]) -> Any:
    """The catalog entry as a ``--catalog`` run gets it (the SDK's own parsing)."""
    entry = {"tap_stream_id": name, "stream": name, "schema": schema, "key_properties": keys}
    return Catalog.from_dict({"streams": [{**entry, "metadata": []}]}).get_stream(name)


def _nullable(etype: EntityType) -> EntityType:
    props = tuple(Property(p.name, p.edm) for p in etype.properties)
    return EntityType(etype.name, etype.keys, props, etype.aliases)


def test_a_catalog_entry_carries_the_entity_type_back() -> None:
    schema = stream_schema(SOLINE, kind="dac")
    assert next(iter(schema["properties"])) == "id"  # the NoteID, for the REST-compatible id
    assert schema["properties"]["LineNbr"]["description"] == "Edm.Int32; key 3"
    schema["properties"]["_sdc_deleted_at"] = {"type": ["string", "null"]}
    entry = _through_a_catalog(schema, "dac_SOLine", ["id"])
    # Keyed by id, its key columns may be absent (a tombstone) and null: nothing else changes.
    assert entity_type_of(entry, "dac_") == _nullable(SOLINE)

    gi = _through_a_catalog(stream_schema(GI_V3, kind="gi"), "gi_SalesOrders", ["OrderNbr"])
    assert entity_type_of(gi, "gi_") == GI_V3


def test_a_dac_tombstone_fits_the_dac_schema() -> None:
    from jsonschema import Draft7Validator  # type: ignore[import-untyped]  # noqa: PLC0415

    schema = stream_schema(SOLINE, kind="dac")
    add_deleted_at(schema)
    at = "2024-07-15T10:00:00.000000+00:00"
    tombstone = {"id": "4d1c", "_sdc_deleted_at": at, "LastModifiedDateTime": at}
    assert Draft7Validator(schema).is_valid(tombstone)
    no_note = EntityType("T", ("K",), (Property("K", "Edm.String", nullable=False),))
    assert stream_schema(no_note, kind="dac")["required"] == ["K"]  # keyed by K itself


def test_an_entry_without_descriptions_gets_types_from_its_json_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "K": {"type": "string"},
            "N": {"type": ["number", "null"]},
            "I": {"type": ["integer", "null"]},
            "T": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    schema["required"] = ["K", "Gone"]  # a catalog written before keys were in descriptions
    etype = entity_type_of(_through_a_catalog(schema, "gi_X", ["K"]), "gi_")
    assert etype.name == "X"  # no title: the stream name without its prefix
    assert etype.keys == ("K",)
    assert [(p.name, p.edm, p.nullable) for p in etype.properties] == [
        ("K", "Edm.String", False),
        ("N", "Edm.Decimal", True),
        ("I", "Edm.Int64", True),
        ("T", "Edm.DateTimeOffset", True),
    ]


def test_deletion_dacs_override_the_registry() -> None:
    assert deletion_dac("SalesOrder", {}) == "SOOrder"
    assert deletion_dac("StockItem", {}) == "InventoryItem"
    assert deletion_dac("SalesOrder", {"SalesOrder": "MyOrder"}) == "MyOrder"
    assert deletion_dac("SalesOrder", {"SalesOrder": ""}) is None  # turned off
    assert deletion_dac("Unheard", {}) is None
    assert deletion_dac("Unheard", {"Unheard": "XTable"}) == "XTable"


# -- discovery against the sandbox -------------------------------------------------------------


def _streams(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["tap_stream_id"]: entry for entry in catalog["streams"]}


def _requests(sbx: Sandbox, part: str) -> int:
    return sum(r["count"] for r in sbx.stats()["requests"] if part in r["path"])


def _gi_names(sbx: Sandbox) -> list[str]:
    creds = sbx.credentials()
    answer = requests.get(
        f"{sbx.url}/t/{creds['tenant']}/api/odata/gi",
        auth=(creds["username"], creds["password"]),
        timeout=60,
    )
    answer.raise_for_status()
    return [item["name"] for item in answer.json()["value"]]


def test_all_inquiries_become_gi_streams_with_keys_and_schemas(sandbox: Sandbox) -> None:
    options = {"SalesOrders": {"replication_key": "LastModifiedOn"}}
    config = tap_config(
        sandbox, entities=["Customer"], odata_inquiries="all", odata_inquiry_options=options
    )
    streams = _streams(discover(config))
    assert sorted(n for n in streams if n.startswith("gi_")) == sorted(
        f"gi_{name}" for name in _gi_names(sandbox)
    )
    orders = streams["gi_SalesOrders"]
    assert orders["key_properties"] == ["OrderType", "OrderNbr"]
    assert orders["replication_key"] == "LastModifiedOn"
    props = orders["schema"]["properties"]
    assert "number" in props["OrderTotal"]["type"]
    assert props["OrderTotal"]["description"] == "Edm.Decimal"
    assert props["LastModifiedOn"]["format"] == "date-time"
    assert orders["schema"]["title"] == "SalesOrders"
    assert "Change field: LastModifiedOn" in orders["schema"]["description"]
    customers = streams["gi_CustomerList"]
    assert customers["key_properties"] == ["CustomerID"]
    assert customers.get("replication_key") is None
    assert "_sdc_deleted_at" not in props  # track_deletions is off
    assert not [n for n in streams if n.startswith("dac_")]


def test_dacs_by_short_full_and_display_name(sandbox: Sandbox) -> None:
    names = ["SOLine", "PX_Objects_SO_SOOrder", "AR Invoice", "soline"]
    streams = _streams(discover(tap_config(sandbox, entities=["Customer"], odata_dacs=names)))
    assert sorted(n for n in streams if n.startswith("dac_")) == [
        "dac_ARInvoice",
        "dac_SOLine",
        "dac_SOOrder",
    ]
    lines = streams["dac_SOLine"]
    assert lines["key_properties"] == ["id"]
    assert lines["replication_key"] == "LastModifiedDateTime"
    assert "required" not in lines["schema"]  # a tombstone carries only id
    described = {k: v.get("description") for k, v in lines["schema"]["properties"].items()}
    assert described["OrderNbr"] == "Edm.String; key 2"
    assert described["OrderQty"] == "Edm.Decimal"
    assert lines["schema"]["title"] == "PX_Objects_SO_SOLine"
    assert lines["schema"]["description"].startswith(
        "Acumatica DAC SOLine (OData entity set PX_Objects_SO_SOLine). Primary key: id (the "
        "NoteID). Natural key: OrderType, OrderNbr, LineNbr."
    )
    invoices = streams["dac_ARInvoice"]["schema"]["properties"]
    assert invoices["RefNbr"]["description"] == "Edm.String; key 2"


def _cli(config: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """``tap-acumatica --config <config> <args>``, finished."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "tap_acumatica", "--config"]
        cmd += [write_json(config, Path(tmp), "c.json"), *args]
        return subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )


def _fails(config: dict[str, Any], *args: str) -> str:
    proc = _cli(config, *args)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("tap-acumatica: "), proc.stderr[-2000:]
    return lines[-1]


def test_an_unknown_name_is_one_line_listing_what_exists(sandbox: Sandbox) -> None:
    base = tap_config(sandbox, entities=["Customer"])
    line = _fails({**base, "odata_inquiries": ["Qwxyz"]}, "--discover")
    assert "'Qwxyz'" in line
    for name in _gi_names(sandbox):
        assert name in line
    line = _fails({**base, "odata_dacs": ["SOLine", "Qwxyz"]}, "--discover")
    assert "no OData DAC named 'Qwxyz'" in line
    assert "PX_Objects_SO_SOLine" in line
    options = {"Qwxyz": {"replication_key": "LastModifiedOn"}}
    line = _fails({**base, "odata_inquiries": "all", "odata_inquiry_options": options})
    assert "'Qwxyz'" in line
    bad_key = {"SalesOrders": {"replication_key": "OrderTotal"}}
    line = _fails({**base, "odata_inquiries": ["SalesOrders"], "odata_inquiry_options": bad_key})
    assert line == (
        "tap-acumatica: odata_inquiry_options.SalesOrders.replication_key: 'OrderTotal' is not "
        "a date-time column of SalesOrders; its date-time columns: Date, LastModifiedOn"
    )


def test_inquiry_parameters_are_checked_and_kept_for_catalog_runs(sandbox: Sandbox) -> None:
    gi = "SalesOrdersByStatus"
    base = tap_config(sandbox, entities=["Customer"], odata_inquiries=[gi])
    wrong = {gi: {"parameters": {"Nope": "x"}}}
    line = _fails({**base, "odata_inquiry_options": wrong}, "--discover")
    assert line.startswith(
        f"tap-acumatica: odata_inquiry_options.{gi}.parameters: {gi} has no parameter Nope; "
        "its parameters: Status"
    )
    config = {**base, "odata_inquiry_options": {gi: {"parameters": {"Status": "Open"}}}}
    catalog = only_streams(discover(config), {f"gi_{gi}"})
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = run.records[f"gi_{gi}"]
    assert rows
    assert {row["Status"] for row in rows} == {"Open"}
    paths = {q["path"] for q in sandbox.stats()["queries"]}
    assert any(f"{gi}_WithParameters(" in path for path in paths), paths


def test_no_odata_request_unless_odata_streams_are_asked_for(sandbox: Sandbox) -> None:
    before = _requests(sandbox, "/odata")
    streams = _streams(discover(tap_config(sandbox, entities=["Customer"])))
    assert list(streams) == ["Customer"]
    assert _requests(sandbox, "/odata") == before


def test_a_catalog_sync_reads_no_metadata(sandbox: Sandbox) -> None:
    config = tap_config(
        sandbox, entities=["Customer"], odata_dacs=["SOLine"], odata_inquiries=["SalesOrders"]
    )
    catalog = only_streams(discover(config), {"dac_SOLine", "gi_SalesOrders"})
    before = _requests(sandbox, "$metadata")
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _requests(sandbox, "$metadata") == before
    assert set(run.records) == {"dac_SOLine", "gi_SalesOrders"}
    line = run.records["dac_SOLine"][0]
    assert line["id"] == line["NoteID"]
    assert line["OrderNbr"] == line["OrderNbr"].rstrip()  # CHAR padding trimmed (api.md §8)
    truth = sandbox.admin("GET", "records/dac/SOLine")
    assert {r["id"] for r in run.records["dac_SOLine"]} == {r["id"] for r in truth["live"]}


# -- deletions ---------------------------------------------------------------------------------


def _sync_twice(
    sbx: Sandbox, config: dict[str, Any], selected: set[str], between: Callable[[], Any]
) -> tuple[dict[str, Any], Any]:
    """Discover, sync, call ``between``, sync again from the first run's state."""
    catalog = only_streams(discover(config), selected)
    first = run_tap(config, catalog=catalog)
    assert first.returncode == 0, first.stderr[-3000:]
    done = between()
    second = run_tap(config, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr[-3000:]
    return done, second


def test_track_deletions_adds_the_column_and_reads_the_dac_feed(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sbx = sandbox_factory("--seed", "5", "--records", "40")
    config = tap_config(
        sbx,
        entities=["Customer", "SalesOrder"],
        odata_dacs=["SOOrder"],
        odata_inquiries=["SalesOrders"],
        track_deletions=True,
        deletion_dacs={"Customer": ""},
    )
    streams = _streams(discover(config))
    has = {n: "_sdc_deleted_at" in e["schema"]["properties"] for n, e in streams.items()}
    assert has == {
        "Customer": False,
        "SalesOrder": True,
        "dac_SOOrder": True,
        "gi_SalesOrders": False,
    }
    assert streams["dac_SOOrder"]["schema"]["properties"]["_sdc_deleted_at"] == {
        "type": ["string", "null"],
        "format": "date-time",
    }

    def delete() -> Any:
        return sbx.admin("POST", "mutate", {"entity": "SalesOrder", "op": "delete", "count": 3})

    done, second = _sync_twice(sbx, config, {"dac_SOOrder", "Customer", "SalesOrder"}, delete)
    deleted = {i.lower() for i in done["ids"]}
    tombstones = [r for r in second.records["dac_SOOrder"] if r.get("_sdc_deleted_at")]
    assert {r["id"] for r in tombstones} >= deleted
    for record in tombstones:
        assert record["LastModifiedDateTime"] == record["_sdc_deleted_at"]
    rest = {r["id"] for r in second.records["SalesOrder"] if r.get("_sdc_deleted_at")}
    assert rest >= deleted  # the REST stream's feed is SOOrder's too
    assert "track_deletions: no DAC is mapped for Customer" in second.stderr
    assert second.last_state is not None
    state = second.last_state["bookmarks"]["dac_SOOrder"]
    assert "deletions_until" in state
    assert _requests(sbx, "/PX_Objects_SO_SOOrder/px.GetDeletedRecords()") == 2  # one per run


def test_a_catalog_without_the_column_reads_no_deletions_and_says_so(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sbx = sandbox_factory("--seed", "6", "--records", "30")
    config = tap_config(sbx, entities=["SalesOrder"], odata_dacs=["SOOrder"])
    catalog = only_streams(discover(config), {"SalesOrder", "dac_SOOrder"})
    sbx.admin("POST", "mutate", {"entity": "SalesOrder", "op": "delete", "count": 2})
    run = run_tap({**config, "track_deletions": True}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not [r for rs in run.records.values() for r in rs if "_sdc_deleted_at" in r]
    assert (
        "track_deletions: the catalog's SalesOrder, dac_SOOrder have no _sdc_deleted_at "
        "column, so their deletions are not read; run --discover again with track_deletions on"
    ) in run.stderr
    assert _requests(sbx, "GetDeletedRecords") == 0


# -- --check -----------------------------------------------------------------------------------


def test_check_has_a_line_per_odata_stream_and_per_deletion_feed(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sbx = sandbox_factory("--seed", "3", "--records", "30", "--untracked-deletions", "SOLine")
    config = tap_config(
        sbx,
        entities=["SalesOrder"],
        odata_dacs=["SOLine"],
        odata_inquiries=["SalesOrders"],
        track_deletions=True,
    )
    proc = _cli(config, "--check")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert sorted(rows) == [
        "SalesOrder",
        "SalesOrder/deletions",
        "dac_SOLine",
        "dac_SOLine/deletions",
        "gi_SalesOrders",
    ]
    readable = {name: line.split()[1] for name, line in rows.items()}
    assert readable == {
        "SalesOrder": "yes",
        "SalesOrder/deletions": "yes",
        "dac_SOLine": "yes",
        "dac_SOLine/deletions": "no",
        "gi_SalesOrders": "yes",
    }
    assert "SM207010" in rows["dac_SOLine/deletions"]
    assert "does not track deleted PX_Objects_SO_SOLine records" in rows["dac_SOLine/deletions"]
    queries = sbx.stats()["queries"]
    reads = [q for q in queries if q["path"].endswith("PX_Objects_SO_SOLine")]
    assert reads
    assert all(q["params"].get("$top") == "1" for q in reads)
    assert [q for q in queries if q["path"].endswith("/gi/SalesOrders")]  # the GI was read


@pytest.mark.parametrize("flag", ["--discover", "--check"])
def test_deletions_without_any_odata_stream_still_need_no_metadata(
    sandbox: Sandbox, flag: str
) -> None:
    before = _requests(sandbox, "$metadata")
    config = tap_config(sandbox, entities=["Customer"], track_deletions=True)
    proc = _cli(config, flag)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert _requests(sandbox, "$metadata") == before
