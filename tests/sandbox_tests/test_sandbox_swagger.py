"""swagger.json of the sandbox: generated from its own definitions, laid out like the real one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.data import Dataset
from tests.sandbox.entities import ENTITIES, V23, V24, WRAPPER
from tests.support import OPENAPI_24

SERVER = "http://127.0.0.1:5555/AcumaticaERP"
PATTERNS = ["/{E}", "/{E}/{id}", "/{E}/{ids}", "/{E}/$adHocSchema", "/{E}/{ids}/files/{filename}",
            "/{E}/{actionName}"]  # fmt: skip


@pytest.fixture(scope="module")
def ds() -> Dataset:
    import datetime as dt  # noqa: PLC0415

    return Dataset(
        seed=1, records=20, tz="America/New_York", now=lambda: dt.datetime.now(dt.timezone.utc)
    )


@pytest.fixture(scope="module")
def doc24(ds: Dataset) -> dict[str, Any]:
    return json.loads(ds.swagger(V24, SERVER))


@pytest.fixture(scope="module")
def doc23(ds: Dataset) -> dict[str, Any]:
    return json.loads(ds.swagger(V23, SERVER))


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    if not OPENAPI_24.is_file():
        pytest.skip("../shared/acumatica/Default_24.200.001.openapi.json is not available")
    return json.loads(OPENAPI_24.read_text(encoding="utf-8"))


def props(sch: dict[str, Any]) -> dict[str, Any]:
    return sch["allOf"][1]["properties"] if "allOf" in sch else sch.get("properties", {})


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        out = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for v in node.values():
            out |= refs(v)
        return out
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node)) if node else set()
    return set()


def test_openapi_24_layout(doc24: dict[str, Any]) -> None:
    assert doc24["openapi"] == "3.0.1"
    assert (doc24["info"]["title"], doc24["info"]["version"]) == ("Default/24.200.001", "4")
    assert doc24["servers"] == [{"url": f"{SERVER}/entity/Default/24.200.001"}]
    schemas = doc24["components"]["schemas"]
    assert set(WRAPPER.values()) <= set(schemas)
    assert set(props(schemas["Entity"])) == {"id", "rowNumber", "note", "custom", "error", "files"}
    for name, edef in ENTITIES.items():
        sch = schemas[name]
        assert sch["allOf"][0] == {"$ref": "#/components/schemas/Entity"}
        fields = props(sch)
        for f in edef.field_map(V24).values():
            assert fields[f.name] == {"$ref": f"#/components/schemas/{WRAPPER[f.type]}"}
        for member, tname in edef.details.items():
            assert fields[member] == {
                "type": "array",
                "items": {"$ref": f"#/components/schemas/{tname}"},
            }
        for member, tname in edef.linked.items():
            assert fields[member] == {"$ref": f"#/components/schemas/{tname}"}
        for pattern in PATTERNS:
            assert pattern.replace("{E}", name) in doc24["paths"]
    every_ref = refs(doc24)
    for ref in every_ref:
        section, _, name = ref.rpartition("/")
        node = doc24
        for part in section.lstrip("#/").split("/"):
            node = node[part]
        assert name in node, ref
    getlist = doc24["paths"]["/SalesOrder"]["get"]
    names = [
        doc24["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]["name"]
        for p in getlist["parameters"]
    ]
    assert names == ["$select", "$filter", "$expand", "$custom", "$skip", "$top"]
    assert "$orderby" not in json.dumps(doc24)


def test_version_specific_fields(doc24: dict[str, Any], doc23: dict[str, Any]) -> None:
    si24 = props(doc24["components"]["schemas"]["StockItem"])
    si23 = props(doc23["definitions"]["StockItem"])
    assert "LastModified" in si24
    assert "LastModifiedDateTime" in si24
    assert "LastModified" in si23
    assert "LastModifiedDateTime" not in si23
    assert "LastModifiedDateTime" in props(doc23["definitions"]["SalesInvoice"])
    assert "LastModifiedDate" not in props(doc23["definitions"]["SalesInvoice"])
    assert "LastModified" in props(doc24["components"]["schemas"]["SalesOrder"])
    sub = props(doc24["components"]["schemas"]["Subaccount"])
    assert not [f for f in sub if f.startswith("LastModified")]
    inquiry = props(doc24["components"]["schemas"]["SalesPricesInquiry"])
    assert inquiry["SalesPriceDetails"]["type"] == "array"
    assert "put" in doc24["paths"]["/SalesPricesInquiry"]


def test_swagger_2_for_23(doc23: dict[str, Any]) -> None:
    assert doc23["swagger"] == "2.0"
    assert doc23["info"] == {"title": "Default/23.200.001", "version": "4"}
    assert doc23["basePath"] == "/AcumaticaERP/entity/Default/23.200.001"
    assert doc23["host"] == "127.0.0.1:5555"
    assert "components" not in doc23
    assert doc23["definitions"]["Customer"]["allOf"][0] == {"$ref": "#/definitions/Entity"}
    assert {p["name"] for p in doc23["parameters"].values()} >= {"$select", "$filter", "$top"}
    for ref in refs(doc23):
        assert ref.startswith(("#/definitions/", "#/parameters/", "#/responses/")), ref
        section, _, name = ref.rpartition("/")
        assert name in doc23[section.split("/")[1]], ref


def test_same_structure_as_the_real_document(doc24: dict[str, Any], real: dict[str, Any]) -> None:
    assert set(doc24) == set(real)
    assert doc24["openapi"] == real["openapi"]
    assert doc24["info"]["version"] == real["info"]["version"]
    assert set(doc24["components"]) == set(real["components"])
    ours, theirs = doc24["components"]["schemas"], real["components"]["schemas"]
    for wrapper in set(WRAPPER.values()) | {"Entity", "HttpError", "FileLink", "CustomField"}:
        assert ours[wrapper] == theirs[wrapper], wrapper
    assert {p["name"] for p in doc24["components"]["parameters"].values()} == {
        p["name"] for p in real["components"]["parameters"].values()
    }
    assert set(doc24["components"]["responses"]) <= set(real["components"]["responses"])
    # every schema and every field we generate exists in the real document with the same type
    for name, sch in ours.items():
        assert name in theirs, name
        assert ("allOf" in sch) == ("allOf" in theirs[name]), name
        real_props = props(theirs[name])
        for field, spec in props(sch).items():
            if name.endswith("CustomAction"):
                continue
            assert real_props.get(field) == spec, (name, field)
    # the same path patterns per entity, with the same verbs and parameter references
    for entity in ENTITIES:
        for pattern in PATTERNS:
            path = pattern.replace("{E}", entity)
            assert set(doc24["paths"][path]) == set(real["paths"][path]), path
            for verb, op in doc24["paths"][path].items():
                real_op = real["paths"][path][verb]
                assert op["operationId"] == real_op["operationId"]
                assert op.get("parameters") == real_op.get("parameters"), (path, verb)
                assert set(op["responses"]) == set(real_op["responses"]), (path, verb)
    assert {t["name"] for t in doc24["tags"]} <= {t["name"] for t in real["tags"]}


def test_adhoc_schema_matches_the_documented_template(ds: Dataset) -> None:
    for entity, edef in ENTITIES.items():
        doc = json.loads(ds.adhoc_schema(V24, entity))
        assert doc["_workflowActions"] == []
        for view, fields in edef.custom.items():
            for name, ctype in fields.items():
                assert doc["custom"][view][name] == {"type": f"Custom{ctype}Field", "value": None}
        for f in edef.field_map(V24):
            assert doc[f] == {}
