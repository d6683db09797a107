"""Vectorised page rendering straight to JSON bytes (issue 2 §9: the sandbox must not be the
bottleneck of a tap benchmark).

Every member of a record is rendered column-wise for the whole page: hashes and pool picks are
numpy operations, and each pool value is pre-encoded together with its key (``,"Status":{"value":
"Open"}``), so a record body is one C-level ``b"".join`` of a row of fragments. The formulas are
the vector twins of ``records.SchemaGen.raw_value``/``sub_ctx``/``line_count``; a test checks
that both produce the same records.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any

import msgspec
import numpy as np

from . import vfmt
from .entities import schema
from .records import EMPTY_DATE_MS, FieldGen, Generators, SchemaGen
from .render import GOLDEN, M64
from .stamps import apply_edits

_ENC = msgspec.json.Encoder()
U = np.uint64
_SH30, _SH27, _SH31, _SH32 = U(30), U(27), U(31), U(32)
_C1, _C2 = U(0xBF58476D1CE4E5B9), U(0x94D049BB133111EB)
_GOLD = U(GOLDEN)
_NOTE_EMPTY = b'{"value":""}'
_join = b"".join
_ROWNUMBERS = [b'","rowNumber":' + str(i + 1).encode() for i in range(64)]


def vmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic, as ``render.mix64``)."""
    x = x ^ (x >> _SH30)
    x = x * _C1
    x = x ^ (x >> _SH27)
    x = x * _C2
    return x ^ (x >> _SH31)


def vpick(h: np.ndarray, mult: int, n: int) -> list[int]:
    return vpick_arr(h, mult, n).tolist()


def vpick_arr(h: np.ndarray, mult: int, n: int) -> np.ndarray:
    """``render.pick`` over a uint64 array (as an index array)."""
    return ((h * U(mult & M64)) >> _SH32) % U(n)


def vrecord_hash(seed: int, eno: int, idx: np.ndarray) -> np.ndarray:
    base = U(((seed * GOLDEN) & M64) ^ (eno << 52))
    return vmix64(base ^ vmix64(idx.astype(U) + U(1)))


def vrev_hash(h: np.ndarray, rev: np.ndarray) -> np.ndarray:
    bumped = vmix64(h ^ (rev.astype(U) * U(0xD1B54A32D192ED03)))
    return np.where(rev == 0, h, bumped)


def guids_of(h: np.ndarray) -> list[bytes]:
    """``render.fmt_guid((h << 64) | mix64(h))`` for every element, as ASCII bytes."""
    return vfmt.rows(vfmt.hex_guids(h, vmix64(h)))


@dataclass
class Cols:
    """Per-row inputs of one level (records, detail lines or linked entities)."""

    h: np.ndarray
    hm: np.ndarray
    changed: np.ndarray
    created: np.ndarray
    idx: np.ndarray
    line: np.ndarray
    guids: list[bytes]  # ASCII NoteIDs
    keys: list[list[Any]] | None  # key values, one list per key field (top level only)
    # issue 11 per-table stamps (stamps.apply_edits): member path, edited rows, original hashes
    path: str = ""
    edits: Any = None
    kids: np.ndarray | None = None


