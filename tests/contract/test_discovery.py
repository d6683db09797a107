"""Discovery: the real Default/24.200.001 document, Swagger 2.0, versions, custom fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tap_acumatica.contract import registry as streams
from tap_acumatica.contract.document import (
    ApiDocument,
    custom_fields_from_adhoc,
    expand_tree,
)
from tap_acumatica.contract.endpoint import choose_endpoint_version
from tap_acumatica.errors import ConfigError
from tests._taprun import discover, run_tap, tap_config
from tests.support import Sandbox


@pytest.fixture(scope="module")
def real_doc(real_openapi_path: str) -> ApiDocument:
    return ApiDocument.from_bytes(Path(real_openapi_path).read_bytes())


def test_real_document_lists_every_top_level_entity(real_doc: ApiDocument) -> None:
    names = real_doc.entity_names()
    assert len(names) == 119  # docs/acumatica-api.md §2
    assert {"SalesOrder", "Customer", "StockItem", "ShipVia", "AccountSummaryInquiry"} <= set(names)
    assert real_doc.title == "Default/24.200.001"
    assert all(real_doc.entity(n).has_list_get for n in names)


def test_real_document_replication_keys(real_doc: ApiDocument) -> None:
    rkeys = {e.name: e.replication_key for e in real_doc.entities()}
    # only LastModified in 24 (docs/acumatica-api.md §2.1)
    assert rkeys["SalesOrder"] == "LastModified"
    assert rkeys["StockItem"] == "LastModifiedDateTime"  # both in 24: the DAC field wins
    assert rkeys["TemplateItems"] == "LastModifiedDateTime"
    assert rkeys["Customer"] == "LastModifiedDateTime"
    # SalesInvoice also has LastModifiedDate, a different field; Appendix A lists both.
    assert rkeys["SalesInvoice"] == "LastModifiedDateTime"
    full_table = {n for n, k in rkeys.items() if k is None}
    assert {"ShipVia", "Subaccount", "UnitsOfMeasure", "ShippingBox"} <= full_table
    assert "PhysicalInventoryReview" in full_table  # CreatedDateTime only
    # docs/acumatica-api.md §2.1: 33 entities have no change field
    assert len([k for k in rkeys.values() if k]) == 119 - 33


def test_real_document_streams_skip_inquiries(real_doc: ApiDocument) -> None:
    kept = [n for n in real_doc.entity_names() if not streams.is_inquiry(n)]
    skipped = sorted(set(real_doc.entity_names()) - set(kept))
    # §2.1's filter forms: the Default ones, plus eCommerce/Manufacturing ones not in Default.
    assert skipped == sorted(streams.INQUIRY_ENTITIES & set(real_doc.entity_names()))
    assert {"ContractUsage", "PayrollWCCCode"} <= set(skipped)
    assert len(kept) == 103


def test_real_document_value_types(real_doc: ApiDocument) -> None:
    schema = real_doc.stream_schema("SalesOrder", natural_keys=("OrderType", "OrderNbr"))
    props = schema["properties"]
    assert props["id"] == {"type": "string"}
    assert props["OrderNbr"]["type"] == ["string", "null"]
    assert "Natural key" in props["OrderNbr"]["description"]
    assert props["OrderTotal"] == {"type": ["number", "null"]}
    assert props["Hold"] == {"type": ["boolean", "null"]}
    assert props["LastModified"] == {"type": ["string", "null"], "format": "date-time"}
    assert props["NoteID"] == {"type": ["string", "null"]}  # GuidValue → string
    assert props["note"] == {"type": ["string", "null"]}
    # Not expanded: detail and linked members are absent (never returned without $expand).
    assert "Details" not in props
    assert "BillToAddress" not in props
    assert "custom" not in props
    ints = real_doc.stream_schema("Contact")["properties"]
    assert ints["ContactID"] == {"type": ["integer", "null"]}


def test_every_real_entity_builds_a_schema(real_doc: ApiDocument) -> None:
    for name in real_doc.entity_names():
        schema = real_doc.stream_schema(name)
        assert schema["properties"]["id"] == {"type": "string"}
        for prop in schema["properties"].values():
            assert prop.get("type"), name


def test_expand_nests_details_and_linked(real_doc: ApiDocument) -> None:
    schema = real_doc.stream_schema(
        "SalesOrder", expand=["Details", "Details/Allocations", "ShipToAddress", "files"]
    )
    props = schema["properties"]
    details = props["Details"]
    assert details["type"] == ["array", "null"]
    item = details["items"]["properties"]
    assert item["OrderQty"] == {"type": ["number", "null"]}
    assert item["Allocations"]["type"] == ["array", "null"]
    assert (
        "Allocations"
        not in real_doc.stream_schema("SalesOrder", expand=["Details"])["properties"]["Details"][
            "items"
        ]["properties"]
    )
    assert props["ShipToAddress"]["type"] == ["object", "null"]
    assert props["ShipToAddress"]["properties"]["City"] == {"type": ["string", "null"]}
    assert props["files"]["type"] == ["array", "null"]


def test_unknown_expand_names_the_valid_ones(real_doc: ApiDocument) -> None:
    with pytest.raises(ConfigError, match=r"no linked or detail entity 'Lines'.*Details"):
        real_doc.stream_schema("SalesOrder", expand=["Lines"])
    with pytest.raises(ConfigError, match="Details/Nope"):
        real_doc.stream_schema("SalesOrder", expand=["Details/Nope"])


def test_expand_tree() -> None:
    assert expand_tree(["Details", "MainContact/Address", " MainContact "]) == {
        "Details": {},
        "MainContact": {"Address": {}},
    }


def _swagger2() -> dict:
    return {
        "swagger": "2.0",
        "info": {"title": "Default/23.200.001", "version": "4"},
        "basePath": "/entity/Default/23.200.001",
        "paths": {
            "/Widget": {"get": {}, "put": {}},
            "/Widget/{id}": {"get": {}},
            "/Report": {"put": {}},
        },
        "definitions": {
            "Entity": {"type": "object", "properties": {"id": {"type": "string"}}},
            "StringValue": {"type": "object", "properties": {"value": {"type": "string"}}},
            "DecimalValue": {"type": "object", "properties": {"value": {"type": "number"}}},
            "LongValue": {
                "type": "object",
                "properties": {"value": {"type": "integer", "format": "int64"}},
            },
            "DateTimeValue": {
                "type": "object",
                "properties": {"value": {"type": "string", "format": "date-time"}},
            },
            "Widget": {
                "allOf": [
                    {"$ref": "#/definitions/Entity"},
                    {
                        "type": "object",
                        "properties": {
                            "Code": {"$ref": "#/definitions/StringValue"},
                            "Price": {"$ref": "#/definitions/DecimalValue"},
                            "Count": {"$ref": "#/definitions/LongValue"},
                            "LastModified": {"$ref": "#/definitions/DateTimeValue"},
                            "Parts": {"type": "array", "items": {"$ref": "#/definitions/Part"}},
                        },
                    },
                ]
            },
            "Part": {
                "allOf": [
                    {"$ref": "#/definitions/Entity"},
                    {"properties": {"Qty": {"$ref": "#/definitions/DecimalValue"}}},
                ]
            },
            "Report": {"allOf": [{"$ref": "#/definitions/Entity"}]},
        },
    }


def test_swagger2_with_bom() -> None:
    raw = b"\xef\xbb\xbf" + json.dumps(_swagger2()).encode()
    doc = ApiDocument.from_bytes(raw)
    assert doc.entity_names() == ["Report", "Widget"]
    assert not doc.entity("Report").has_list_get
    widget = doc.entity("Widget")
    assert widget.replication_key == "LastModified"
    props = doc.stream_schema("Widget", expand=["Parts"])["properties"]
    assert props["Count"] == {"type": ["integer", "null"]}
    assert props["Price"] == {"type": ["number", "null"]}
    assert props["Parts"]["items"]["properties"]["Qty"] == {"type": ["number", "null"]}


def test_not_a_document() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        ApiDocument.from_bytes(b"<html>login</html>")
    with pytest.raises(ConfigError, match="neither OpenAPI"):
        ApiDocument.from_bytes(b"{}")


INDEX = {
    "endpoints": [
        {"name": "Default", "version": "23.200.001"},
        {"name": "Default", "version": "24.200.001"},
        {"name": "Default", "version": "22.200.001"},
        {"name": "MANUFACTURING", "version": "25.100.001"},
    ]
}


def test_endpoint_version_default_is_highest() -> None:
    assert choose_endpoint_version(INDEX, "Default", None) == "24.200.001"
    assert choose_endpoint_version(INDEX, "manufacturing", None) == "25.100.001"


def test_unknown_endpoint_version_names_available() -> None:
    with pytest.raises(
        ConfigError, match=r"25\.200\.001.*22\.200\.001, 23\.200\.001, 24\.200\.001"
    ):
        choose_endpoint_version(INDEX, "Default", "25.200.001")
    with pytest.raises(ConfigError, match=r"Nope.*MANUFACTURING"):
        choose_endpoint_version(INDEX, "Nope", None)


def test_custom_fields_from_adhoc() -> None:
    adhoc = {
        "id": "x",
        "custom": {
            "Document": {"UsrRepairType": {"type": "CustomStringField", "value": None}},
            "Item": {"UsrWeight": {"type": "CustomDecimalField", "value": None}},
        },
    }
    assert custom_fields_from_adhoc(adhoc) == {
        "Document": {"UsrRepairType": "CustomStringField"},
        "Item": {"UsrWeight": "CustomDecimalField"},
    }


# -- against the sandbox ---------------------------------------------------------------------


def test_discover_sandbox_all_entities(sandbox: Sandbox) -> None:
    config = tap_config(sandbox)
    del config["entities"]
    catalog = discover(config)
    by_name = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert "SalesPricesInquiry" not in by_name  # inquiry: needs PUT
    # The default sandbox is a 2026 R2 instance: the tap reads its contract-5 endpoint.
    assert "(Default/26.200.001)" in by_name["SalesOrder"]["schema"]["description"]
    assert by_name["SalesOrder"]["replication_key"] == "LastModifiedDateTime"
    assert by_name["StockItem"]["replication_key"] == "LastModifiedDateTime"
    assert by_name["Subaccount"].get("replication_key") is None
    assert by_name["Subaccount"]["replication_method"] == "FULL_TABLE"
    assert by_name["SalesOrder"]["key_properties"] == ["id"]
    assert "OrderType, OrderNbr" in by_name["SalesOrder"]["schema"]["description"]


def test_discover_expand_and_custom_fields(sandbox: Sandbox) -> None:
    config = tap_config(
        sandbox,
        entities=["Customer", "SalesOrder"],
        expand={"Customer": ["MainContact", "MainContact/Address"], "SalesOrder": ["Details"]},
        custom_fields={"Customer": "all", "SalesOrder": []},
    )
    catalog = discover(config)
    customer = next(s for s in catalog["streams"] if s["tap_stream_id"] == "Customer")
    props = customer["schema"]["properties"]
    assert props["MainContact"]["properties"]["Address"]["properties"]["City"]
    custom = props["custom"]["properties"]
    assert custom["CurrentCustomer"]["properties"]["UsrCreditScore"]["type"] == [
        "integer",
        "null",
    ]
    assert custom["DefLocation"]["properties"]["CBranchID"]


def test_unknown_custom_field_is_a_clear_error(sandbox: Sandbox) -> None:
    config = tap_config(sandbox, custom_fields={"Customer": ["CurrentCustomer.UsrNope"]})
    run = run_tap(config, args=("--discover",))
    assert run.returncode == 1
    assert "UsrNope" in run.stderr
    assert "CurrentCustomer.UsrLoyaltyTier" in run.stderr


def test_unknown_endpoint_version_error(sandbox: Sandbox) -> None:
    run = run_tap(tap_config(sandbox, endpoint_version="22.200.001"), args=("--discover",))
    assert run.returncode == 1
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("tap-acumatica: endpoint_version '22.200.001'")
    assert "23.200.001, 24.200.001, 25.200.001, 26.200.001" in line
    assert "Traceback" not in run.stderr


def test_discover_23_swagger2(sandbox: Sandbox) -> None:
    catalog = discover(tap_config(sandbox, endpoint_version="23.200.001"))
    names = {s["tap_stream_id"] for s in catalog["streams"]}
    assert {"Customer", "SalesOrder", "StockItem"} <= names
    stock = next(s for s in catalog["streams"] if s["tap_stream_id"] == "StockItem")
    # 23 has only LastModified (docs/acumatica-api.md §2.1)
    assert stock["replication_key"] == "LastModified"


def test_requesting_an_inquiry_entity_is_a_clear_error(sandbox: Sandbox) -> None:
    run = run_tap(tap_config(sandbox, entities=["SalesPricesInquiry"]), args=("--discover",))
    assert run.returncode == 1
    assert "SalesPricesInquiry are inquiry forms" in run.stderr
