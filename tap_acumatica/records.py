"""Turn Acumatica's wrapped JSON records into flat Singer records, guided by the stream schema.

API-FACTS §3: every field is ``{"value": x}`` (``{}`` when empty), ``note`` is wrapped too,
linked entities are nested objects and details arrays of objects, each with ``id``,
``rowNumber``, ``custom`` and ``_links``; custom fields sit under
``custom.<View>.<Field> = {"type": ..., "value": ...}``.

Output layout (documented in the README): values unwrapped (``{}`` → null), ``note`` unwrapped,
``_links``, ``rowNumber`` (a position in the response, not data) and ``error`` dropped, and custom
fields kept nested as ``custom: {"<View>": {"<Field>": value}}`` mirroring Acumatica's own
``$custom=<View>.<Field>`` names. Date-times are parsed with their offset and written in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

#: Plan node kinds.
_VALUE, _DATETIME, _OBJECT, _ARRAY, _CUSTOM, _RAW = range(6)

_DT_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d\d:?\d\d)?$"
)

Plan = dict[str, tuple[int, Any]]


def build_plan(schema: Mapping[str, Any]) -> Plan:
    """Compile a stream schema into a per-field transform plan (done once per stream)."""
    plan: Plan = {}
    for name, prop in (schema.get("properties") or {}).items():
        plan[name] = _node(name, prop)
    return plan


def _types(prop: Mapping[str, Any]) -> set[str]:
    jtype = prop.get("type")
    return set(jtype) if isinstance(jtype, list) else {jtype} if jtype else set()


def _node(name: str, prop: Mapping[str, Any]) -> tuple[int, Any]:
    types = _types(prop)
    if name == "note":  # API-FACTS §3: wrapped like a field, whatever its schema says
        return (_VALUE, None)
    if name == "custom" and "object" in types:
        views = {
            view: {f: _node(f, fp) for f, fp in (vp.get("properties") or {}).items()}
            for view, vp in (prop.get("properties") or {}).items()
        }
        return (_CUSTOM, views)
    if name == "files":
        return (_RAW, None)
    if "array" in types:
        items = prop.get("items") or {}
        if "object" in _types(items) and "properties" in items:
            return (_ARRAY, build_plan(items))
        return (_VALUE, None)
    if "object" in types and "properties" in prop:
        if name in {"id", "note"}:
            return (_VALUE, None)
        return (_OBJECT, build_plan(prop))
    if prop.get("format") == "date-time":
        return (_DATETIME, None)
    return (_VALUE, None)


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
            out[name] = to_utc(value.get("value") if type(value) is dict else unwrap(value))
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
        else:
            out[name] = value
    return out


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

    API-FACTS §3: the server picks the offset (the sandbox serves America/New_York), so the
    offset is applied, never dropped. An offset-less value is taken as UTC.
    """
    if not isinstance(value, str):
        return value
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
    return (_EPOCH + dt.timedelta(microseconds=micros)).isoformat(timespec="microseconds")


_fromisoformat = dt.datetime.fromisoformat
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def parse_ms(value: str) -> int | None:
    """Epoch milliseconds (floored) of an ISO-8601 date-time string, or None."""
    micros = parse_micros(value)
    return None if micros is None else micros // 1000


def parse_micros(value: str) -> int | None:
    """Epoch microseconds of an ISO-8601 date-time string, or None if it is not one."""
    m = _DT_RE.match(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, tz = m.groups()
    offset = 0
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    days = dt.date(int(year), int(month), int(day)).toordinal() - 719_163
    seconds = days * 86_400 + int(hour or 0) * 3600 + int(minute or 0) * 60 + int(second or 0)
    return (seconds - offset * 60) * 1_000_000 + int((frac or "").ljust(6, "0")[:6])
