"""Turn Acumatica's wrapped JSON records into flat Singer records, guided by the stream schema.

docs/acumatica-api.md §3: every field is ``{"value": x}`` (``{}`` when empty), ``note`` is
wrapped too, linked entities are nested objects and details arrays of objects, each with ``id``,
``rowNumber``, ``custom`` and ``_links``; custom fields sit under
``custom.<View>.<Field> = {"type": ..., "value": ...}``.

Output layout (documented in the README): values unwrapped (``{}`` → null), ``note`` unwrapped,
``_links``, ``rowNumber`` (a position in the response, not data) and ``error`` dropped, and custom
fields kept nested as ``custom: {"<View>": {"<Field>": value}}`` mirroring Acumatica's own
``$custom=<View>.<Field>`` names. Date-times are parsed with their offset and written in UTC;
one without an offset is read in the tenant's zone (``date_only_time_zone``). A value of
another type than the document says (older data, §3) is coerced when that loses nothing, else
written as null; both are reported once per field (:class:`Drift`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from tap_acumatica.contract.document import SELECT_ID_MARK, SELECT_ID_SUFFIX, SELECT_TEXT_MARK
from tap_acumatica.contract.values import OK_TYPES, Drift, Field, coerce
from tap_acumatica.stamps import EPOCH, date_to_utc, parse_micros

#: Plan node kinds.
_VALUE, _DATETIME, _OBJECT, _ARRAY, _CUSTOM, _RAW, _SELECT, _DERIVED, _SCALAR = range(9)

Plan = dict[str, tuple[int, Any]]
_UTC = dt.timezone.utc


def build_plan(
    schema: Mapping[str, Any],
    zone: dt.tzinfo | None = None,
    drift: Drift | None = None,
    prefix: str = "",
    stamp: str | None = None,
) -> Plan:
    """Compile a stream schema into a per-field transform plan (done once per stream).

    ``zone``: the tenant's zone, where a contract-5 date-only value's midnight lies
    (docs/acumatica-api.md §1.1) and in which a date-time without an offset is read (§3).
    ``drift`` hears of values of another type than the schema's; the change field ``stamp``
    keeps any value, for ``sync.consistency`` to name. A ``<Field>_id`` property
    described as a single-select code is filled from ``<Field>``.
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
        elif name == stamp:
            plan[name] = (_DATETIME, Field(name, "stamp", OK_TYPES["date-time"], zone))
        else:
            plan[name] = _node(prefix + name, prop, zone, drift)
    return plan


def _types(prop: Mapping[str, Any]) -> set[str]:
    jtype = prop.get("type")
    return set(jtype) if isinstance(jtype, list) else {jtype} if jtype else set()


def derived_fields(plan: Plan) -> dict[str, str]:
    """``{"Status_id": "Status"}``: properties filled from another field, not requested."""
    return {name: base for base, (kind, name) in plan.items() if kind == _SELECT and name}


def _node(
    label: str, prop: Mapping[str, Any], zone: dt.tzinfo | None, drift: Drift | None
) -> tuple[int, Any]:
    types = _types(prop)
    name = label.rpartition("/")[2]
    node: tuple[int, Any] = (_VALUE, None)
    if name in {"id", "note"}:  # §3: system members, wrapped or not, whatever the schema says
        pass
    elif name == "custom" and "object" in types:
        views = {
            view: {
                f: _node(f"{label}/{view}.{f}", fp, zone, drift)
                for f, fp in (vp.get("properties") or {}).items()
            }
            for view, vp in (prop.get("properties") or {}).items()
        }
        node = (_CUSTOM, views)
    elif name == "files":
        node = (_RAW, None)
    elif "array" in types:
        items = prop.get("items") or {}
        if "object" in _types(items) and "properties" in items:
            node = (_ARRAY, build_plan(items, zone, drift, label + "/"))
    elif "object" in types and "properties" in prop:
        node = (_OBJECT, build_plan(prop, zone, drift, label + "/"))
    elif prop.get("format") == "date-time":
        node = (_DATETIME, Field(label, "date-time", OK_TYPES["date-time"], zone, drift))
    elif len(scalar := types - {"null"}) == 1 and (declared := min(scalar)) in OK_TYPES:
        node = (_SCALAR, Field(label, declared, OK_TYPES[declared], zone, drift))
    return node


def _moment(value: Any, field: Field) -> Any:
    """A date-time as UTC text; a bare date (contract 5) as its local midnight in the zone."""
    if type(value) is str:
        known = _UTC_SEEN.get(value)  # values with an offset: the same in any zone
        if known is not None:
            return known
        zone = field.zone
        if len(value) == 10 and zone is not None:
            return date_to_utc(value, zone)
        # An offset-less date-time and no tenant zone: say (once) that UTC is a guess.
        if (zone is None or zone is _UTC) and field.drift and len(value) > 10 and _naive(value):
            field.drift.naive(field.label, value)
        return to_utc(value, zone)
    return None if value is None else _drifted(value, field)


