"""Turn an endpoint's own OpenAPI 3 / Swagger 2 document into entity descriptions and schemas.

Pure functions only (no HTTP): the tap downloads the document with authentication and
passes the bytes here. docs/acumatica-api.md §5: the 24.200.001 document is OpenAPI 3.0.1 (schemas
under
``components.schemas``), 22/23 documents are Swagger 2.0 (``definitions``); every entity schema
is ``allOf: [Entity, {properties}]`` and every field is a value wrapper ``{"value": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tap_acumatica.errors import ConfigError

#: Change-tracking fields in order of preference (docs/acumatica-api.md §2.1).
#: ``LastModifiedDateTime`` wins
#: when an entity has both (StockItem, TemplateItems in 24.200.001): it is the DAC field itself
#: and the only one left in Default/26.200.001 (docs/acumatica-api.md §1.1), so bookmarks survive
#: upgrades.
REPLICATION_KEY_CANDIDATES: tuple[str, ...] = ("LastModifiedDateTime", "LastModified")

#: System members of every entity (docs/acumatica-api.md §3); handled by the record transform, not
#: fields.
SYSTEM_MEMBERS = frozenset({"id", "rowNumber", "note", "custom", "error", "files", "_links"})

#: Suffix of the property holding a contract-5 single-select's code (docs/acumatica-api.md §1.1):
#: ``Status`` keeps the description text contract 4 returned, ``Status_id`` gets the code.
SELECT_ID_SUFFIX = "_id"
#: Start of the ``<Field>_id`` description; the record plan recognises the property by it.
SELECT_ID_MARK = "Code (id) of the single-select field"
#: Start of a single-select's description when ``<Field>_id`` is taken by a real field.
SELECT_TEXT_MARK = "Single-select (contract 5): its description text"
DATE_ONLY_NOTE = (
    "Date-only in contract 5 (DateOnlyValue): written as the UTC instant of local midnight of "
    "that day in date_only_time_zone, the value contract 4 returned when that is the tenant's "
    "time zone."
)

_CUSTOM_TYPES: dict[str, dict[str, Any]] = {
    "CustomStringField": {"type": ["string", "null"]},
    "CustomGuidField": {"type": ["string", "null"]},
    "CustomIntField": {"type": ["integer", "null"]},
    "CustomShortField": {"type": ["integer", "null"]},
    "CustomLongField": {"type": ["integer", "null"]},
    "CustomByteField": {"type": ["integer", "null"]},
    "CustomDecimalField": {"type": ["number", "null"]},
    "CustomDoubleField": {"type": ["number", "null"]},
    "CustomBooleanField": {"type": ["boolean", "null"]},
    "CustomDateTimeField": {"type": ["string", "null"], "format": "date-time"},
}

_FILES_SCHEMA: dict[str, Any] = {
    "type": ["array", "null"],
    "items": {
        "type": "object",
        "properties": {
            "id": {"type": ["string", "null"]},
            "filename": {"type": ["string", "null"]},
            "href": {"type": ["string", "null"]},
            "comment": {"type": ["string", "null"]},
        },
    },
}


@dataclass(frozen=True)
class FieldInfo:
    """One member of an entity: a value field, a linked entity or a detail collection."""

    name: str
    kind: str  # "value" | "linked" | "detail"
    wrapper: str | None = None  # value wrapper schema name, e.g. "DateTimeValue"
    target: str | None = None  # entity schema name for linked/detail members
    json_schema: dict[str, Any] = field(default_factory=dict)  # for value fields
    select: bool = False  # a contract-5 single-select ({"id", "description"})


@dataclass(frozen=True)
class EntityInfo:
    """A top-level entity of the endpoint."""

    name: str
    fields: dict[str, FieldInfo]
    has_list_get: bool

    @property
    def replication_key(self) -> str | None:
        """The change field (docs/acumatica-api.md §2.1), or None for FULL_TABLE entities."""
        for candidate in REPLICATION_KEY_CANDIDATES:
            info = self.fields.get(candidate)
            if info is not None and info.json_schema.get("format") == "date-time":
                return candidate
        return None


def decode_document(raw: bytes) -> dict[str, Any]:
    """Decode a JSON document, tolerating a UTF-8 byte-order mark (IIS serves one)."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        msg = f"the endpoint document is not valid JSON ({exc})"
        raise ConfigError(msg) from exc
    if not isinstance(doc, dict):
        msg = "the endpoint document is not a JSON object"
        raise ConfigError(msg)
    return doc


