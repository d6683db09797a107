"""Endpoint versions of a 2026 R2 instance and contract 5 (``Default/26.200.001``), issue 11.

``--endpoints`` picks the ``Default`` versions the instance lists in ``GET /entity`` (api.md §1,
§1.1). 23/24/25.200.001 speak contract 4 (25 keeps 24's entities and shapes, api.md §1.1);
26.200.001 speaks contract 5, built here as a translation layer over the contract-4 engine
(data.py), so both contracts serve the same records:

* queries (api.md §1.1 "Contract 4 vs 5", §4): bare ISO date-time literals, parenthesised nested
  ``$expand``/``$select``, no ``$custom`` (custom fields go in ``$select``), no slash paths in
  ``$expand``/``$select`` → translated to the contract-4 options, or refused;
* records (api.md §1.1, §3): single-select fields ``{"value": {"id", "description"}}``,
  date-only fields ``"YYYY-MM-DD"``, ``LastModified`` replaced by ``LastModifiedDateTime``;
* swagger.json (api.md §1.1, §5): ``info.version`` "5", ``StringSingleSelectValue`` and
  ``DateOnlyValue`` wrappers, no ``$custom`` parameter.

Every error text and the single-select codes are our guesses (see README "Contract 5").
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec

from . import Reply
from .entities import ENTITIES, SUBS, V23, V24, VERSIONS, EntityDef, Schema, schema
from .errors import ApiError, api_error

if TYPE_CHECKING:
    from .data import Dataset
    from .server import Handler

V25 = "25.200.001"
V26 = "26.200.001"
KNOWN = (V23, V24, V25, V26)
R2026 = KNOWN  # api.md §1.1: a 2026 R2 instance lists Default 20…26.200.001 (we serve 23…26)
#: A 2026 R2 instance, as current real ones are (the sandbox's command line default).
DEFAULT_ENDPOINTS = R2026
#: In-process datasets (unit tests of the data layer) keep the two versions they were built on.
LEGACY_ENDPOINTS = tuple(VERSIONS)
CONTRACT5 = frozenset({V26})

# api.md §1.1: these fields became single-selects in 26.200.001 (where they have a fixed list)
SINGLE_SELECT_NAMES = frozenset(
    {
        "Status",
        "Type",
        "DocType",
        "OriginalDocType",
        "ItemStatus",
        "Priority",
        "ApprovalStatus",
        "ShippingDestinationType",
    }
)
# api.md §1.1, §2.1: 26.200.001 keeps only LastModifiedDateTime (SalesOrder, StockItem, …)
RENAMED = {"SalesOrder": {"LastModified": "LastModifiedDateTime"}}
DROPPED = {"StockItem": frozenset({"LastModified"})}
# Acumatica-style one-letter codes (e.g. SOOrderStatus Open = "N", Hold = "H", Completed = "C");
# GUESS beyond the docs' example. A code already taken in the same field falls back to the
# first two letters, then to the first letter + a digit (_codes).
KNOWN_CODES = {
    "Open": "N",
    "On Hold": "H",
    "Completed": "C",
    "Closed": "C",
    "Cancelled": "L",
    "Canceled": "L",
    "Back Order": "B",
    "Balanced": "B",
    "Shipping": "S",
    "Pending Approval": "P",
    "Pending Processing": "P",
    "Voided": "V",
    "Active": "A",
    "Inactive": "I",
    "Credit Hold": "C",
    "One-Time": "T",
    "Hold Payments": "P",
    "Posted": "P",
    "Unposted": "U",
    "Released": "R",
    "Planned": "D",
    "Suspended": "E",
    "Confirmed": "F",
    "Invoiced": "I",
    "Receipted": "R",
    "Asset": "A",
    "Liability": "L",
    "Income": "I",
    "Expense": "E",
    "Shipment": "I",
    "Transfer": "T",
    "Contact": "PN",
    "Employee": "EP",
    "Lead": "LD",
    "No Sales": "NS",
    "No Purchases": "NP",
    "Marked for Deletion": "DE",
}
# the OData v4 library's exception (contract 4 answers Microsoft.Data.OData.ODataException)
C5_ODATA = "Microsoft.OData.ODataException"
_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()


# ---------------------------------------------------------------------- the --endpoints flag
def parse_endpoints(text: str) -> list[str]:
    """``--endpoints 23.200.001,26.200.001`` → the listed versions (in the order given)."""
    out: list[str] = []
    for part in text.split(","):
        v = part.strip()
        if not v:
            continue
        if v not in KNOWN:
            raise argparse.ArgumentTypeError(
                f"unknown endpoint version {v!r} (known: {', '.join(KNOWN)})"
            )
        if v not in out:
            out.append(v)
    if not out:
        raise argparse.ArgumentTypeError("at least one endpoint version is needed")
    return out


#: api.md §3: older data carries values of another type than the document says (Manufacturing
#: times as "0100" in an IntValue); one entity the README demo does not read does so by default.
DEFAULT_TYPE_DRIFT = ("Shipment.PackageCount",)


def parse_type_drift(text: str) -> tuple[str, ...]:
    """``--type-drift E.Field,…`` (``''`` for none)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        entity, dot, fname = name.partition(".")
        if not (entity and dot and fname):
            msg = f"--type-drift: {name!r} is not Entity.Field"
            raise argparse.ArgumentTypeError(msg)
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--type-drift",
        type=parse_type_drift,
        default=DEFAULT_TYPE_DRIFT,
        metavar="E.F,…",
        help=(
            'integer fields whose values are served as zero-padded text ("0002"), as older '
            f"records of real instances carry (default {','.join(DEFAULT_TYPE_DRIFT)}; '' none)"
        ),
    )
    p.add_argument(
        "--endpoints",
        type=parse_endpoints,
        default=list(DEFAULT_ENDPOINTS),
        metavar="V,V…",
        help=(
            "Default endpoint versions of the instance, comma-separated, from "
            f"{', '.join(KNOWN)} (default {','.join(DEFAULT_ENDPOINTS)}; a 2026 R2 instance: "
            f"{','.join(R2026)}); 26.200.001 speaks contract 5"
        ),
    )


