"""Vectorised ASCII formatting: whole columns of JSON fragments built as numpy byte rows.

Each helper fills a ``(rows, width)`` uint8 matrix (constant prefix, digits, hex, a variable-
length tail padded with NUL bytes) and turns it into ``bytes`` objects with one ``.tolist()`` of
an ``S<width>`` view: numpy drops the trailing NULs, so rows may be shorter than ``width``. No
Python-level loop per value; this is what keeps a cold 1,000-record page cheap (issue 2 §9).
"""

from __future__ import annotations

import numpy as np

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLES = np.arange(60, -4, -4, dtype=np.uint64)  # shifts of the 16 nibbles of a uint64
# 8-4-4-4-12: output column -> nibble index of the 32-nibble (hi, lo) pair; -1 = dash
_GUID_MAP = np.array(
    [*range(8), -1, *range(8, 12), -1, *range(12, 16), -1, *range(16, 20), -1, *range(20, 32)],
    dtype=np.int64,
)


def const(n: int, text: bytes) -> np.ndarray:
    """``text`` repeated on ``n`` rows."""
    return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (n, len(text)))


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers (the low ``width`` digits)."""
    v = values.astype(np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (48 + (v[:, None] // powers) % 10).astype(np.uint8)


def hex_guids(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """GUID text (``8-4-4-4-12``, lower-case) of 128-bit values given as two uint64 halves."""
    n = len(hi)
    nib = np.empty((n, 32), dtype=np.uint8)
    nib[:, :16] = (hi.astype(np.uint64)[:, None] >> _NIBBLES) & np.uint64(15)
    nib[:, 16:] = (lo.astype(np.uint64)[:, None] >> _NIBBLES) & np.uint64(15)
    out = _HEX[nib[:, np.maximum(_GUID_MAP, 0)]]
    out[:, _GUID_MAP < 0] = ord("-")
    return out


def rows(*parts: np.ndarray) -> list[bytes]:
    """Concatenate uint8 matrices column-wise and return one ``bytes`` per row (NULs dropped)."""
    mat = np.ascontiguousarray(np.concatenate(parts, axis=1))
    if mat.shape[0] == 0:
        return []
    return mat.view(f"S{mat.shape[1]}").reshape(-1).tolist()


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01 (proleptic Gregorian, H. Hinnant's algorithm)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def iso_local(local_ms: np.ndarray, offset_min: np.ndarray, post: bytes) -> np.ndarray:
    """``YYYY-MM-DDThh:mm:ss[.f{1,3}]±hh:mm`` + ``post`` for local-time ms and offsets.

    The fraction keeps 0-3 digits with trailing zeros dropped (Acumatica's format, API-FACTS §3);
    shorter rows end in NUL padding.
    """
    n = len(local_ms)
    days, msday = np.divmod(local_ms, 86_400_000)
    year, month, day = civil(days)
    sec, milli = np.divmod(msday, 1000)
    hour, rem = np.divmod(sec, 3600)
    minute, second = np.divmod(rem, 60)
    dash, colon = const(n, b"-"), const(n, b":")
    head = np.concatenate(
        (
            digits(year, 4),
            dash,
            digits(month, 2),
            dash,
            digits(day, 2),
            const(n, b"T"),
            digits(hour, 2),
            colon,
            digits(minute, 2),
            colon,
            digits(second, 2),
        ),
        axis=1,
    )
    off = np.abs(offset_min)
    sign = np.where(offset_min >= 0, ord("+"), ord("-")).astype(np.uint8)[:, None]
    src = np.concatenate(
        (
            const(n, b"."),
            digits(milli, 3),
            sign,
            digits(off // 60, 2),
            colon,
            digits(off % 60, 2),
            const(n, post),
            np.zeros((n, 4), dtype=np.uint8),
        ),
        axis=1,
    )
    # length of ".fff" after dropping trailing zeros: 0, 2, 3 or 4
    frac = np.where(milli % 10 != 0, 4, np.where(milli % 100 != 0, 3, np.where(milli != 0, 2, 0)))
    width = src.shape[1] - 4
    j = np.arange(width, dtype=np.int64)[None, :]
    take = np.where(j < frac[:, None], j, j + 4 - frac[:, None])
    return np.concatenate((head, np.take_along_axis(src, take, axis=1)), axis=1)
