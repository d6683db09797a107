"""Turn Acumatica's wrapped JSON records into flat Singer records, guided by the stream schema.

docs/acumatica-api.md §3: every field is ``{"value": x}`` (``{}`` when empty), ``note`` is
wrapped too, linked entities are nested objects and details arrays of objects, each with ``id``,
``rowNumber``, ``custom`` and ``_links``; custom fields sit under
``custom.<View>.<Field> = {"type": ..., "value": ...}``.

Output layout (documented in the README): values unwrapped (``{}`` → null), ``note`` unwrapped,
``_links``, ``rowNumber`` (a position in the response, not data) and ``error`` dropped, and custom
fields kept nested as ``custom: {"<View>": {"<Field>": value}}`` mirroring Acumatica's own
``$custom=<View>.<Field>`` names. Date-times are parsed with their offset and written in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from tap_acumatica.contract.document import SELECT_ID_MARK, SELECT_ID_SUFFIX, SELECT_TEXT_MARK
from tap_acumatica.stamps import EPOCH, date_to_utc, parse_micros

#: Plan node kinds.
_VALUE, _DATETIME, _OBJECT, _ARRAY, _CUSTOM, _RAW, _SELECT, _DERIVED = range(8)

Plan = dict[str, tuple[int, Any]]


def build_plan(schema: Mapping[str, Any], zone: dt.tzinfo | None = None) -> Plan:
    """Compile a stream schema into a per-field transform plan (done once per stream).

    ``zone``: where a contract-5 date-only value's midnight lies (docs/acumatica-api.md §1.1).
    A ``<Field>_id`` property described as a single-select code is filled from ``<Field>``.
    """
    props: Mapping[str, Any] = schema.get("properties") or {}
    codes = {
        name
        for name, prop in props.items()
        if name.endswith(SELECT_ID_SUFFIX)
        and name[: -len(SELECT_ID_SUFFIX)] in props
        and str(prop.get("description", "")).startswith(SELECT_ID_MARK)
    }
    plan: Plan = {}
    for name, prop in props.items():
        if name in codes:
            plan[name] = (_DERIVED, None)
        elif name + SELECT_ID_SUFFIX in codes:
            plan[name] = (_SELECT, name + SELECT_ID_SUFFIX)
        elif str(prop.get("description", "")).startswith(SELECT_TEXT_MARK):
            plan[name] = (_SELECT, None)
        else:
            plan[name] = _node(name, prop, zone)
    return plan


def _types(prop: Mapping[str, Any]) -> set[str]:
    jtype = prop.get("type")
    return set(jtype) if isinstance(jtype, list) else {jtype} if jtype else set()


def derived_fields(plan: Plan) -> dict[str, str]:
    """``{"Status_id": "Status"}``: properties filled from another field, not requested."""
    return {name: base for base, (kind, name) in plan.items() if kind == _SELECT and name}


def _node(name: str, prop: Mapping[str, Any], zone: dt.tzinfo | None) -> tuple[int, Any]:
    types = _types(prop)
    if name == "note":  # docs/acumatica-api.md §3: wrapped like a field, whatever its schema says
        return (_VALUE, None)
    if name == "custom" and "object" in types:
        views = {
            view: {f: _node(f, fp, zone) for f, fp in (vp.get("properties") or {}).items()}
            for view, vp in (prop.get("properties") or {}).items()
        }
        return (_CUSTOM, views)
    if name == "files":
        return (_RAW, None)
    if "array" in types:
        return _array_node(prop, zone)
    if "object" in types and "properties" in prop:
        if name in {"id", "note"}:
            return (_VALUE, None)
        return (_OBJECT, build_plan(prop, zone))
    if prop.get("format") == "date-time":
        return (_DATETIME, zone)
    return (_VALUE, None)


def _array_node(prop: Mapping[str, Any], zone: dt.tzinfo | None) -> tuple[int, Any]:
    items = prop.get("items") or {}
    if "object" in _types(items) and "properties" in items:
        return (_ARRAY, build_plan(items, zone))
    return (_VALUE, None)


def _moment(value: Any, zone: dt.tzinfo | None) -> Any:
    """A date-time as UTC text; a bare date (contract 5) as its local midnight in ``zone``."""
    if zone is not None and type(value) is str and len(value) == 10:
        return date_to_utc(value, zone)
    return to_utc(value)


def _choice(out: dict[str, Any], name: str, code: str | None, value: Any) -> None:
    """A single-select: the description text in ``name``, the code in ``code`` (§1.1)."""
    mapping = isinstance(value, Mapping)
    out[name] = value.get("description") if mapping else value  # else contract 4's text
    if code is not None:
        out[code] = value.get("id") if mapping else None


def transform(raw: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """One record (or nested entity) → its Singer form; members not in the plan are dropped."""
    # Hot path (once per record and detail line): plain dict checks before the Mapping ABC,
    # whose isinstance() costs several times more; msgspec always decodes objects as dicts.
    out: dict[str, Any] = {}
    for name, (kind, sub) in plan.items():
        if name not in raw:
            continue
        value = raw[name]
        if kind == _VALUE:
            out[name] = value.get("value") if type(value) is dict else unwrap(value)
        elif kind == _DATETIME:
            out[name] = _moment(value.get("value") if type(value) is dict else unwrap(value), sub)
        elif kind == _SELECT:
            _choice(out, name, sub, unwrap(value))
        elif kind == _OBJECT:
            out[name] = transform(value, sub) if isinstance(value, Mapping) else None
        elif kind == _ARRAY:
            out[name] = (
                [transform(v, sub) for v in value if isinstance(v, Mapping)]
                if isinstance(value, list)
                else None
            )
        elif kind == _CUSTOM:
            out[name] = _custom(value, sub)
        elif kind != _DERIVED:
            out[name] = value
    return out


class _Wrapped(msgspec.Struct, gc=False):
    """A field's ``{"value": x}`` wrapper (docs/acumatica-api.md §3); ``{}`` is ``value=None``."""

    value: Any = None


