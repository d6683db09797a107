"""Page assembly and the rendered-record cache of the Dataset (a mixin of data.Dataset).

A record is rendered as ``(head, tail)`` bytes around its rowNumber (which depends on the
position in the response, so the rest can be reused on any page). Pairs are cached per
(query signature, index, revision, change stamp): a mutation bumps the revision or the stamp, so
stale entries are never hit again; the cache is bounded by bytes and cleared when full.
"""

from __future__ import annotations

import threading
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from .fastpage import Cols, PageRenderer, vpick_arr, vrecord_hash, vrev_hash
from .records import NOTE_MULT
from .stamps import RowEdits, cache_keys, row_edits

if TYPE_CHECKING:
    from .entities import EntityDef
    from .records import Generators
    from .shape import Sel
    from .table import Table

CACHE_BYTES = 96 * 1024 * 1024
Row = tuple[int, int, int, int]  # (index, revision, changed ms, created ms)
_join = b"".join
_NUMBERS = [str(i).encode() for i in range(10_001)]


class RenderCache:
    """(head, tail) bytes per record state, bounded by ``limit`` bytes (cleared when full)."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self._items: dict[tuple[int, int, int, int], tuple[bytes, bytes]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get_many(self, keys: list[tuple[int, int, int, int]]) -> list[Any]:
        return list(map(self._items.get, keys))

    def put_many(self, items: dict[tuple[int, int, int, int], tuple[bytes, bytes]]) -> None:
        size = sum(len(tail) + len(head) + 100 for head, tail in items.values())
        with self._lock:
            if self._bytes + size > self.limit:
                self._items.clear()
                self._bytes = 0
            self._items.update(items)
            self._bytes += size

    @property
    def nbytes(self) -> int:
        return self._bytes


class Pages:
    """Renders records of a query into JSON bytes (see module docstring)."""

    seed: int
    site_path: str
    gens: Generators
    render_cache: RenderCache
    detail_state: dict[str, dict[int, RowEdits]]

    def _cols(self, t: Table, rows: list[Row]) -> Cols:
        """Vector inputs of records given as (index, revision, changed, created)."""
        arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
        idx = arr[:, 0].copy()
        h = vrecord_hash(self.seed, t.eno, idx)
        return Cols(
            h,
            vrev_hash(h, arr[:, 1]),
            arr[:, 2].copy(),
            arr[:, 3].copy(),
            idx,
            np.zeros_like(idx),
            t.guids(idx, h),
            t.key_columns(idx),
        )

    def _page(self, rendered: list[tuple[bytes, bytes]]) -> bytes:
        """The JSON array of a list response; rowNumber restarts at 1 on every page (§3)."""
        if not rendered:
            return b"[]"
        n = len(rendered)
        numbers = (
            _NUMBERS[1 : n + 1] if n < len(_NUMBERS) else [str(i).encode() for i in range(1, n + 1)]
        )
        heads, tails = zip(*rendered, strict=True)
        # one flat join: every record's bytes are copied once
        parts = list(chain.from_iterable(zip(heads, numbers, tails, repeat(b","))))
        parts[-1] = b"]"
        parts.insert(0, b"[")
        return _join(parts)

    def _render_rows(
        self, t: Table, edef: EntityDef, version: str, sel: Sel, sig: int, rows: list[Row]
    ) -> list[tuple[bytes, bytes]]:
        """(head, tail) bytes per row around the rowNumber; cached per record state."""
        # issue 11: edited detail lines / contacts are part of the record state (stamps.py)
        edits = row_edits(self.detail_state.get(t.edef.name), rows)
        keys = cache_keys(sig, rows, edits) if edits else [(sig, i, r, c) for i, r, c, _ in rows]
        out = self.render_cache.get_many(keys)
        miss = [i for i, got in enumerate(out) if got is None]
        if not miss:
            return out
        cols = self._cols(t, [rows[i] for i in miss])
        cols.edits = edits
        guids = cols.guids
        base = f"{self.site_path}/entity/Default/{version}"
        files = f"{base}/files/{edef.graph}"
        members = PageRenderer(self.gens, files).columns(sel, cols)
        notes = np.empty(len(self.gens.note_bytes), dtype=object)
        notes[:] = self.gens.note_bytes
        note_col = notes[vpick_arr(cols.hm, NOTE_MULT, len(notes))].tolist()
        close = b'/{filename}"},"files":[]}' if sel.files else b'/{filename}"}}'
        tails = map(
            _join,
            zip(
                repeat(b',"note":'),
                note_col,
                *members,
                repeat(b',"_links":{"self":"' + f"{base}/{edef.name}/".encode()),
                guids,
                repeat(b'","files:put":"' + f"{files}/{edef.view}/".encode()),
                guids,
                repeat(close),
            ),
        )
        heads = [b'{"id":"' + g + b'","rowNumber":' for g in guids]
        fresh = list(zip(heads, tails, strict=True))
        for i, pair in zip(miss, fresh, strict=True):
            out[i] = pair
        self.render_cache.put_many(dict(zip([keys[i] for i in miss], fresh, strict=True)))
        return out
