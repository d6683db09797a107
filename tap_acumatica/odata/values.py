"""OData rows (GI and DAC) → Singer records typed as ``$metadata`` declares them.

docs/acumatica-api.md §8: a GI sends decimals as text (``"1999.000000"``), date-times as the
tenant's clock time without an offset, and CHAR columns padded with spaces; rows carry
``@odata.*`` (v4) or ``odata.*`` (v3) annotations. The rules, the same for GI and DAC streams:

- numbers (``Edm.Decimal``/``Double``/``Single``) are exact: number text or a JSON number
  becomes an ``int`` when integral, else a ``Decimal`` without trailing zeros
  (``"1999.000000"`` → 1999, ``"201.730000"`` → 201.73). Never a binary float, like the
  REST dialect (contract/values.py keeps decimals as ``Decimal``);
- date-times are written in UTC in the fixed-width form of ``stamps.iso_utc``
  (``2024-07-15T10:00:00.000000+00:00``), the REST records' form, so REST and OData values of
  one row compare as text; one without an offset is the clock time in ``zone`` (the tenant's,
  ``date_only_time_zone``), one with an offset keeps its instant; v3's ``/Date(ms)/`` is read;
- text in ``trim`` columns loses its trailing spaces (CHAR padding, §8); the GI and DAC
  streams pass every ``Edm.String`` column, so keys and values equal REST's trimmed values;
- GUIDs are written lower-case, as REST writes ``id`` (§10's ``RefNoteID`` compares with it);
- a value of another type is converted when nothing is lost (``contract.values.coerce``), else
  written as null; members ``$metadata`` does not declare are dropped. Each is told once per
  column (:class:`MetadataDrift`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Collection
from decimal import Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tap_acumatica.contract.records import to_utc
from tap_acumatica.contract.values import Drift, coerce
from tap_acumatica.stamps import iso_utc, parse_micros

if TYPE_CHECKING:
    from tap_acumatica.odata.model import EntityType

Converter = Callable[[dict[str, Any]], dict[str, Any]]
Value = Callable[[Any], Any]

NUMBER_TYPES = frozenset({"Edm.Decimal", "Edm.Double", "Edm.Single"})
INTEGER_TYPES = frozenset({"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"})
DATETIME_TYPES = frozenset({"Edm.DateTimeOffset", "Edm.DateTime"})

_NUMBER_TEXT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
_V3_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
_LOG = logging.getLogger("tap-acumatica")


class MetadataDrift(Drift):
    """Values unlike ``$metadata`` and members it does not declare (§8), told once per column."""

    SOURCE = "$metadata"
    CITE = "docs/acumatica-api.md §8"
    UNIT = "column"
    NAIVE_HINT = (
        "a Generic Inquiry shows the tenant's clock time (docs/acumatica-api.md §8), so set "
        "date_only_time_zone to the tenant's time zone"
    )
    UNKNOWN_HINT = "changed since it was read?"


def record_converter(
    etype: EntityType,
    zone: dt.tzinfo,
    *,
    selected: Collection[str] | None = None,
    trim: Collection[str] = (),
    drift: Drift | None = None,
) -> Converter:
    """A function turning one OData row of ``etype`` into a Singer record.

    ``selected``: the columns to keep (None: every declared one); ``trim``: columns whose
    trailing spaces are CHAR padding; ``drift`` hears of odd values and unknown members (by
    default a :class:`MetadataDrift` named after the entity set, logging to ``tap-acumatica``).
    """
    told = drift if drift is not None else MetadataDrift(etype.name, _LOG.log)
    utc = zone is dt.timezone.utc or zone.utcoffset(None) == dt.timedelta(0)
    steps: dict[str, Value] = {}
    for prop in etype.properties:
        if selected is None or prop.name in selected:
            steps[prop.name] = _value_fn(prop.name, prop.edm, zone, told, utc=utc, trim=trim)
    declared = frozenset(p.name for p in etype.properties)
    unknown: set[str] = set()

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in row.items():
            step = steps.get(name)
            if step is not None:
                out[name] = None if value is None else step(value)
            elif name not in declared and not _annotation(name) and name not in unknown:
                unknown.add(name)  # a set add races harmlessly: told once by the Drift
                told.unknown([name])
        return out

    return convert


def _annotation(name: str) -> bool:
    """``@odata.context``, ``@odata.etag`` (v4), ``odata.metadata`` (v3), ``x@odata.type``."""
    return name.startswith(("@", "odata.")) or "@" in name


def _value_fn(
    name: str, edm: str, zone: dt.tzinfo, drift: Drift, *, utc: bool, trim: Collection[str]
) -> Value:
    """The conversion of one column's values (never called with None)."""
    if edm == "Edm.String":
        return _text(name, drift, trim=name in trim)
    if edm in NUMBER_TYPES:
        return _checked(name, edm, drift, _number)
    if edm in INTEGER_TYPES:
        return _checked(name, edm, drift, _integer)
    if edm == "Edm.Boolean":
        return _checked(name, edm, drift, _boolean)
    if edm in DATETIME_TYPES:
        return _moment(name, edm, zone, drift, utc=utc)
    if edm == "Edm.Guid":
        return lambda v: v.lower() if type(v) is str else _nulled(name, edm, drift, v)
    return lambda v: v  # Edm.Date, Edm.TimeOfDay, …: as the service wrote them


def _text(name: str, drift: Drift, *, trim: bool) -> Value:
    def text(value: Any) -> Any:
        if type(value) is str:
            # docs/acumatica-api.md §8: OData keeps the CHAR padding REST trims ("AALEGO500 ").
            return value.rstrip(" ") if trim else value
        got = coerce(value, "string") if type(value) is not bool else None
        drift.value(name, value, "Edm.String", got)
        return got

    return text