Converter = Callable[[Any], dict[str, Any]]
_LIST: Any = list  # list[T] of a type built at run time


def page_decoder(plan: Plan, name: str) -> tuple[msgspec.json.Decoder[Any], Converter]:
    """A decoder of one list page straight into typed structs, and their converter to records.

    Decoding into ``msgspec.Struct`` types built from the plan instead of plain dicts skips
    every member the catalog does not want (``_links``, ``rowNumber``, deselected fields) while
    parsing, and is cheaper to free: decode + transform + free take about 60% of the CPU of the
    dict path (docs/performance.md). A page of another shape raises ``msgspec.ValidationError``;
    the caller then decodes it as plain JSON and uses :func:`transform`, which takes anything.
    """
    page_type = _LIST[_struct_type(plan, name)]
    return msgspec.json.Decoder(page_type, float_hook=Decimal), _converter(plan)


def _struct_type(plan: Plan, name: str) -> Any:
    # Attributes are f0, f1, … renamed to the JSON names (Acumatica's need not be identifiers);
    # the converter reads them by position, in plan order.
    fields: list[tuple[str, Any, Any]] = []
    for i, (field, (kind, sub)) in enumerate(plan.items()):
        typ: Any = Any
        if kind in (_VALUE, _DATETIME, _SELECT, _DERIVED) and field != "id":
            typ = _Wrapped | None | msgspec.UnsetType
        elif kind == _OBJECT:
            typ = _struct_type(sub, f"{name}_{field}") | None | msgspec.UnsetType
        elif kind == _ARRAY:
            typ = _LIST[_struct_type(sub, f"{name}_{field}")] | None | msgspec.UnsetType
        fields.append((f"f{i}", typ, msgspec.UNSET))
    rename = {f"f{i}": field for i, field in enumerate(plan)}
    return msgspec.defstruct(f"_{name}", fields, rename=rename, gc=False)


def _converter(plan: Plan) -> Converter:
    """``transform`` for structs of :func:`_struct_type`: the same output, field for field."""
    steps = [
        (name, kind, _converter(sub) if kind in (_OBJECT, _ARRAY) else None, sub)
        for name, (kind, sub) in plan.items()
    ]
    astuple, unset, wrapped = msgspec.structs.astuple, msgspec.UNSET, _Wrapped

    def convert(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (name, kind, nested, sub), value in zip(steps, astuple(obj), strict=True):
            if value is unset:
                continue
            if kind == _VALUE:
                out[name] = value.value if type(value) is wrapped else value
            elif kind == _DATETIME:
                out[name] = None if value is None else _moment(value.value, sub)
            elif kind == _SELECT:
                _choice(out, name, sub, None if value is None else value.value)
            elif kind == _OBJECT:
                out[name] = None if value is None else nested(value)  # type: ignore[misc]
            elif kind == _ARRAY:
                out[name] = None if value is None else [nested(v) for v in value]  # type: ignore[misc]
            elif kind == _CUSTOM:
                out[name] = _custom(value, sub)
            elif kind != _DERIVED:
                out[name] = value
        return out

    return convert


def unwrap(value: Any) -> Any:
    """``{"value": x}`` → x, ``{}`` → None, anything else unchanged."""
    if type(value) is dict or isinstance(value, Mapping):
        return value.get("value")
    return value


def _custom(value: Any, views: Mapping[str, Plan]) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    out: dict[str, Any] = {}
    for view, fields in views.items():
        got = value.get(view)
        if not isinstance(got, Mapping):
            out[view] = None
            continue
        out[view] = {
            fname: (to_utc(unwrap(got.get(fname))) if kind == _DATETIME else unwrap(got.get(fname)))
            for fname, (kind, _) in fields.items()
        }
    return out


def to_utc(value: Any) -> Any:
    """An Acumatica date-time string (any offset, up to 7 fraction digits) → UTC ISO-8601.

    docs/acumatica-api.md §3: the server picks the offset (the sandbox serves America/New_York), so
    the
    offset is applied, never dropped. An offset-less value is taken as UTC. Results are
    remembered (a bounded table): dates repeat across records — order dates at midnight,
    details' ship dates, one stamp for a whole import — and parsing is the dearest step.
    """
    if not isinstance(value, str):
        return value
    known = _UTC_SEEN.get(value)
    if known is not None:
        return known
    result = _to_utc(value)
    if len(_UTC_SEEN) >= _UTC_SEEN_MAX:
        _UTC_SEEN.clear()
    _UTC_SEEN[value] = result
    return result


_UTC_SEEN: dict[str, str] = {}
_UTC_SEEN_MAX = 10_000


def _to_utc(value: str) -> str:
    # Fast path for the usual "YYYY-MM-DDThh:mm:ss[.f][±hh:mm]": the C parser (Python ≥ 3.11
    # takes 7 fraction digits and "Z"; 3.10 raises ValueError and falls through).
    if len(value) >= 19 and value[10] == "T" and value[4] == "-":
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            else:
                parsed = parsed.astimezone(dt.timezone.utc)
            return parsed.isoformat(timespec="microseconds")
    micros = parse_micros(value)
    if micros is None:
        return value
    return (EPOCH + dt.timedelta(microseconds=micros)).isoformat(timespec="microseconds")


_fromisoformat = dt.datetime.fromisoformat