class ApiDocument:
    """An endpoint's OpenAPI 3.0 or Swagger 2.0 document."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        """Index the document's schemas and paths."""
        if "openapi" in doc:
            self.schemas: Mapping[str, Any] = (doc.get("components") or {}).get("schemas") or {}
            self._ref_prefix = "#/components/schemas/"
        elif "swagger" in doc:
            self.schemas = doc.get("definitions") or {}
            self._ref_prefix = "#/definitions/"
        else:
            msg = "the endpoint document is neither OpenAPI 3 nor Swagger 2 (no version key)"
            raise ConfigError(msg)
        self.paths: Mapping[str, Any] = doc.get("paths") or {}
        self.title = str((doc.get("info") or {}).get("title", ""))
        #: ``info.version``: the contract, "4" or "5" (docs/acumatica-api.md §1.1, §5).
        self.contract = str((doc.get("info") or {}).get("version", ""))
        self._fields_cache: dict[str, dict[str, FieldInfo]] = {}

    @classmethod
    def from_bytes(cls, raw: bytes) -> ApiDocument:
        """Build from the raw bytes of ``swagger.json``."""
        return cls(decode_document(raw))

    # -- entities ---------------------------------------------------------------------------

    def entity_names(self) -> list[str]:
        """Top-level entities: paths ``/{Entity}`` that have a schema of the same name."""
        names = []
        for path in self.paths:
            name = path.strip("/")
            if name and "/" not in name and "{" not in name and name in self.schemas:
                names.append(name)
        return sorted(names)

    def entity(self, name: str) -> EntityInfo:
        """Describe a top-level entity."""
        ops = self.paths.get(f"/{name}") or {}
        return EntityInfo(name=name, fields=self.fields_of(name), has_list_get="get" in ops)

    def entities(self) -> list[EntityInfo]:
        """All top-level entities, sorted by name."""
        return [self.entity(name) for name in self.entity_names()]

    def fields_of(self, schema_name: str) -> dict[str, FieldInfo]:
        """Members of an entity schema (``allOf`` parts merged), system members excluded."""
        if schema_name in self._fields_cache:
            return self._fields_cache[schema_name]
        result: dict[str, FieldInfo] = {}
        for fname, prop in self._properties(self.schemas.get(schema_name) or {}).items():
            if fname in SYSTEM_MEMBERS:
                continue
            info = self._field(fname, prop)
            if info is not None:
                result[fname] = info
        self._fields_cache[schema_name] = result
        return result

    def _properties(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for part in schema.get("allOf") or []:
            target = self._resolve(part)
            if target is not None:
                props.update(self._properties(target))
        props.update(schema.get("properties") or {})
        return props

    def _ref_name(self, node: Mapping[str, Any]) -> str | None:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(self._ref_prefix):
            return ref[len(self._ref_prefix) :]
        return None

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any] | None:
        name = self._ref_name(node)
        return self.schemas.get(name) if name else node

    def _is_wrapper(self, schema: Mapping[str, Any]) -> bool:
        props = self._properties(schema)
        return "value" in props and set(props) <= {"value", "error", "type"}

    def _field(self, fname: str, prop: Mapping[str, Any]) -> FieldInfo | None:
        if prop.get("type") == "array":
            target = self._ref_name(prop.get("items") or {})
            if target and not self._is_wrapper(self.schemas.get(target) or {}):
                return FieldInfo(fname, "detail", target=target)
            return None
        target = self._ref_name(prop)
        if target is None:
            return None
        target_schema = self.schemas.get(target) or {}
        if self._is_wrapper(target_schema):
            value = self._resolve(self._properties(target_schema)["value"]) or {}
            if {"id", "description"} <= set(self._properties(value)):
                # docs/acumatica-api.md §1.1: a single-select keeps contract 4's text column.
                text = {"type": ["string", "null"]}
                return FieldInfo(fname, "value", wrapper=target, json_schema=text, select=True)
            return FieldInfo(
                fname, "value", wrapper=target, json_schema=self._value_schema(target_schema)
            )
        return FieldInfo(fname, "linked", target=target)

    def _value_schema(self, wrapper: Mapping[str, Any]) -> dict[str, Any]:
        """JSON Schema of a wrapper's ``value`` (StringValue → string, DecimalValue → number …)."""
        value = self._resolve(self._properties(wrapper)["value"]) or {}
        jtype = value.get("type")
        if jtype == "object" or "properties" in value:
            # Contract 5 single-select values carry {"id", "description"} (docs/acumatica-api.md
            # §1.1).
            props = {
                k: self._value_schema({"properties": {"value": v}})
                for k, v in self._properties(value).items()
            }
            return {"type": ["object", "null"], "properties": props}
        if jtype == "array":
            return {"type": ["array", "null"], "items": {"type": ["string", "null"]}}
        if jtype not in {"string", "number", "integer", "boolean"}:
            jtype = "string"
        schema: dict[str, Any] = {"type": [jtype, "null"]}
        if jtype == "string" and value.get("format") == "date-time":
            schema["format"] = "date-time"
        elif jtype == "string" and value.get("format") == "date":
            # docs/acumatica-api.md §1.1: contract 4 had these as date-times; keep the column.
            schema.update(format="date-time", description=DATE_ONLY_NOTE)
        return schema

    # -- JSON Schema -------------------------------------------------------------------------

    def stream_schema(
        self,
        entity: str,
        *,
        expand: Sequence[str] = (),
        custom: Mapping[str, Mapping[str, str]] | None = None,
        natural_keys: Sequence[str] = (),
        description: str = "",
    ) -> dict[str, Any]:
        """JSON Schema of a stream's records, with expanded members nested and custom fields.

        ``expand`` holds paths such as ``Details`` or ``MainContact/Address`` (docs/acumatica-api.md
        §4);
        ``custom`` maps view → field → Acumatica custom type (from ``$adHocSchema``).
        """
        tree = expand_tree(expand)
        self._check_expand(entity, tree)
        props: dict[str, Any] = {"id": {"type": "string"}}
        props.update(self._members_schema(entity, tree))
        props["note"] = {"type": ["string", "null"]}
        if custom:
            props["custom"] = custom_schema(custom)
        for key in natural_keys:
            if key in props:
                props[key] = {
                    **props[key],
                    "description": "Natural key field (docs/acumatica-api.md §2.1).",
                }
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if description:
            schema["description"] = description
        return schema

    def _members_schema(self, schema_name: str, tree: Mapping[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        fields = self.fields_of(schema_name)
        for fname, info in fields.items():
            if info.kind == "value":
                props[fname] = info.json_schema
                code = fname + SELECT_ID_SUFFIX
                if info.select and code not in fields:
                    props[code] = {
                        "type": ["string", "null"],
                        "description": f"{SELECT_ID_MARK} {fname} (contract 5); {fname} holds "
                        "its description text, as contract 4 returned it.",
                    }
                elif info.select:  # never shadow a real field: the code is not kept
                    props[fname] = {
                        **info.json_schema,
                        "description": f"{SELECT_TEXT_MARK}; its code is not kept, as the "
                        f"entity has a field {code}.",
                    }
            elif fname in tree and info.target:
                nested = {
                    "id": {"type": ["string", "null"]},
                    **self._members_schema(info.target, tree[fname]),
                    "note": {"type": ["string", "null"]},
                }
                if "files" in tree[fname]:
                    nested["files"] = _FILES_SCHEMA
                obj = {"type": ["object", "null"], "properties": nested}
                props[fname] = (
                    {"type": ["array", "null"], "items": {**obj, "type": "object"}}
                    if info.kind == "detail"
                    else obj
                )
        if "files" in tree:
            props["files"] = _FILES_SCHEMA
        return props

    def _check_expand(self, schema_name: str, tree: Mapping[str, Any], path: str = "") -> None:
        members = {
            n: i for n, i in self.fields_of(schema_name).items() if i.kind in {"linked", "detail"}
        }
        for name, sub in tree.items():
            if name == "files":
                continue
            info = members.get(name)
            if info is None or info.target is None:
                valid = ", ".join(sorted(members)) or "none"
                msg = (
                    f"expand: {schema_name} has no linked or detail entity "
                    f"{path + name!r}; valid: {valid}"
                )
                raise ConfigError(msg)
            self._check_expand(info.target, sub, f"{path}{name}/")


def expand_tree(paths: Iterable[str]) -> dict[str, Any]:
    """``["Details", "MainContact/Address"]`` → ``{"Details": {}, "MainContact": {"Address": {}}}``.

    Paths are split on ``/`` (docs/acumatica-api.md §4: nested expansion).
    """
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in (p.strip() for p in path.split("/")):
            if part:
                node = node.setdefault(part, {})
    return tree


def custom_schema(custom: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Schema of the ``custom`` member: ``{"View": {"Field": value}}`` with values unwrapped."""
    views = {
        view: {
            "type": ["object", "null"],
            "properties": {
                fname: dict(_CUSTOM_TYPES.get(ftype, {"type": ["string", "null"]}))
                for fname, ftype in sorted(fields.items())
            },
        }
        for view, fields in sorted(custom.items())
    }
    return {"type": ["object", "null"], "properties": views}


def custom_fields_from_adhoc(adhoc: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``custom.<View>.<Field>.type`` of an ``$adHocSchema`` answer (docs/acumatica-api.md §5)."""
    result: dict[str, dict[str, str]] = {}
    for view, fields in (adhoc.get("custom") or {}).items():
        if not isinstance(fields, dict):
            continue
        for fname, spec in fields.items():
            ftype = spec.get("type") if isinstance(spec, dict) else None
            result.setdefault(view, {})[fname] = str(ftype or "CustomStringField")
    return result