def _checked(name: str, edm: str, drift: Drift, read: Callable[[Any], Any]) -> Value:
    """``read(value)``, or null with one warning for the column when it cannot say (None)."""

    def value_of(value: Any) -> Any:
        got = read(value)
        return _nulled(name, edm, drift, value) if got is None else got

    return value_of


def _nulled(name: str, edm: str, drift: Drift, value: Any) -> Any:
    """Null for a value that is not of its column's type, told once per column."""
    drift.value(name, value, edm, None)
    return None


def _number(value: Any) -> int | Decimal | None:
    """An exact number: ``"1999.000000"`` → 1999, ``"201.730000"`` → Decimal("201.73").

    docs/acumatica-api.md §8: GI decimals may come as text; §3: decimals must stay exact.
    """
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is str and _NUMBER_TEXT.fullmatch(value):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            return None
    elif kind is Decimal:
        number = value
    elif kind is float:
        number = Decimal(repr(value))  # the shortest text of the double: what the JSON said
    else:
        return None  # a boolean, a list, …
    if not number.is_finite():
        return None
    if number == number.to_integral_value():
        return int(number)
    # Not integral: no positive exponent, just no trailing zeros; at the number's own
    # precision (the default context would round past 28 digits).
    return number.normalize(Context(prec=max(28, len(number.as_tuple().digits))))


def _integer(value: Any) -> int | None:
    kind = type(value)
    if kind is int:
        return int(value)
    got = coerce(value, "integer") if kind in (str, Decimal, float) else None
    return got if type(got) is int else None


def _boolean(value: Any) -> bool | None:
    if type(value) is bool:
        return bool(value)
    got = coerce(value, "boolean") if type(value) is str else None
    return got if type(got) is bool else None


def _moment(name: str, edm: str, zone: dt.tzinfo, drift: Drift, *, utc: bool) -> Value:
    """UTC text of a date-time; offset-less ones are the tenant's clock time (§8)."""

    def moment(value: Any) -> Any:
        if type(value) is not str:
            return _nulled(name, edm, drift, value)
        legacy = _V3_DATE.fullmatch(value)
        if legacy is not None:  # OData v3 verbose JSON: /Date(ms)/, /Date(ms+0300)/ (UTC ms)
            return iso_utc(int(legacy.group(1)))
        if utc and _offsetless(value):
            drift.naive(name, value)
        if parse_micros(value.strip()) is None:  # not a date-time at all
            return _nulled(name, edm, drift, value)
        return to_utc(value.strip(), zone)

    return moment


def _offsetless(value: str) -> bool:
    tail = value[16:]
    return len(value) > 10 and value[10] in "T " and not any(c in tail for c in "+-Zz")


def clock_literal(ms: int, zone: dt.tzinfo, version: str = "4") -> str:
    """A ``$filter`` literal for the instant ``ms`` as the tenant's clock shows it.

    The inverse of how rows are read: a value without an offset is the clock time in ``zone``
    (the earlier instant of a clock time shown twice when clocks go back), so the literal is
    the first clock time the tap reads as ``ms`` or later. A GI compares it with its rows'
    clock times, whether it reads the literal's clock time or its instant
    (docs/acumatica-api.md §8). v3: ``datetime'2024-07-15T06:00:00.000'`` (no offset);
    v4: ``2024-07-15T06:00:00.000-04:00`` (the zone's offset at that clock time).
    """
    clock = _first_clock(ms, zone)
    text = clock.isoformat(timespec="milliseconds")
    if version == "3":
        return f"datetime'{text}'"
    offset = clock.replace(tzinfo=zone, fold=0).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _first_clock(ms: int, zone: dt.tzinfo) -> dt.datetime:
    """The earliest naive clock time ``c`` whose reading in ``zone`` is at or after ``ms``."""
    instant = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)
    clock = instant.astimezone(zone).replace(tzinfo=None, fold=0)
    if _read_ms(clock, zone) >= ms:
        return clock
    # Clocks went back: ``clock`` is shown a second time, and read as the earlier instant.
    # Every clock time up to the end of the repeated span reads earlier: find where it ends.
    low, high = 0, ms - _read_ms(clock, zone)  # clock + high reads at or after ms
    while low < high:
        mid = (low + high) // 2
        if _read_ms(clock + dt.timedelta(milliseconds=mid), zone) >= ms:
            high = mid
        else:
            low = mid + 1
    return clock + dt.timedelta(milliseconds=low)


def _read_ms(clock: dt.datetime, zone: dt.tzinfo) -> int:
    """Epoch ms of a naive clock time read in ``zone`` as the rows are (``fold=0``)."""
    delta = clock.replace(tzinfo=zone, fold=0) - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return delta // dt.timedelta(milliseconds=1)


def clocks_back_ms(ms: int, zone: dt.tzinfo) -> int:
    """How far clocks go back in ``zone`` within a day of ``ms`` (0 when they do not).

    An offset-less clock time shown twice is read as the earlier instant, so a row changed in
    the repeated hour after a read that ended in or just before it has a clock time, and a
    reading, before that read's end: a read resumed from there must start this much earlier.
    """
    day = dt.timedelta(days=1)
    instant = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)
    before = (instant - day).astimezone(zone).utcoffset() or dt.timedelta(0)
    after = (instant + day).astimezone(zone).utcoffset() or dt.timedelta(0)
    return max(0, (before - after) // dt.timedelta(milliseconds=1))