def _scalar(value: Any, field: Field) -> Any:
    """A value of the field's declared type, as is; another is coerced or nulled (§3)."""
    if value is None or type(value) in field.ok:
        return value
    return _drifted(value, field)


def _drifted(value: Any, field: Field) -> Any:
    if field.declared == "stamp":
        return value
    got = coerce(value, field.declared)
    if field.drift is not None:
        field.drift.value(field.label, value, field.declared, got)
    return got


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
        elif kind == _SCALAR:
            got = value.get("value") if type(value) is dict else unwrap(value)
            out[name] = got if got is None or type(got) in sub.ok else _drifted(got, sub)
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


class _Text(msgspec.Struct, gc=False):
    """A wrapper whose value the decoder checks is text (a page that breaks it goes plain)."""

    value: str | None = None


class _Integer(msgspec.Struct, gc=False):
    """A wrapper whose value the decoder checks is an integer."""

    value: int | None = None


class _Boolean(msgspec.Struct, gc=False):
    """A wrapper whose value the decoder checks is a boolean."""

    value: bool | None = None


#: Typed wrappers by declared type: msgspec checks them while decoding, so the converter need
#: not; a page with a drifting value fails to decode and takes the plain path (``transform``).
_CHECKED: dict[str, Any] = {
    "string": _Text,
    "date-time": _Text,
    "integer": _Integer,
    "boolean": _Boolean,
}


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
        if kind in (_SCALAR, _DATETIME) and sub.declared in _CHECKED:
            typ = _CHECKED[sub.declared] | None | msgspec.UnsetType
        elif kind in (_VALUE, _DATETIME, _SELECT, _DERIVED, _SCALAR) and field != "id":
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
        (
            name,
            kind,
            _converter(sub) if kind in (_OBJECT, _ARRAY) else None,
            sub,
            # Only numbers are checked here: the decoder checked text, integers, booleans.
            sub.ok if kind == _SCALAR and sub.declared not in _CHECKED else None,
        )
        for name, (kind, sub) in plan.items()
    ]
    astuple, unset, wrapped = msgspec.structs.astuple, msgspec.UNSET, _Wrapped

    def convert(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (name, kind, nested, sub, check), value in zip(steps, astuple(obj), strict=True):
            if value is unset:
                continue
            if kind == _SCALAR:
                got = None if value is None else value.value
                if check is not None and got is not None and type(got) not in check:
                    got = _drifted(got, sub)
                out[name] = got
            elif kind == _VALUE:
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
        out[view] = {fname: _custom_value(got.get(fname), node) for fname, node in fields.items()}
    return out


def _custom_value(value: Any, node: tuple[int, Any]) -> Any:
    kind, sub = node
    if kind == _DATETIME:
        return _moment(unwrap(value), sub)
    if kind == _SCALAR:
        return _scalar(unwrap(value), sub)
    return unwrap(value)


def to_utc(value: Any, zone: dt.tzinfo | None = None) -> Any:
    """An Acumatica date-time string (any offset, up to 7 fraction digits) → UTC ISO-8601.

    docs/acumatica-api.md §3: the server picks the offset (the sandbox serves America/New_York),
    so the offset is applied, never dropped. A value without one (custom date-times on real
    instances) is the tenant's clock time: read in ``zone`` (``date_only_time_zone``), UTC when
    None. Results are remembered (a bounded table): dates repeat across records (order dates at
    midnight, details' ship dates, one stamp for a whole import) and parsing is the dearest step.
    """
    if not isinstance(value, str):
        return value
    known = _UTC_SEEN.get(value)
    if known is not None:
        return known
    if _naive(value):  # kept apart: what it means depends on the zone
        return _local_to_utc(value, zone or _UTC)
    result = _to_utc(value)
    if len(_UTC_SEEN) >= _UTC_SEEN_MAX:
        _UTC_SEEN.clear()
    _UTC_SEEN[value] = result
    return result


def _naive(value: str) -> bool:
    """A bare date, or a date and time without ``Z`` or an offset after the minutes."""
    if len(value) == 10:
        return value[4] == "-"
    tail = value[16:]
    return len(value) > 10 and value[10] in "T " and not any(c in tail for c in "+-Zz")


@functools.lru_cache(maxsize=20_000)
def _local_to_utc(value: str, zone: dt.tzinfo) -> str:
    """An offset-less date-time read as the clock time in ``zone``, in record form (UTC)."""
    micros = parse_micros(value)
    if micros is None:
        return value
    wall = (EPOCH + dt.timedelta(microseconds=micros)).replace(tzinfo=zone)
    return wall.astimezone(_UTC).isoformat(timespec="microseconds")


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
