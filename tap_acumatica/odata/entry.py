"""What a DAC or GI stream's catalog entry carries: ``--catalog`` runs need no ``$metadata``.

Discovery writes (:func:`stream_schema`), and a ``--catalog`` run reads back
(:func:`entity_type_of`), everything a stream needs of its :class:`EntityType`:

- the schema's ``title`` is the entity set's name (the URL segment, docs/acumatica-api.md §8);
- every column's ``description`` starts with its Edm type (``Edm.Decimal``), so values are
  converted as ``$metadata`` declared them (a column without one gets a type from its JSON
  type: number → Edm.Decimal, integer → Edm.Int64, date-time → Edm.DateTimeOffset);
- a key column's description ends in its place in the ``$metadata`` key (``Edm.String; key 2``):
  a DAC's keyset sort; a GI's default primary key (the entry's ``key_properties`` win). Not
  ``required``: a DAC's tombstones carry only ``id`` (docs/acumatica-api.md §10).

The SDK keeps only standard JSON Schema keywords of a catalog (no ``x-`` members), hence these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tap_acumatica.odata.dac import NOTE_ID
from tap_acumatica.odata.metadata import json_schema, short_name
from tap_acumatica.odata.model import EntityType, Property
from tap_acumatica.sync.deleted import DELETED_AT

if TYPE_CHECKING:
    from singer_sdk.singerlib import CatalogEntry

_EDM_OF_JSON = {"number": "Edm.Decimal", "integer": "Edm.Int64", "boolean": "Edm.Boolean"}
_EDM_OF_FORMAT = {"date-time": "Edm.DateTimeOffset", "date": "Edm.Date"}
#: A key column's description ends in its place in the ``$metadata`` key: "Edm.String; key 2".
_KEY_MARK = "; key "
_KEY = re.compile(r"; key (\d+)$")
_EDM = re.compile(r"Collection\(Edm\.[\w.]+\)|Edm\.[\w.]+")


def dac_short_name(etype: EntityType) -> str:
    """The DAC's class name (``SOLine``) from any generated name of its set, else the set's."""
    for name in (etype.name, *etype.aliases):
        short = short_name(name)
        if short != name:
            return short
    return etype.name


# -- schemas ---------------------------------------------------------------------------------


def stream_schema(etype: EntityType, *, kind: str) -> dict[str, Any]:
    """The stream's JSON Schema, carrying what :func:`entity_type_of` reads back (module doc).

    A DAC with a NoteID is keyed by ``id`` and its deleted rows leave as tombstones that carry
    only ``id`` (docs/acumatica-api.md §10): its key columns are neither required nor non-null.
    """
    noted = kind == "dac" and etype.property(NOTE_ID) is not None
    schema = json_schema(etype, keys_required=kind == "dac" and not noted)
    columns: dict[str, Any] = schema["properties"]
    for prop in etype.properties:
        described = str(columns[prop.name].get("description") or "")
        if not described.startswith(prop.edm):
            described = prop.edm
        if prop.name in etype.keys:
            described += f"{_KEY_MARK}{etype.keys.index(prop.name) + 1}"
        columns[prop.name]["description"] = described
    if noted:
        schema["properties"] = {"id": {"type": "string"}, **columns}
    schema["title"] = etype.name
    return schema


def add_deleted_at(schema: dict[str, Any]) -> None:
    """The Singer hard-delete column, set only on the records of deleted rows."""
    schema.setdefault("properties", {}).setdefault(
        DELETED_AT, {"type": ["string", "null"], "format": "date-time"}
    )


def entity_type_of(entry: CatalogEntry, prefix: str) -> EntityType:
    """The entity type a catalog entry describes (see the module docstring)."""
    schema = entry.schema.to_dict()
    props: Mapping[str, Any] = schema.get("properties") or {}
    name = str(schema.get("title") or entry.tap_stream_id[len(prefix) :])
    columns = tuple(
        Property(column, _edm(prop), "null" in _types(prop))
        for column, prop in props.items()
        if not column.startswith("_sdc_") and (column != "id" or _edm_described(prop))
    )
    marked = sorted(
        (int(found.group(1)), column)
        for column, prop in props.items()
        if (found := _KEY.search(str(prop.get("description") or "")))
    )
    keys = [column for _, column in marked] or list(schema.get("required") or ())
    short = short_name(name)
    return EntityType(
        name=name,
        keys=tuple(k for k in keys if k in {p.name for p in columns}),
        properties=columns,
        aliases=(short,) if short != name else (),
    )


def _types(prop: Mapping[str, Any]) -> list[str]:
    kind = prop.get("type")
    return [kind] if isinstance(kind, str) else list(kind or [])


def _edm_described(prop: Mapping[str, Any]) -> str | None:
    """The Edm type a column's description starts with (``stream_schema``), if any."""
    found = _EDM.match(str(prop.get("description") or ""))
    return found.group(0) if found else None


def _edm(prop: Mapping[str, Any]) -> str:
    described = _edm_described(prop)
    if described:
        return described
    for kind in _types(prop):
        if kind in _EDM_OF_JSON:
            return _EDM_OF_JSON[kind]
    return _EDM_OF_FORMAT.get(str(prop.get("format")), "Edm.String")


def describe_dac(etype: EntityType, rkey: str | None) -> str:
    """The stream's description: the table, its keys and its change field."""
    parts = [f"Acumatica DAC {dac_short_name(etype)} (OData entity set {etype.name})."]
    keys = ", ".join(etype.keys) or "none"
    if etype.property(NOTE_ID) is not None:
        parts.append(f"Primary key: id (the NoteID). Natural key: {keys}.")
    else:
        parts.append(f"Primary key: {keys} (no NoteID).")
    parts.append(f"Change field: {rkey}." if rkey else "No change field: read in full each run.")
    return " ".join(parts)


def describe_gi(set_name: str, keys: Sequence[str], rkey: str | None) -> str:
    """The stream's description: the inquiry, its keys and its change field."""
    key = f"Primary key: {', '.join(keys)}." if keys else "No primary key: append-only."
    change = f"Change field: {rkey}." if rkey else "No change field: read in full each run."
    return f"Acumatica generic inquiry {set_name} (OData). {key} {change}"


__all__ = [
    "add_deleted_at",
    "dac_short_name",
    "describe_dac",
    "describe_gi",
    "entity_type_of",
    "stream_schema",
]
