"""Low-level helpers: deterministic hashing, GUIDs and tenant-local date-time formatting."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from . import vfmt

M64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x &= M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def str_hash(s: str) -> int:
    """A stable (not per-process randomised) hash of a string."""
    h = 0xCBF29CE484222325
    for ch in s.encode():
        h = ((h ^ ch) * 0x100000001B3) & M64
    return mix64(h)


def pick(h: int, mult: int, n: int) -> int:
    """Choose 0..n-1 from record hash ``h`` and a per-field odd multiplier."""
    return (((h * mult) & M64) >> 32) % n


def fmt_guid(x: int) -> str:
    h = f"{x & ((1 << 128) - 1):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class TenantClock:
    """Formats UTC epoch milliseconds as the tenant's local ISO-8601 with offset (api.md §3)."""

    def __init__(self, tz: str) -> None:
        self.tz = ZoneInfo(tz)
        self._day_cache: dict[int, int] = {}
        self._starts, self._offsets = _transitions(tz)

    def fragments(self, ms: np.ndarray, pre: bytes, post: bytes) -> list[bytes]:
        """``pre + fmt(x) + post`` as bytes for an int64 array of UTC milliseconds (vectorised)."""
        n = len(ms)
        if n == 0:
            return []
        if ms.max() >= _SCAN_END_MS:
            return [pre + self.fmt(x).encode() + post for x in ms.tolist()]
        # before 1990 (the 1900 "no date") position 0: the zone's 1990 offset, as in fmt()
        pos = np.maximum(np.searchsorted(self._starts, ms, side="right") - 1, 0)
        offs = self._offsets[pos]
        return vfmt.rows(vfmt.const(n, pre), vfmt.iso_local(ms + offs * 60_000, offs, post))

    def fmt_many(self, ms: np.ndarray) -> list[str]:
        """Vectorised :meth:`fmt` (same strings) for an int64 array of UTC milliseconds."""
        return [b.decode() for b in self.fragments(ms, b"", b"")]

    def fmt(self, ms: int) -> str:
        """``2024-08-15T16:03:27.513-04:00``: 0-3 fractional digits, trailing zeros dropped."""
        if ms < self._starts[0]:
            # before 1990 (e.g. the 1900-01-01 "no date"): the zone's 1990 offset, never LMT
            return _fmt(ms, dt.timezone(dt.timedelta(minutes=int(self._offsets[0]))))
        return _fmt(ms, self.tz)

    def local(self, ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, self.tz)

    def midnight_ms(self, day: int) -> int:
        """Tenant-local midnight (as UTC ms) of calendar day ``day`` (days since 1970-01-01)."""
        got = self._day_cache.get(day)
        if got is None:
            d = dt.date(1970, 1, 1) + dt.timedelta(days=day)
            local = dt.datetime(d.year, d.month, d.day, tzinfo=self.tz)
            got = int(local.timestamp()) * 1000
            self._day_cache[day] = got
        return got

    def parse_local_naive(self, text: str) -> int:
        """A literal without offset is read as tenant-local time (api.md §3) → UTC µs."""
        naive = dt.datetime.fromisoformat(text)
        return to_us(naive.replace(tzinfo=self.tz))


_SCAN_START = dt.datetime(1990, 1, 1, tzinfo=UTC)
_SCAN_END_MS = int(dt.datetime(2070, 1, 1, tzinfo=UTC).timestamp()) * 1000


@lru_cache(maxsize=16)
def _transitions(tz: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC ms from which each UTC offset (minutes) of ``tz`` applies, 1990-2070."""
    zone = ZoneInfo(tz)

    def offset(t: dt.datetime) -> int:
        off = t.astimezone(zone).utcoffset()
        return int(off.total_seconds() // 60) if off is not None else 0

    starts = [int(_SCAN_START.timestamp()) * 1000]
    offsets = [offset(_SCAN_START)]
    day = dt.timedelta(days=3)  # offsets never change twice within 3 days
    t = _SCAN_START
    end = dt.datetime(2070, 1, 1, tzinfo=UTC)
    while t < end:
        nxt = t + day
        if offset(nxt) != offsets[-1]:
            lo, hi = int(t.timestamp()), int(nxt.timestamp())  # bisect to the second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(dt.datetime.fromtimestamp(mid, UTC)) == offsets[-1]:
                    lo = mid
                else:
                    hi = mid
            starts.append(hi * 1000)
            offsets.append(offset(nxt))
        t = nxt
    return np.array(starts, dtype=np.int64), np.array(offsets, dtype=np.int64)


@lru_cache(maxsize=65536)
def _fmt(ms: int, tz: dt.tzinfo) -> str:
    sec, milli = divmod(ms, 1000)
    d = dt.datetime.fromtimestamp(sec, tz)
    off = d.utcoffset()
    mins = int(off.total_seconds() // 60) if off is not None else 0
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    frac = f".{milli:03d}".rstrip("0") if milli else ""
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f"{frac}{sign}{mins // 60:02d}:{mins % 60:02d}"
    )


def to_us(value: dt.datetime) -> int:
    """Aware datetime → UTC epoch microseconds."""
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_ms(value: dt.datetime) -> int:
    return to_us(value) // 1000


def utc_z(ms: int) -> str:
    """Ground-truth format: UTC with millisecond precision and ``Z``."""
    d = EPOCH + dt.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def from_ms(ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ms)
