"""Contract 5 (Default/26.200.001): choosing the version, syntax, shapes, the 24 → 26 upgrade."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tap_acumatica.contract.document import ApiDocument
from tap_acumatica.contract.endpoint import (
    Endpoint,
    check_contract,
    choose_endpoint_version,
    contract_of_version,
)
from tap_acumatica.contract.query import expand_option, list_options, odata_literal
from tap_acumatica.contract.records import build_plan, page_decoder, transform
from tap_acumatica.errors import ConfigError
from tap_acumatica.stamps import date_to_utc, parse_ms
from tests._taprun import discover, run_tap, tap_config
from tests.support import Sandbox

R2026 = "23.200.001,24.200.001,25.200.001,26.200.001"
V24, V26 = "24.200.001", "26.200.001"
ZONE = "America/New_York"  # the sandbox's default --tz
EXPAND = {"SalesOrder": ["Details"], "Customer": ["MainContact/Address"]}


def _index(*versions: str) -> dict[str, Any]:
    return {"endpoints": [{"name": "Default", "version": v} for v in versions]}


# -- choosing the version and the contract (unit) -----------------------------------------------


def test_version_rule() -> None:
    assert [contract_of_version(v) for v in ("20.200.001", "25.200.001", "26.200.001")] == [
        "4",
        "4",
        "5",
    ]
    assert contract_of_version("18.200.001") == "3"
    assert contract_of_version("27.200.001") is None
    assert contract_of_version("1.0") is None


def test_default_picks_26_and_skips_unknown_contracts(caplog: pytest.LogCaptureFixture) -> None:
    assert choose_endpoint_version(_index("24.200.001", "26.200.001"), "Default", None) == V26
    with caplog.at_level(logging.INFO):
        got = choose_endpoint_version(
            _index("25.200.001", "26.200.001", "27.200.001"), "Default", None
        )
    assert got == V26
    line = next(r.getMessage() for r in caplog.records if "27.200.001" in r.getMessage())
    assert "skipping" in line
    assert "reading 26.200.001" in line
    # Outside the rule (a custom endpoint's version): read, its document names the contract.
    assert choose_endpoint_version(_index("1.0"), "Default", None) == "1.0"


def test_unknown_contract_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"contract '6'.*contract 4.*contract 5 \(26\.200\.001\)"):
        check_contract("27.200.001", "6")
    with pytest.raises(ConfigError, match=r"should use contract 4 but .* info\.version '5'"):
        check_contract(V24, "5")
    with pytest.raises(ConfigError, match="contract '3'"):
        choose_endpoint_version(_index("18.200.001", V24), "Default", "18.200.001")
    assert check_contract(V26, "5") == "5"
    assert check_contract("1.0", "4") == "4"


class _FakeConnection:
    """Just enough of ``Connection`` for ``Endpoint``: the index and a swagger.json."""

    def __init__(self, versions: tuple[str, ...], info_version: str) -> None:
        self.versions = versions
        self.client = self
        self.document = {"openapi": "3.0.1", "info": {"title": "T", "version": info_version}}

    def probe(self) -> dict[str, Any]:
        return _index(*self.versions)

    def get_bytes(self, path: str) -> bytes:
        assert path.endswith("/swagger.json")
        return json.dumps(self.document).encode()


def test_endpoint_never_uses_an_unknown_contract_blind() -> None:
    fake: Any = _FakeConnection((V26, "27.200.001"), "6")
    with pytest.raises(ConfigError, match=r"27\.200\.001 uses contract '6'.*supports contract 4"):
        Endpoint(fake, "Default", "27.200.001").contract()  # the document is asked
    assert Endpoint(fake, "Default", None).contract() == "5"  # 26 by the rule, no download
    other: Any = _FakeConnection((V26,), "5")
    endpoint = Endpoint(other, "Default", None)
    with pytest.raises(ConfigError, match="contract '6'"):
        endpoint.accept_document("6")  # a discovered document that says so


def test_contract5_query_syntax() -> None:
    ms = parse_ms("2024-07-15T10:00:00Z") or 0
    assert odata_literal(ms, "5") == "2024-07-15T10:00:00.000+00:00"
    assert odata_literal(ms) == "datetimeoffset'2024-07-15T10:00:00.000+00:00'"
    paths = ["MainContact", "MainContact/Address", "Details", "Details/files"]
    assert expand_option(paths, "5") == "MainContact($expand=Address),Details($expand=files)"
    assert expand_option(paths) == ",".join(paths)
    assert list_options(["A"], [], ["Document.UsrX"], "5") == {"$select": "A,Document.UsrX"}
    assert list_options(["A"], [], ["Document.UsrX"]) == {
        "$select": "A",
        "$custom": "Document.UsrX",
    }


def test_single_select_and_date_only_values() -> None:
    schema = {
        "properties": {
            "id": {"type": "string"},
            "Status": {"type": ["string", "null"]},
            "Status_id": {
                "type": ["string", "null"],
                "description": "Code (id) of the single-select field Status (contract 5)",
            },
            "Date": {"type": ["string", "null"], "format": "date-time"},
        }
    }
    plan = build_plan(schema, ZoneInfo(ZONE))
    raw = {
        "id": "x",
        "Status": {"value": {"id": "N", "description": "Open"}},
        "Date": {"value": "2024-07-15"},
    }
    want = {
        "id": "x",
        "Status": "Open",
        "Status_id": "N",
        "Date": "2024-07-15T04:00:00.000000+00:00",  # EDT midnight
    }
    assert transform(raw, plan) == want
    decoder, convert = page_decoder(plan, "T")
    assert (
        convert(
            decoder.decode(
                b'[{"id": "x", "Status": {"value": {"id": "N", '
                b'"description": "Open"}}, "Date": {"value": "2024-07-15"}}]'
            )[0]
        )
        == want
    )
    assert date_to_utc("2024-01-15", ZoneInfo(ZONE)) == "2024-01-15T05:00:00.000000+00:00"
    assert date_to_utc("2024-01-15", dt.timezone.utc) == "2024-01-15T00:00:00.000000+00:00"


# -- against a 2026 R2 sandbox ------------------------------------------------------------------


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    sbx = Sandbox("--seed", "5", "--records", "80", "--burst-size", "150", "--endpoints", R2026)
    yield sbx
    sbx.stop()


def _config(sbx: Sandbox, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "entities": ["Customer", "SalesOrder"],
        "expand": EXPAND,
        "custom_fields": {"SalesOrder": "all"},  # named in $select on contract 5
        "date_only_time_zone": ZONE,
        "page_size": 100,
    }
    return tap_config(sbx, **{**settings, **extra})


def _without_codes(record: Any) -> Any:
    """A record without the contract-5 ``<Field>_id`` properties, at every level."""
    if isinstance(record, list):
        return [_without_codes(r) for r in record]
    if isinstance(record, dict):
        return {k: _without_codes(v) for k, v in record.items() if not k.endswith("_id")}
    return record


def test_discovery_picks_26(box: Sandbox) -> None:
    catalog = discover(_config(box))
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert "Default/26.200.001" in streams["SalesOrder"]["schema"]["description"]
    assert streams["SalesOrder"]["replication_key"] == "LastModifiedDateTime"
    props = streams["SalesOrder"]["schema"]["properties"]
    assert props["Status"]["type"] == ["string", "null"]
    assert "Status holds its description text" in props["Status_id"]["description"]
    assert props["Date"]["format"] == "date-time"
    assert "date_only_time_zone" in props["Date"]["description"]


def test_sync_on_26_matches_truth_and_24(box: Sandbox) -> None:
    on26 = run_tap(_config(box))
    assert on26.returncode == 0, on26.stderr[-3000:]
    on24 = run_tap(_config(box, endpoint_version=V24))
    assert on24.returncode == 0, on24.stderr[-3000:]
    for entity in ("Customer", "SalesOrder"):
        truth = {r["id"]: parse_ms(r["changed"]) for r in box.ground_truth(entity)["live"]}
        got = on26.records[entity]
        assert len(got) == len(truth)
        assert {r["id"]: parse_ms(r["LastModifiedDateTime"]) for r in got} == truth
        old = {r["id"]: r for r in on24.records[entity]}
        for record in got:
            new = _without_codes(record)
            if entity == "SalesOrder":  # the change field's name in 26 (§1.1)
                new["LastModified"] = new.pop("LastModifiedDateTime")
            assert new == old[record["id"]], record["id"]
    order = on26.records["SalesOrder"][0]
    assert order["Status_id"]
    assert order["Status"] != order["Status_id"]
    assert order["Details"]
    assert "RequestedOn" in order["Details"][0]
    # Contract-5 syntax on the wire: nested $expand, bare literals, no $custom.
    queries = [q for q in box.stats()["queries"] if "/26.200.001/" in q["path"]]
    customer = next(
        q["params"] for q in queries if q["path"].endswith("/Customer") and "$filter" in q["params"]
    )
    assert customer["$expand"] == "MainContact($expand=Address)"
    assert "datetimeoffset" not in customer["$filter"]


def test_expand_warning_once_per_incremental_stream(box: Sandbox) -> None:
    config = _config(box, expand={"SalesOrder": ["Details"]})
    run = run_tap(config)
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [line for line in run.stderr.splitlines() if "does not move" in line]
    assert len(warnings) == 1
    assert "WARNING" in warnings[0]
    assert "SalesOrder: incremental on LastModifiedDateTime with expand Details:" in warnings[0]


def test_upgrade_24_to_26_keeps_the_bookmark(sandbox_factory: Any) -> None:
    sbx = sandbox_factory(
        "--seed", "9", "--records", "60", "--burst-size", "90", "--endpoints", R2026
    )
    first = run_tap(_config(sbx, endpoint_version=V24))
    assert first.returncode == 0, first.stderr[-3000:]
    state = first.last_state
    assert state is not None
    assert state["bookmarks"]["SalesOrder"]["replication_key"] == "LastModified"
    changed = sbx.admin("POST", "mutate", {"entity": "SalesOrder", "op": "update", "count": 3})
    inserted = sbx.admin("POST", "mutate", {"entity": "SalesOrder", "op": "insert", "count": 2})
    # The sync end is on the server's Date (whole seconds): let it pass the new stamps.
    time.sleep(1.2)
    second = run_tap(_config(sbx), state=state)  # default: the highest version, 26.200.001
    assert second.returncode == 0, second.stderr[-3000:]
    got = {r["id"] for r in second.records["SalesOrder"]}
    want = set(changed["ids"]) | set(inserted["ids"])
    assert got == want, second.stderr[-3000:]  # nothing re-read, nothing missed
    assert "resuming the bookmark" in second.stderr
    after = second.last_state
    assert after is not None
    assert after["bookmarks"]["SalesOrder"]["replication_key"] == "LastModifiedDateTime"


def test_optimization_error_drops_select_for_the_run(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "3", "--records", "60", "--optimization-error", "Payment")
    config = tap_config(sbx, entities=["Payment"], page_size=25)
    catalog = discover(config)
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == "Payment")
    keep = {"Type", "ReferenceNbr", "LastModifiedDateTime", "PaymentAmount"}
    for meta in entry["metadata"]:
        crumb = meta["breadcrumb"]
        if len(crumb) == 2 and crumb[1] not in keep:
            meta["metadata"]["selected"] = False
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("cannot optimize this list query") == 1
    truth = {r["id"] for r in sbx.ground_truth("Payment")["live"]}
    records = run.records["Payment"]
    assert {r["id"] for r in records} == truth
    assert all(set(r) <= keep | {"id"} for r in records)
    queries = [q["params"] for q in sbx.stats()["queries"] if q["path"].endswith("/Payment")]
    assert sum("$select" in q for q in queries) == 1  # remembered: asked once with $select


def _doc5(**extra: dict[str, str]) -> dict[str, Any]:
    ref = "#/components/schemas/"
    fields = {
        "Status": {"$ref": ref + "StringSingleSelectValue"},
        "Date": {"$ref": ref + "DateOnlyValue"},
        "LastModifiedDateTime": {"$ref": ref + "DateTimeValue"},
        **extra,
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": "Default/26.200.001", "version": "5"},
        "paths": {"/Widget": {"get": {}}},
        "components": {
            "schemas": {
                "Entity": {"type": "object", "properties": {"id": {"type": "string"}}},
                "StringValue": {"type": "object", "properties": {"value": {"type": "string"}}},
                "DateTimeValue": {
                    "type": "object",
                    "properties": {"value": {"type": "string", "format": "date-time"}},
                },
                "SingleSelectOption": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "description": {"type": "string"}},
                },
                "StringSingleSelectValue": {
                    "type": "object",
                    "properties": {"value": {"$ref": ref + "SingleSelectOption"}},
                },
                "DateOnlyValue": {
                    "type": "object",
                    "properties": {"value": {"type": "string", "format": "date"}},
                },
                "Widget": {"allOf": [{"$ref": ref + "Entity"}, {"properties": fields}]},
            }
        },
    }


def test_contract5_document_keeps_contract4_columns() -> None:
    doc = ApiDocument(_doc5())
    assert doc.contract == "5"
    props = doc.stream_schema("Widget")["properties"]
    assert props["Status"] == {"type": ["string", "null"]}
    assert props["Status_id"]["description"].startswith("Code (id) of the single-select field")
    assert props["Date"]["format"] == "date-time"
    assert doc.entity("Widget").replication_key == "LastModifiedDateTime"
    # A real field named Status_id is never shadowed: no code property then.
    clash = ApiDocument(_doc5(Status_id={"$ref": "#/components/schemas/StringValue"}))
    props = clash.stream_schema("Widget")["properties"]
    assert props["Status_id"] == {"type": ["string", "null"]}
    plan = build_plan({"properties": props})
    raw = {"Status": {"value": {"id": "N", "description": "Open"}}, "Status_id": {"value": "x"}}
    assert transform(raw, plan) == {"Status": "Open", "Status_id": "x"}
    assert "its code is not kept" in props["Status"]["description"]
