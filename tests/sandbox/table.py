"""Compact per-entity state: numpy arrays of change stamps, revisions and live flags.

Index order IS primary-key order (api.md §4: list order = key order): keys are generated from the
index (type blocks sorted by their internal code, then a zero-padded number), and inserts get the
next index, i.e. a key after the last one. Memory is O(records) in numpy arrays only.
"""

from __future__ import annotations

import re

import numpy as np

from . import vfmt
from .entities import EntityDef
from .records import record_hash
from .render import M64, fmt_guid, mix64

START_MS = 1609632000000  # 2021-01-03T00:00:00Z — history starts here
END_MS = 1759190400000  # 2025-09-30T00:00:00Z — and ends here (or a day before "now")


class Table:
    """Records of one entity."""

    def __init__(
        self, edef: EntityDef, eno: int, n0: int, seed: int, end_ms: int, burst: int
    ) -> None:
        self.edef = edef
        self.eno = eno
        self.seed = seed
        self.n0 = n0
        self.n = n0
        self.width = max(edef.digits, len(str(max(n0, 1) * 10)))
        self.guid_mask = mix64(seed * 0x2545F4914F6CDD1D + eno) & ((1 << 48) - 1)
        bounds: list[tuple[int, str]] = []
        acc = 0.0
        for _code, display, share in edef.types:
            bounds.append((round(acc * n0), display))
            acc += share
        self.type_bounds = bounds
        cap = max(16, n0 + n0 // 8)
        self.live = np.zeros(cap, dtype=np.bool_)
        self.changed = np.zeros(cap, dtype=np.int64)
        self.created = np.zeros(cap, dtype=np.int64)
        self.rev = np.zeros(cap, dtype=np.int32)
        self.deleted_at = np.zeros(cap, dtype=np.int64)
        self.burst_ms = 0
        self.burst_count = 0
        self._generate(end_ms, burst)

    # ------------------------------------------------------------------ history
    def _generate(self, end_ms: int, burst: int) -> None:
        n = self.n0
        if n == 0:
            return
        rng = np.random.default_rng([self.seed, self.eno, 7])
        span = max(end_ms - START_MS, 86_400_000)
        created = START_MS + np.sort(rng.integers(0, span, size=n, dtype=np.int64))
        delay = rng.exponential(20 * 86_400_000.0, size=n).astype(np.int64)
        delay[rng.random(n) < 0.3] = 0  # never edited after creation
        changed = np.minimum(created + delay, end_ms - 1)
        # small ties: groups of records saved by one transaction (same millisecond)
        m = n // 40
        if m:
            who = rng.choice(n, size=m, replace=False)
            groups = rng.integers(0, max(1, m // 4), size=m)
            group_ts = START_MS + rng.integers(0, span, size=max(1, m // 4), dtype=np.int64)
            changed[who] = group_ts[groups]
        # the mass update: `burst` records share ONE identical change timestamp (issue 2, Data)
        if burst > 0:
            b = min(burst, n)
            who = rng.choice(n, size=b, replace=False)
            self.burst_ms = START_MS + int(span * 0.62) // 1000 * 1000 + 417
            changed[who] = self.burst_ms
            self.burst_count = b
        np.minimum(created, changed, out=created)
        self.created[:n] = created
        self.changed[:n] = changed
        self.live[:n] = True

    def _grow(self) -> None:
        cap = len(self.live) * 2
        for name in ("live", "changed", "created", "rev", "deleted_at"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def insert(self, stamp: int) -> int:
        if self.n >= len(self.live):
            self._grow()
        idx = self.n
        self.n += 1
        self.live[idx] = True
        self.changed[idx] = stamp
        self.created[idx] = stamp
        return idx

    def update(self, idx: int, stamp: int) -> None:
        self.rev[idx] += 1
        self.changed[idx] = stamp

    def delete(self, idx: int, stamp: int) -> None:
        self.live[idx] = False
        self.deleted_at[idx] = stamp

    def live_page(self, skip: int, top: int | None) -> np.ndarray:
        """Indices of the live records ``skip .. skip+top-1`` (in key order).

        Never materialises every live index: the skip-th live record is at index >= skip, and a
        window of ``top`` + (dead records) indices after the live records before it holds the page.
        """
        live = self.live[: self.n]
        if top is None or skip >= self.n:
            return np.flatnonzero(live)[skip:] if top is None else np.zeros(0, dtype=np.int64)
        dead = self.n - int(np.count_nonzero(live))
        before = int(np.count_nonzero(live[:skip]))  # live records with index < skip
        first = skip - before  # rank of the page's first record among live records >= skip
        window = np.flatnonzero(live[skip : skip + first + top + dead]) + skip
        return window[first : first + top]

    # ------------------------------------------------------------------ keys and ids
    def number(self, idx: int) -> str:
        return f"{self.edef.prefix}{idx + 1:0{self.width}d}"

    def keys(self, idx: int) -> tuple[object, ...]:
        e = self.edef
        if len(e.keys) == 2:
            display = e.types[-1][1]
            for start, disp in self.type_bounds:
                if idx >= start:
                    display = disp
            if idx >= self.n0:
                display = e.types[-1][1]
            return (display, self.number(idx))
        if e.name == "Contact":
            return (100 + idx,)  # ContactID is an IntValue key
        return (self.number(idx),)

    def key_columns(self, idx: np.ndarray) -> list[list[object]]:
        """:meth:`keys` of many records, one list per key field (vectorised)."""
        e = self.edef
        if len(idx) == 0:
            return [[] for _ in e.keys]
        if e.name == "Contact":
            return [(idx + 100).tolist()]
        num = idx + 1
        if num.max() >= 10**self.width:
            return [list(col) for col in zip(*(self.keys(i) for i in idx.tolist()), strict=True)]
        pre = vfmt.const(len(idx), e.prefix.encode())
        numbers = [b.decode() for b in vfmt.rows(pre, vfmt.digits(num, self.width))]
        if len(e.keys) == 1:
            return [numbers]
        starts = np.array([start for start, _ in self.type_bounds], dtype=np.int64)
        names = np.array([display for _, display in self.type_bounds] + [e.types[-1][1]], object)
        pos = np.searchsorted(starts, idx, side="right") - 1
        pos[(idx >= self.n0) | (pos < 0)] = len(starts)
        return [names[pos].tolist(), numbers]

    def find_keys(self, values: list[str]) -> int | None:
        """Index of the live-or-dead record with these key values (trimmed, case-insensitive)."""
        if len(values) != len(self.edef.keys):
            return None
        last = values[-1].strip()
        m = re.search(r"(\d+)$", last)
        if not m:
            return None
        num = int(m.group(1))
        idx = num - 100 if self.edef.name == "Contact" else num - 1
        if not 0 <= idx < self.n:
            return None
        want = tuple(str(k).casefold() for k in self.keys(idx))
        got = tuple(v.strip().casefold() for v in values)
        return idx if want == got else None

    def guid(self, idx: int) -> str:
        """NoteID: stable, and decodable back to the index (no id→index map in memory)."""
        h = record_hash(self.seed, self.eno, idx)
        hi = (h >> 32) << 96 | ((h >> 16) & 0xFFFF) << 80
        mid = (0xE000 | self.eno) << 64 | (0x8000 | (h & 0x0FFF)) << 48
        return fmt_guid(hi | mid | ((idx ^ self.guid_mask) & ((1 << 48) - 1)))

    def guids(self, idx: np.ndarray, hashes: np.ndarray) -> list[bytes]:
        """:meth:`guid` (as ASCII bytes) for many records whose ``base_hash`` values are known."""
        h = hashes.astype(np.uint64)
        hi = ((h >> np.uint64(32)) << np.uint64(32)) | (
            ((h >> np.uint64(16)) & np.uint64(0xFFFF)) << np.uint64(16)
        )
        hi |= np.uint64(0xE000 | self.eno)
        low = (idx.astype(np.uint64) ^ np.uint64(self.guid_mask)) & np.uint64((1 << 48) - 1)
        lo = ((np.uint64(0x8000) | (h & np.uint64(0x0FFF))) << np.uint64(48)) | low
        return vfmt.rows(vfmt.hex_guids(hi, lo))

    def find_guid(self, text: str) -> int | None:
        t = text.strip().lower()
        if len(t) != 36 or t.count("-") != 4:
            return None
        try:
            eno = int(t[14:18], 16) & 0x0FFF
            idx = int(t[24:], 16) ^ self.guid_mask
        except ValueError:
            return None
        if eno != self.eno or not 0 <= idx < self.n:
            return None
        return idx if self.guid(idx) == t else None

    def base_hash(self, idx: int) -> int:
        return record_hash(self.seed, self.eno, idx) & M64
