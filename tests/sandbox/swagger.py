"""swagger.json generated from the sandbox's own entity definitions (api.md §5).

24.200.001 → OpenAPI 3.0.1 (components.schemas/parameters/responses); 23.200.001 → Swagger 2.0
(definitions, basePath), as §5 says the real 22/23 documents are. The layout follows the real
document; every description here is our own wording.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .entities import CUSTOM_TYPES, ENTITIES, V24, WRAPPER, Schema, schema

_VALUE_TYPES: dict[str, dict[str, str]] = {
    "StringValue": {"type": "string"},
    "DecimalValue": {"type": "number", "format": "double"},
    "DateTimeValue": {"type": "string", "format": "date-time"},
    "IntValue": {"type": "integer", "format": "int32"},
    "ShortValue": {"type": "integer", "format": "int32"},
    "LongValue": {"type": "integer", "format": "int64"},
    "ByteValue": {"type": "integer", "format": "int32"},
    "DoubleValue": {"type": "number", "format": "double"},
    "BooleanValue": {"type": "boolean"},
    "GuidValue": {"type": "string", "format": "uuid"},
}
_CUSTOM_VALUE = {
    "String": "StringValue",
    "Int": "IntValue",
    "Decimal": "DecimalValue",
    "Boolean": "BooleanValue",
    "DateTime": "DateTimeValue",
    "Guid": "GuidValue",
    "Short": "ShortValue",
    "Long": "LongValue",
    "Double": "DoubleValue",
    "Byte": "ByteValue",
}
_QUERY = {
    "select": ("$select", "Fields to return.", {"type": "string"}),
    "filter": ("$filter", "Conditions the returned records must satisfy.", {"type": "string"}),
    "expand": ("$expand", "Detail and linked entities to include.", {"type": "string"}),
    "custom": ("$custom", "Fields outside the endpoint contract to return.", {"type": "string"}),
    "skip": ("$skip", "How many records to skip.", {"type": "integer", "format": "int32"}),
    "top": ("$top", "How many records to return at most.", {"type": "integer", "format": "int32"}),
}
_PATH = {
    "ids": ("ids", "Key field values of the record, separated by slashes.", {"type": "string"}),
    "id": ("id", "The record's entity id (its NoteID).", {"type": "string", "format": "uuid"}),
    "filename": ("filename", "Name of the attached file with its extension.", {"type": "string"}),
    "actionName": ("actionName", "Name of the action to run.", {"type": "string"}),
}
_RESPONSES = {
    "ContractBasedControllerBase_401": ("Not signed in.", True),
    "ContractBasedControllerBase_500": ("Server error.", True),
    "InvokeAction_204": ("The action has finished.", False),
    "InvokeAction_202": ("The action is still running.", False),
    "InvokeAction_400": ("Invalid request data.", True),
    "InvokeAction_412": ("The If-Match / If-None-Match condition failed.", True),
    "DeleteByKeys_204": ("Deleted.", False),
    "PutFile_204": ("File attached.", False),
    "DeleteById_204": ("Deleted.", False),
    "PutEntity_400": ("Invalid request data.", True),
    "PutEntity_412": ("The If-Match / If-None-Match condition failed.", True),
}


class _Doc:
    def __init__(self, version: str) -> None:
        self.v3 = version >= V24
        self.version = version
        self.prefix = "#/components/schemas/" if self.v3 else "#/definitions/"
        self.schemas: dict[str, Any] = {}

    def ref(self, name: str) -> dict[str, str]:
        return {"$ref": self.prefix + name}

    def base_schemas(self) -> None:
        s = self.schemas
        s["Entity"] = {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "rowNumber": {"type": "integer", "format": "int64"},
                "note": self.ref("StringValue"),
                "custom": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": self.ref("CustomField"),
                    },
                },
                "error": {"type": "string"},
                "files": {"type": "array", "items": self.ref("FileLink")},
            },
        }
        for name, value in _VALUE_TYPES.items():
            s[name] = {
                "type": "object",
                "properties": {"value": dict(value), "error": {"type": "string"}},
            }
        s["CustomField"] = {
            "required": ["type"],
            "type": "object",
            "properties": {"type": {"type": "string"}},
            "discriminator": {"propertyName": "type"} if self.v3 else "type",
        }
        for ctype in CUSTOM_TYPES:
            inner = {
                "type": "object",
                "properties": {
                    "value": dict(_VALUE_TYPES[_CUSTOM_VALUE[ctype]]),
                    "error": {"type": "string"},
                },
            }
            s[f"Custom{ctype}Field"] = {"allOf": [self.ref("CustomField"), inner]}
        nullable = {"nullable": True} if self.v3 else {}
        s["HttpError"] = {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "exceptionMessage": {"type": "string", **nullable},
                "exceptionType": {"type": "string", **nullable},
                "stackTrace": {"type": "string", **nullable},
                "modelState": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "messageDetail": {"type": "string"},
            },
            "additionalProperties": {"type": "object"},
        }
        s["FileLink"] = {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "filename": {"type": "string"},
                "href": {"type": "string", "format": "uri"},
                "comment": {"type": "string", **nullable},
            },
        }

    def add_schema(self, sch: Schema, *, top: bool = False) -> None:
        if top:
            self.add_action(sch)
        if sch.name in self.schemas:
            return
        self.schemas[sch.name] = {}  # reserve (recursive linked types)
        props: dict[str, Any] = {}
        for f in sorted(sch.field_map(self.version).values(), key=lambda f: f.name.lower()):
            props[f.name] = self.ref(WRAPPER[f.type])
        for member, tname in sch.details.items():
            props[member] = {"type": "array", "items": self.ref(tname)}
            self.add_schema(schema(tname))
        for member, tname in sch.linked.items():
            props[member] = self.ref(tname)
            self.add_schema(schema(tname))
        self.schemas[sch.name] = {
            "allOf": [self.ref("Entity"), {"type": "object", "properties": props}]
        }

    def add_action(self, sch: Schema) -> None:
        self.schemas[f"{sch.name}CustomAction"] = {
            "required": ["entity"],
            "type": "object",
            "properties": {
                "entity": self.ref(sch.name),
                "parameters": {
                    "type": "object",
                    "properties": {"custom": self.schemas["Entity"]["properties"]["custom"]},
                    "description": "Parameters of the action.",
                },
            },
        }

    # ------------------------------------------------------------------ operations
    def param(self, name: str) -> dict[str, str]:
        return {"$ref": ("#/components/parameters/" if self.v3 else "#/parameters/") + name}

    def resp(self, name: str) -> dict[str, str]:
        return {"$ref": ("#/components/responses/" if self.v3 else "#/responses/") + name}

    def body_response(self, description: str, sch: dict[str, Any]) -> dict[str, Any]:
        if self.v3:
            content = {"schema": sch}
            return {
                "description": description,
                "content": {"application/json": content, "text/json": content},
            }
        return {"description": description, "schema": sch}

    def op(
        self,
        entity: str,
        suffix: str,
        summary: str,
        params: list[str],
        responses: dict[str, Any],
        body: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tags": [entity],
            "summary": summary,
            "operationId": f"{entity}_{suffix}",
        }
        if params:
            out["parameters"] = [self.param(p) for p in params]
        base = {
            "401": self.resp("ContractBasedControllerBase_401"),
            "500": self.resp("ContractBasedControllerBase_500"),
        }
        if body is not None:
            ref, bname = body
            if self.v3:
                content = {"schema": self.ref(ref)}
                out["requestBody"] = {
                    "description": "The record to send.",
                    "content": {"application/json": content, "text/json": content},
                    "required": True,
                }
            else:
                out.setdefault("parameters", []).append(
                    {"name": bname, "in": "body", "required": True, "schema": self.ref(ref)}
                )
        out["responses"] = {**base, **responses}
        return out

    def entity_paths(self, entity: str) -> dict[str, Any]:
        e = self.ref(entity)
        one = self.body_response("The record.", e)
        many = self.body_response("The records.", {"type": "array", "items": e})
        invalid = self.body_response("The record has validation errors.", e)
        q = ["select", "filter", "expand", "custom"]
        return {
            f"/{entity}/{{actionName}}": {
                "post": self.op(
                    entity,
                    "InvokeAction_CustomAction",
                    "Runs an action on a record.",
                    ["actionName"],
                    {
                        "204": self.resp("InvokeAction_204"),
                        "202": self.resp("InvokeAction_202"),
                        "400": self.resp("InvokeAction_400"),
                        "412": self.resp("InvokeAction_412"),
                        "422": invalid,
                    },
                    (f"{entity}CustomAction", "invocation"),
                )
            },
            f"/{entity}/$adHocSchema": {
                "get": self.op(
                    entity,
                    "GetAdHocSchema",
                    "Returns a template record listing the custom fields.",
                    [],
                    {"200": self.body_response("Template with custom fields.", e)},
                )
            },
            f"/{entity}/{{ids}}": {
                "get": self.op(
                    entity,
                    "GetByKeys",
                    "Reads one record by its key values.",
                    ["ids", *q],
                    {"200": one},
                ),
                "delete": self.op(
                    entity,
                    "DeleteByKeys",
                    "Deletes one record by its key values.",
                    ["ids"],
                    {"204": self.resp("DeleteByKeys_204")},
                ),
            },
            f"/{entity}/{{ids}}/files/{{filename}}": {
                "put": self.op(
                    entity,
                    "PutFile",
                    "Attaches a file to a record.",
                    ["ids", "filename"],
                    {"204": self.resp("PutFile_204")},
                )
            },
            f"/{entity}/{{id}}": {
                "get": self.op(
                    entity,
                    "GetById",
                    "Reads one record by its entity id.",
                    ["id", *q],
                    {"200": one},
                ),
                "delete": self.op(
                    entity,
                    "DeleteById",
                    "Deletes one record by its entity id.",
                    ["id"],
                    {"204": self.resp("DeleteById_204")},
                ),
            },
            f"/{entity}": {
                "get": self.op(
                    entity,
                    "GetList",
                    "Lists the records matching the query options.",
                    [*q, "skip", "top"],
                    {"200": many},
                ),
                "put": self.op(
                    entity,
                    "PutEntity",
                    "Inserts or updates a record.",
                    q,
                    {
                        "200": self.body_response("The saved record.", e),
                        "400": self.resp("PutEntity_400"),
                        "412": self.resp("PutEntity_412"),
                        "422": invalid,
                    },
                    (entity, "entity"),
                ),
            },
        }

    def parameters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, (name, desc, sch) in _PATH.items():
            out[key] = self._param(name, "path", desc, sch, required=True)
        for key, (name, desc, sch) in _QUERY.items():
            out[key] = self._param(name, "query", desc, sch, required=False)
        return out

    def _param(
        self, name: str, where: str, desc: str, sch: dict[str, str], *, required: bool
    ) -> dict[str, Any]:
        p: dict[str, Any] = {"name": name, "in": where, "description": desc}
        if required:
            p["required"] = True
        if self.v3:
            p["schema"] = dict(sch)
        else:
            p.update(sch)
        return p

    def responses(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (desc, has_body) in _RESPONSES.items():
            r: dict[str, Any] = {"description": desc}
            if name.endswith(("_204", "_202")) and not name.startswith("Delete"):
                loc = {
                    "description": "URL of the result or of the status.",
                    "schema": {"type": "string", "format": "uri"},
                }
                r["headers"] = {
                    "Location": loc
                    if self.v3
                    else {"type": "string", "format": "uri", "description": loc["description"]}
                }
            if has_body:
                r = self.body_response(desc, self.ref("HttpError"))
            out[name] = r
        return out


def build_document(version: str, server_url: str) -> dict[str, Any]:
    """The endpoint's OpenAPI 3.0.1 (24) or Swagger 2.0 (23) document as a dict."""
    doc = _Doc(version)
    doc.base_schemas()
    paths: dict[str, Any] = {}
    tags = []
    for name in sorted(ENTITIES):
        edef = ENTITIES[name]
        doc.add_schema(edef, top=True)
        paths.update(doc.entity_paths(name))
        tags.append({"name": name, "description": f"{edef.title} ({edef.screen})"})
    info = {"title": f"Default/{version}", "version": "4"}
    base = f"{server_url.rstrip('/')}/entity/Default/{version}"
    if doc.v3:
        return {
            "openapi": "3.0.1",
            "info": info,
            "servers": [{"url": base}],
            "paths": paths,
            "components": {
                "schemas": doc.schemas,
                "responses": doc.responses(),
                "parameters": doc.parameters(),
            },
            "tags": tags,
        }
    parts = urlsplit(base)
    return {
        "swagger": "2.0",
        "info": info,
        "host": parts.netloc,
        "basePath": parts.path,
        "schemes": [parts.scheme or "http"],
        "consumes": ["application/json", "text/json"],
        "produces": ["application/json", "text/json"],
        "paths": paths,
        "definitions": doc.schemas,
        "parameters": doc.parameters(),
        "responses": doc.responses(),
        "tags": tags,
    }
