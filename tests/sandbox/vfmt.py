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


# "YYYY-MM-DDThh:mm:ss" + ".fff±hh:mm": (component, power of ten) of every digit column
_ISO_TEMPLATE = b"0000-00-00T00:00:00.000+00:00"
_ISO_DIGITS = [
    (0, 1000), (0, 100), (0, 10), (0, 1), None, (1, 10), (1, 1), None, (2, 10), (2, 1), None,
    (3, 10), (3, 1), None, (4, 10), (4, 1), None, (5, 10), (5, 1), None,
    (6, 100), (6, 10), (6, 1), None, (7, 10), (7, 1), None, (8, 10), (8, 1),
]  # fmt: skip
_ISO_COLS = np.array([i for i, d in enumerate(_ISO_DIGITS) if d], dtype=np.int64)
_ISO_COMP = np.array([d[0] for d in _ISO_DIGITS if d], dtype=np.int64)
_ISO_POW = np.array([d[1] for d in _ISO_DIGITS if d], dtype=np.int64)
_ISO_SIGN = _ISO_TEMPLATE.index(b"+")


def iso_local(local_ms: np.ndarray, offset_min: np.ndarray, post: bytes) -> np.ndarray:
    """``YYYY-MM-DDThh:mm:ss[.f{1,3}]±hh:mm`` + ``post`` for local-time ms and offsets.

    The fraction keeps 0-3 digits with trailing zeros dropped (Acumatica's format, api.md §3);
    shorter rows end in NUL padding. All digits come from one integer gather of the components.
    """
    n = len(local_ms)
    days, msday = np.divmod(local_ms, 86_400_000)
    year, month, day = civil(days)
    off = np.abs(offset_min)
    comps = np.stack(
        (year, month, day, msday // 3_600_000, msday // 60_000 % 60, msday // 1000 % 60,
         msday % 1000, off // 60, off % 60),
        axis=1,
    )  # fmt: skip
    tail = len(_ISO_TEMPLATE) + len(post)
    mat = np.zeros((n, tail + 4), dtype=np.uint8)
    mat[:, :tail] = np.frombuffer(_ISO_TEMPLATE + post, dtype=np.uint8)
    mat[:, _ISO_COLS] = 48 + comps[:, _ISO_COMP] // _ISO_POW % 10
    mat[offset_min < 0, _ISO_SIGN] = ord("-")
    # length of ".fff" after dropping trailing zeros: 0, 2, 3 or 4; later columns move left
    milli = comps[:, 6]
    frac = np.where(milli % 10 != 0, 4, np.where(milli % 100 != 0, 3, np.where(milli != 0, 2, 0)))
    j = np.arange(tail, dtype=np.int64)[None, :]
    cut = 19 + frac[:, None]
    return np.take_along_axis(mat, np.where(j < cut, j, j + 4 - frac[:, None]), axis=1)