class PageRenderer:
    """Renders the bodies (everything after ``"note":…``) of many rows of one selection."""

    def __init__(self, gens: Generators, files_base: str) -> None:
        self.g = gens
        self.files_base = files_base  # "<site>/entity/Default/<v>/files/<graph>"
        # rendered reference-key and date fragments, kept across pages (bounded)
        self._frags = gens.fragments
        if len(self._frags) > 200_000:
            self._frags.clear()

    def members(self, sel: Any, c: Cols) -> list[tuple[bytes, ...]]:
        """Member fragments (each starting with a comma) per row, still to be joined."""
        return list(zip(*self.columns(sel, c), strict=True))

    def columns(self, sel: Any, c: Cols) -> list[list[bytes]]:
        """Member fragments (each starting with a comma) column by column."""
        gen: SchemaGen = sel.gen
        cols: list[list[bytes]] = []
        for name, kind, payload in sel.members:
            if kind == "f":
                cols.append(self.field(gen, payload, c))
            elif kind == "d":
                cols.append(self.detail(gen, name, payload, c, linked=False))
            else:
                cols.append(self.detail(gen, name, payload, c, linked=True))
        cols.append(self.custom(gen, sel, c))
        return cols

    def field(self, gen: SchemaGen, fg: FieldGen, c: Cols) -> list[bytes]:
        kind = fg.kind
        h = c.hm if fg.mutable else c.h
        pre = fg.prefix
        if kind == "pool":
            arr = fg.pool_arr
            if arr is None:
                arr = fg.pool_arr = np.empty(len(fg.pool_bytes), dtype=object)
                arr[:] = fg.pool_bytes
            return arr[vpick_arr(h, fg.mult, len(arr))].tolist()  # a C-level gather
        if kind == "key":
            assert c.keys is not None
            pos = fg.arg
            pre += b'{"value":'
            return [pre + _ENC.encode(k) + b"}" for k in c.keys[pos]]
        if kind in {"changed", "created"}:
            return self.g.clock.fragments(self.stamps(fg, c), pre + b'{"value":"', b'"}')
        if kind == "date":
            offs = vpick_arr(h, fg.mult, 40).astype(np.int64)
            uniq, inverse = np.unique(c.created // 86_400_000 + offs - 3, return_inverse=True)
            vals = np.empty(len(uniq), dtype=object)
            vals[:] = [self._day(pre, d) for d in uniq.tolist()]
            return vals[inverse.reshape(-1)].tolist()
        if kind == "guid":
            pre += b'{"value":"'
            return [pre + g + b'"}' for g in c.guids]
        if kind == "idx":
            base = fg.arg
            return [pre + b'{"value":' + str(base + i).encode() + b"}" for i in c.idx.tolist()]
        if kind == "line":
            return [pre + b'{"value":' + str(i + 1).encode() + b"}" for i in c.line.tolist()]
        if kind == "ref":
            return self.refs(fg, vpick_arr(h, fg.mult, 1 << 30))
        raise AssertionError(kind)

    def stamps(self, fg: FieldGen, c: Cols) -> np.ndarray:
        if fg.kind == "changed":
            return c.changed
        if not fg.arg:
            return c.created
        empty = np.array(vpick(c.h, fg.mult, 20)) == 0
        return np.where(empty, EMPTY_DATE_MS, c.created)

    def raw_columns(self, gen: SchemaGen, names: list[str], c: Cols) -> list[list[Any]]:
        """Raw (unwrapped) values per field, column-wise: the vector twin of ``raw_value``."""
        out: list[list[Any]] = []
        for name in names:
            fg = gen.fields[name]
            h = c.hm if fg.mutable else c.h
            kind = fg.kind
            if kind == "pool":
                raw = fg.raw
                out.append([raw[k] for k in vpick(h, fg.mult, len(raw))])
            elif kind == "key":
                assert c.keys is not None
                out.append(list(c.keys[fg.arg]))
            elif kind in {"changed", "created"}:
                out.append(self.stamps(fg, c).tolist())
            elif kind == "date":
                mid = self.g.clock.midnight_ms
                days = (c.created // 86_400_000).tolist()
                out.append(
                    [mid(d + o - 3) for d, o in zip(days, vpick(h, fg.mult, 40), strict=True)]
                )
            elif kind == "guid":
                out.append([g.decode() for g in c.guids])
            elif kind == "idx":
                out.append([fg.arg + i for i in c.idx.tolist()])
            elif kind == "line":
                out.append([i + 1 for i in c.line.tolist()])
            else:
                ref, ent = self.g.ref_key, fg.arg
                out.append([ref(ent, r) for r in vpick(h, fg.mult, 1 << 30)])
        return out

    def refs(self, fg: FieldGen, picks: np.ndarray) -> list[bytes]:
        """Key fragments of referenced records: each distinct pick is rendered once."""
        uniq, inverse = np.unique(picks % U(self.g.ref_count(fg.arg)), return_inverse=True)
        vals = np.empty(len(uniq), dtype=object)
        cache, ent, pre = self._frags, fg.arg, fg.prefix + b'{"value":'
        frags = []
        for r in uniq.tolist():
            got = cache.get((pre, ent, r))
            if got is None:
                key = self.g.ref_key(ent, r)
                got = cache[(pre, ent, r)] = pre + _ENC.encode(key) + b"}"
            frags.append(got)
        vals[:] = frags
        return vals[inverse.reshape(-1)].tolist()

    def _day(self, pre: bytes, day: int) -> bytes:
        key = (pre, day)
        got = self._frags.get(key)
        if got is None:
            clock = self.g.clock
            got = pre + b'{"value":"' + clock.fmt(clock.midnight_ms(day)).encode() + b'"}'
            self._frags[key] = got
        return got

    def custom(self, gen: SchemaGen, sel: Any, c: Cols) -> list[bytes]:
        n = len(c.guids)
        if not sel.custom:
            return [b',"custom":{}'] * n
        per_row: list[dict[str, Any]] = [{} for _ in range(n)]
        for view, fname, cg in sel.custom:
            h = c.hm if cg.mutable else c.h
            typ = f"Custom{cg.type}Field"
            for row, k in zip(per_row, vpick(h, cg.mult, len(cg.raw)), strict=True):
                row.setdefault(view, {})[fname] = {"type": typ, "value": cg.raw[k]}
        return [b',"custom":' + _ENC.encode(row) for row in per_row]

    def detail(
        self,
        gen: SchemaGen,
        member: str,
        sub_sel: Any,
        c: Cols,
        *,
        linked: bool,
    ) -> list[bytes]:
        n = len(c.guids)
        salt = gen.salts[member]
        if linked:
            counts = np.ones(n, dtype=np.int64)
        else:
            lo, hi = schema(gen.schema.details[member]).lines
            base = c.h if c.kids is None else c.kids  # records.line_count: stable line sets
            counts = lo + np.array(vpick(base, salt | 1, hi - lo + 1), dtype=np.int64)
        total = int(counts.sum())
        rep = np.repeat(np.arange(n), counts)
        starts = np.cumsum(counts) - counts
        line = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
        ph, phm = (c.h if c.kids is None else c.kids)[rep], c.hm[rep]
        lmix = U(salt) ^ (line.astype(U) * _GOLD)
        sh = vmix64(ph ^ lmix)
        shm = np.where(phm == ph, sh, vmix64(phm ^ lmix))
        guids = guids_of(sh)
        sub = Cols(sh, shm, c.changed[rep], c.created[rep], c.idx[rep], line, guids, None)
        if c.edits:
            apply_edits(sub, c, member, line)  # issue 11: edited lines/contacts (api.md §3)
        cols = self.columns(sub_sel, sub)
        note = b"null" if sub_sel.gen.schema.note_null else _NOTE_EMPTY
        key = b',"' + member.encode() + b'":'
        close = b',"files":[]}' if sub_sel.files else b"}"
        if linked:
            mid = b'","rowNumber":1,"note":' + note
            return list(
                map(_join, zip(repeat(key + b'{"id":"'), guids, repeat(mid), *cols, repeat(close)))
            )
        fput = b',"_links":{"files:put":"' + f"{self.files_base}/{sub_sel.view}/".encode()
        numbers = map(_ROWNUMBERS.__getitem__, line.tolist())
        mid = b',"note":' + note
        end = b'/{filename}"}' + close
        lines = list(
            map(
                _join,
                zip(
                    repeat(b'{"id":"'),
                    guids,
                    numbers,
                    repeat(mid),
                    *cols,
                    repeat(fput),
                    guids,
                    repeat(end),
                ),
            )
        )
        out = []
        start, open_, comma = 0, key + b"[", b",".join
        for stop in np.cumsum(counts).tolist():
            out.append(open_ + comma(lines[start:stop]) + b"]")
            start = stop
        return out