# ---------------------------------------------------------------------- catalogue
@dataclass
class Kinds:
    """Contract-5 value kinds of one schema's fields."""

    single: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> description -> id
    dates: frozenset[str] = frozenset()


def _codes(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    taken: set[str] = set()
    for v in values:
        if v in out:
            continue
        letters = "".join(ch for ch in v.upper() if ch.isalnum()) or "X"
        tries = [KNOWN_CODES.get(v, ""), letters[:1], letters[:2]]
        tries += [f"{letters[:1]}{i}" for i in range(1, 100)]
        code = next(c for c in tries if c and c not in taken)
        out[v] = code
        taken.add(code)
    return out


@cache
def kinds(name: str) -> Kinds:
    """Single-select and date-only fields of a schema (by type name), api.md §1.1."""
    sch = schema(name)
    top = sch if isinstance(sch, EntityDef) else None
    single: dict[str, dict[str, str]] = {}
    dates = set()
    for f in sch.fields:
        if f.type == "DT":
            stamps = (*top.keys, *top.change, *top.created) if top else ("LastModifiedDateTime",)
            # records.py renders every other DateTimeValue as a local midnight: a date (but a
            # *Modified*/*Created* field is a stamp by name, e.g. SalesInvoice.LastModifiedDate)
            if f.name not in stamps and "Modified" not in f.name and "Created" not in f.name:
                dates.add(f.name)
        elif f.type == "S" and f.name in SINGLE_SELECT_NAMES:
            if top is not None and top.types and top.keys and f.name == top.keys[0]:
                single[f.name] = {display: code for code, display, _ in top.types}
                continue
            values = [v for v in sch.pools.get(f.name, []) if isinstance(v, str)]
            if values:  # a field without a fixed list stays a StringValue
                single[f.name] = _codes(values)
    return Kinds(single, frozenset(dates))


def single_select_id(entity: str, fname: str, description: str) -> str:
    """The contract-5 id of a contract-4 single-select text (tests and docs use it)."""
    return kinds(entity).single[fname][description]


# ---------------------------------------------------------------------- query translation
def _c5_error(message: str) -> ApiError:
    return api_error(message, C5_ODATA, stack="odata")


def _no_property(name: str, type_name: str) -> ApiError:
    return _c5_error(f"Could not find a property named '{name}' on type 'Default.{type_name}'.")


_FILTER_TOKEN = re.compile(
    r"(?P<str>'(?:[^']|'')*')"
    r"|(?P<typed>(?P<prefix>[A-Za-z_]\w*)'(?:[^']|'')*')"
    r"|(?P<dt>(?<![\w.])\d{4}-\d{2}-\d{2}"
    r"(?P<time>T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)(?![\w.:])"
    r"|(?P<name>[A-Za-z_]\w*(?:[./][A-Za-z_]\w*)*)"
    r"|(?P<other>.)",
    re.S,
)


def translate_filter(entity: str, text: str) -> str:
    """A contract-5 ``$filter`` in the contract-4 syntax the engine parses (api.md §1.1, §4).

    Bare ``2024-07-15T10:00:00Z`` → ``datetimeoffset'…'`` (no offset: tenant-local, as in
    contract 4), bare ``2024-07-15`` → ``date'…'``; ``datetimeoffset'…'``/``datetime'…'`` are
    refused (OData 4.01 has no typed date-time literals). Slash paths stay (OData v4 keeps them
    in ``$filter``).
    """
    out: list[str] = []
    for m in _FILTER_TOKEN.finditer(text):
        tok = m.group(0)
        if m.group("typed") and m.group("prefix").lower() in {"datetimeoffset", "datetime"}:
            # GUESS: the text of a contract-5 server's refusal is not published
            raise _c5_error(
                f"Syntax error at position {m.start()} in '{text}': the literal '{tok}' is not "
                "supported. Contract 5 uses OData 4.01 literals: write date-time values "
                "without a type prefix or quotes, e.g. 2024-07-15T10:00:00Z."
            )
        if m.group("dt"):
            tok = f"datetimeoffset'{tok}'" if m.group("time") else f"date'{tok}'"
        elif m.group("name"):
            tok = _filter_name(entity, tok)
        out.append(tok)
    return "".join(out)


def _filter_name(entity: str, name: str) -> str:
    if name in DROPPED.get(entity, ()) or name in RENAMED.get(entity, {}):
        raise _no_property(name, entity)
    back = {new: old for old, new in RENAMED.get(entity, {}).items()}
    return back.get(name, name)


@dataclass
class _Node:
    """One level of a contract-5 $expand/$select tree."""

    fields: set[str] | None = None  # None: no $select at this level
    custom: list[str] = field(default_factory=list)  # View.Field names from $select
    members: dict[str, _Node] = field(default_factory=dict)
    expanded: bool = False

    def child(self, name: str) -> _Node:
        return self.members.setdefault(name, _Node())


def _split(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses; unbalanced parentheses are a syntax error."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _c5_error(f"Syntax error: unbalanced parentheses in '{text}'.")
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise _c5_error(f"Syntax error: unbalanced parentheses in '{text}'.")
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


_ITEM = re.compile(r"^([^()]+?)\s*(?:\((.*)\))?$", re.S)
# GUESSES in the words of Microsoft.OData.Core (the OData v4 library): slash paths (api.md §1.1)
_SLASH_EXPAND = (
    "Found a path traversing multiple navigation properties in '{0}'. Please rephrase the query "
    "such that each expand path contains only type segments and navigation properties: "
    "nest them in parentheses, e.g. MainContact($expand=Address)."
)
_SLASH_SELECT = (
    "Found a path with multiple navigation properties or a bad complex property path in a select "
    "clause: '{0}'. Please reword your query such that each level of select or expand only "
    "contains either TypeSegments or Properties, e.g. Details($select=InventoryID)."
)


def _item(text: str) -> tuple[str, list[tuple[str, str]]]:
    m = _ITEM.match(text)
    if m is None:
        raise _c5_error(f"Syntax error in the query option item '{text}'.")
    name, inner = m.group(1).strip(), m.group(2)
    opts: list[tuple[str, str]] = []
    for part in _split(inner or "", ";"):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in {"$expand", "$select"}:
            raise _c5_error(f"The query option '{key}' is not supported inside '{name}(…)'.")
        opts.append((key, value))
    return name, opts


def _expand(node: _Node, text: str) -> None:
    for raw in _split(text, ","):
        name, opts = _item(raw)
        if "/" in name:
            raise _c5_error(_SLASH_EXPAND.format(name))
        child = node.child(name)
        child.expanded = True
        for key, value in opts:
            (_expand if key == "$expand" else _select)(child, value)


def _select(node: _Node, text: str) -> None:
    for raw in _split(text, ","):
        name, opts = _item(raw)
        if "/" in name:
            raise _c5_error(_SLASH_SELECT.format(name))
        if opts:
            child = node.child(name)
            for key, value in opts:
                (_expand if key == "$expand" else _select)(child, value)
            continue
        if name == "*":
            continue
        if "." in name:  # View.Field: a custom field (contract 5 has no $custom)
            node.custom.append(name)
            continue
        if node.fields is None:
            node.fields = set()
        node.fields.add(name)


def _has_select(node: _Node) -> bool:
    return node.fields is not None or any(_has_select(c) for c in node.members.values())


def translate_query(version: str, edef: EntityDef, params: dict[str, str]) -> dict[str, str]:
    """Contract-5 query options → the contract-4 options the engine understands."""
    if "$custom" in params:
        # api.md §1.1: contract 5 has no $custom; custom fields are named in $select
        raise _c5_error("The query parameter '$custom' is not supported.")
    out = {k: v for k, v in params.items() if k not in {"$expand", "$select", "$filter"}}
    if params.get("$filter", "").strip():
        out["$filter"] = translate_filter(edef.name, params["$filter"])
    root = _Node(expanded=True)
    _expand(root, params.get("$expand", ""))
    _select(root, params.get("$select", ""))
    expand: list[str] = []
    select: list[str] = []
    custom: list[str] = []
    _emit(version, edef, root, "", expand, select, custom, _has_select(root), top=True)
    if expand:
        out["$expand"] = ",".join(expand)
    if select:
        out["$select"] = ",".join(select)
    if custom:
        out["$custom"] = ",".join(custom)
    return out


def _emit(
    version: str,
    sch: Schema,
    node: _Node,
    prefix: str,
    expand: list[str],
    select: list[str],
    custom: list[str],
    any_select: bool,
    *,
    top: bool,
) -> None:
    fmap = sch.field_map(version)
    renamed = RENAMED.get(sch.name, {}) if top else {}
    dropped = DROPPED.get(sch.name, frozenset()) if top else frozenset()
    back = {new: old for old, new in renamed.items()}
    if node.fields is not None:
        for given in sorted(node.fields):
            if given in renamed or given in dropped:
                raise _no_property(given, sch.name)
            name = back.get(given, given)
            if name not in fmap and name not in sch.details and name not in sch.linked:
                raise _no_property(given, sch.name)
            select.append(prefix + name)
    elif any_select and _has_select(node):
        # a nested $select below a level without one: name this level's fields explicitly
        select.extend(prefix + name for name in sorted(fmap))
    custom.extend(prefix + name for name in node.custom)
    for name, child in node.members.items():
        if name == "files":
            expand.append(prefix + name)
            continue
        if name in sch.details:
            sub = schema(sch.details[name])
        elif name in sch.linked:
            sub = schema(sch.linked[name])
        else:
            raise _no_property(name, sch.name)
        if child.expanded:
            expand.append(prefix + name)
        elif not child.custom and child.fields is None and not child.members:
            continue
        deeper = f"{prefix}{name}/"
        _emit(version, sub, child, deeper, expand, select, custom, any_select, top=False)


# ---------------------------------------------------------------------- records
def render(entity: str, body: bytes) -> bytes:
    """A contract-4 record or list body in contract-5 shapes (api.md §1.1)."""
    doc = _DEC.decode(body)
    if isinstance(doc, list):
        doc = [_record(entity, r, top=True) for r in doc]
    else:
        doc = _record(entity, doc, top=True)
    return _ENC.encode(doc)


def _record(type_name: str, rec: dict[str, Any], *, top: bool) -> dict[str, Any]:
    sch = schema(type_name)
    k = kinds(type_name)
    renamed = RENAMED.get(type_name, {}) if top else {}
    dropped = DROPPED.get(type_name, frozenset()) if top else frozenset()
    out: dict[str, Any] = {}
    for name, given in rec.items():
        if name in dropped:
            continue
        value = given
        codes = k.single.get(name)
        if codes is not None and isinstance(value, dict) and "value" in value:
            text = value["value"]
            code = codes.get(text) or _codes([*codes, text])[text]
            value = {**value, "value": {"id": code, "description": text}}
        elif name in k.dates and isinstance(value, dict) and isinstance(value.get("value"), str):
            value = {**value, "value": value["value"][:10]}  # the tenant-local calendar day
        elif name in sch.details and isinstance(value, list):
            value = [_record(sch.details[name], v, top=False) for v in value]
        elif name in sch.linked and isinstance(value, dict):
            value = _record(sch.linked[name], value, top=False)
        out[renamed.get(name, name)] = value
    return out


def _keys(edef: EntityDef, keys: list[str]) -> list[str]:
    """GET by keys on 26: a single-select key may be given by its id (``SalesInvoice/INV/…``)."""
    parts = [p for seg in keys for p in seg.split("|")]
    if len(parts) != len(edef.keys) or not edef.keys:
        return keys
    codes = kinds(edef.name).single.get(edef.keys[0])
    if not codes:
        return keys
    by_code = {code.lower(): text for text, code in codes.items()}
    first = by_code.get(parts[0].strip().lower(), parts[0])
    return [first, *parts[1:]]


def data_request(
    h: Handler,
    version: str,
    entity: str,
    keys: list[str],
    run: Callable[[Handler, str, str, list[str]], Reply],
) -> Reply:
    """rest.py's data request, through the contract-5 layer when ``version`` speaks it."""
    if version not in CONTRACT5:
        return run(h, version, entity, keys)
    edef = ENTITIES[entity]
    try:
        h.params = translate_query(version, edef, h.params)
        reply = run(h, version, entity, _keys(edef, keys) if keys else keys)
    except ApiError as err:
        # contract 5 builds on the OData v4 library (Microsoft.OData.*, not Microsoft.Data.OData)
        for key in ("exceptionType", "stackTrace"):
            if isinstance(err.body.get(key), str):
                err.body[key] = err.body[key].replace("Microsoft.Data.OData", "Microsoft.OData")
        raise
    if reply.status == 200 and reply.body:
        reply.body = render(entity, reply.body)
    return reply


# ---------------------------------------------------------------------- swagger.json
def swagger(dataset: Dataset, version: str, server_url: str) -> bytes:
    """swagger.json of ``version``; 26.200.001 in contract-5 form (api.md §1.1, §5)."""
    if version not in CONTRACT5:
        return dataset.swagger(version, server_url)
    from .swagger import build_document  # noqa: PLC0415

    return _ENC.encode(document5(build_document(version, server_url)))


def document5(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a contract-4 OpenAPI 3 document into the contract-5 one."""
    # api.md §1.1: "info": {"title": "Default/26.200.001", "version": "5"}
    doc["info"]["version"] = "5"
    comps = doc["components"]
    schemas = comps["schemas"]
    ref = "#/components/schemas/"
    # api.md §1.1: generated 26.200.001 models have StringSingleSelectValue and DateOnlyValue
    schemas["SingleSelectOption"] = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "description": {"type": "string"}},
    }
    schemas["StringSingleSelectValue"] = {
        "type": "object",
        "properties": {"value": {"$ref": ref + "SingleSelectOption"}, "error": {"type": "string"}},
    }
    schemas["DateOnlyValue"] = {
        "type": "object",
        "properties": {"value": {"type": "string", "format": "date"}, "error": {"type": "string"}},
    }
    for name in [*ENTITIES, *SUBS]:
        got = schemas.get(name)
        if not got:
            continue
        props = got["allOf"][1]["properties"]
        k = kinds(name)
        for fname in k.single:
            if fname in props:
                props[fname] = {"$ref": ref + "StringSingleSelectValue"}
        for fname in k.dates:
            if fname in props:
                props[fname] = {"$ref": ref + "DateOnlyValue"}
        if name in ENTITIES:
            for old, new in RENAMED.get(name, {}).items():
                props[new] = props.pop(old)
            for old in DROPPED.get(name, ()):
                props.pop(old, None)
            got["allOf"][1]["properties"] = dict(sorted(props.items(), key=lambda t: t[0].lower()))
    # api.md §1.1: no $custom in contract 5
    comps.get("parameters", {}).pop("custom", None)
    drop = {"$ref": "#/components/parameters/custom"}
    for ops in doc["paths"].values():
        for op in ops.values():
            if isinstance(op, dict) and "parameters" in op:
                op["parameters"] = [p for p in op["parameters"] if p != drop]
    return doc


def adhoc_schema(dataset: Dataset, version: str, entity: str) -> bytes:
    """``$adHocSchema``: the template with 26.200.001's field names (api.md §1.1, §5)."""
    body = dataset.adhoc_schema(version, entity)
    return render(entity, body) if version in CONTRACT5 else body
