"""Change stamps as epoch milliseconds, and the fixed-width UTC text bookmarks are written in.

Windows are planned on integers (epoch ms); records and bookmarks carry UTC ISO-8601 text with
six fraction digits, so text order is time order. Parsing takes any offset and up to nine
fraction digits (docs/acumatica-api.md §3: the server picks the offset, up to 7 digits).
"""

from __future__ import annotations

import datetime as dt
import functools
import re

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: Start of time when neither a bookmark nor start_date exists (SQL Server datetime allows
#: 1753, but no Acumatica record predates this).
DEFAULT_START = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
DAY_MS = 86_400_000

_DT_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d\d:?\d\d)?$"
)


def to_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch (aware datetimes; naive ones are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> dt.datetime:
    """The aware UTC datetime of ``ms`` milliseconds since the epoch."""
    return EPOCH + dt.timedelta(milliseconds=ms)


def iso_utc(ms: int) -> str:
    """Bookmark/record format: fixed-width UTC ISO-8601, so text order is time order."""
    return from_ms(ms).isoformat(timespec="microseconds")


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
    try:
        days = dt.date(int(year), int(month), int(day)).toordinal() - 719_163
    except ValueError:  # e.g. month 13: not a date-time
        return None
    seconds = days * 86_400 + int(hour or 0) * 3600 + int(minute or 0) * 60 + int(second or 0)
    return (seconds - offset * 60) * 1_000_000 + int((frac or "").ljust(6, "0")[:6])


def parse_datetime(value: str) -> dt.datetime | None:
    """An aware UTC datetime for an ISO-8601 string (``Z`` or an offset; none means UTC)."""
    micros = parse_micros(value.strip())
    return None if micros is None else EPOCH + dt.timedelta(microseconds=micros)


#: Milliseconds within each 10 ms at which a SQL Server ``datetime`` tick (1/300 s) is shown
#: (docs/acumatica-api.md §3 "Precision": stamps end in 0, 3 or 7).
_TICK_MS = (0, 3, 7)


def tick_floor(ms: int) -> int:
    """The latest tick boundary at or before ``ms`` (a millisecond the server keeps as is).

    A ``$filter`` literal is rounded to the nearest 1/300 s tick (docs/acumatica-api.md §3);
    one on a tick (``.000``, ``.003``, ``.007``, …) is kept exactly, so a window between two
    such values selects the same records on the server as in milliseconds here.
    """
    base, rest = divmod(ms, 10)
    return base * 10 + max(t for t in _TICK_MS if t <= rest)


def next_tick(ms: int) -> int:
    """The first tick boundary after ``ms``: a window ``[tick, next_tick(tick))`` is one tick."""
    base, rest = divmod(ms, 10)
    later = [t for t in _TICK_MS if t > rest]
    return base * 10 + later[0] if later else (base + 1) * 10


def tick_ceil(ms: int) -> int:
    """The earliest tick boundary at or after ``ms``."""
    floor = tick_floor(ms)
    return floor if floor == ms else next_tick(ms)


@functools.lru_cache(maxsize=20_000)
def date_to_utc(value: str, zone: dt.tzinfo) -> str:
    """``YYYY-MM-DD`` → the UTC instant of that day's midnight in ``zone``, in record form.

    docs/acumatica-api.md §1.1, §3: contract 4 returns date-only fields as local midnight with
    the offset; contract 5 returns the bare date. A value that is not a date is returned as is.
    """
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return value
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
    return midnight.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
