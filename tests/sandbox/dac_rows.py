"""DAC rows built from the REST dataset in bulk (api.md §8, §10; definitions in dac_defs.py).

Rows are computed column-wise from the numpy tables (the same hashes ``fastpage`` renders REST
records and their detail lines from, so a row's NoteID is the REST ``id`` of its record, line or
linked entity), sorted by key, and cached per DAC until the data changes (a cheap fingerprint of
the source tables and their detail edits). Stamps (api.md §3 "Stamps are per table"): a header
row's ``LastModifiedDateTime`` is its record's own stamp; a detail/linked row's is the stamp of
its last own edit (``/_sandbox/mutate`` ``"op": "detail"`` or ``--writers``), else its record's
creation stamp — an update of the header does not touch its lines, and a line edit does not touch
the header (unless the edit also "changed totals", stamps.py). Deleting a record deletes its rows
in every DAC fed by it (SOLine rows of a SalesOrder, Contact and Address rows of a Customer).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tests.sandbox.contract5 import kinds
from tests.sandbox.dac_defs import DacDef, Source, find
from tests.sandbox.entities import schema
from tests.sandbox.fastpage import (
    Cols,
    PageRenderer,
    guids_of,
    vmix64,
    vpick_arr,
    vrecord_hash,
    vrev_hash,
)
from tests.sandbox.records import rev_hash
from tests.sandbox.render import GOLDEN, from_ms, utc_z

if TYPE_CHECKING:
    from tests.sandbox.data import Dataset
    from tests.sandbox.table import Table

U = np.uint64
UTC = dt.timezone.utc


@dataclass
class Built:
    """One DAC's state: live rows in key order, deletions, and rows by (source, owner index)."""

    rows: list[dict[str, Any]]
    deleted: list[tuple[str, int]]  # (NoteID, deletion ms)
    by_owner: dict[tuple[int, int], list[dict[str, Any]]]


@functools.cache
def _codes(entity: str, fname: str) -> dict[str, str]:
    return kinds(entity).single.get(fname, {})


class DacStore:
    """DAC rows of one dataset, cached per DAC and data version."""

    def __init__(self, dataset: Dataset) -> None:
        self.ds = dataset
        self._cache: dict[str, tuple[tuple[Any, ...], Built]] = {}
        self._lock = threading.Lock()

    def built(self, dac: DacDef) -> Built:
        mark = self._fingerprint(dac)
        with self._lock:
            got = self._cache.get(dac.short)
        if got is not None and got[0] == mark:
            return got[1]
        built = self._build(dac)
        with self._lock:
            self._cache[dac.short] = (mark, built)
        return built

    def _fingerprint(self, dac: DacDef) -> tuple[Any, ...]:
        ds = self.ds
        out: list[Any] = []
        with ds.lock:
            for entity in sorted({s.entity for s in dac.sources}):
                t = ds.tables[entity]
                n = t.n
                edits = ds.detail_state.get(entity, {})
                out += [n, int(t.changed[:n].sum()), int(t.rev[:n].sum())]
                out += [int(t.live[:n].sum()), int(t.deleted_at[:n].sum())]
                out.append(sum(e.version for e in edits.values()))
        return tuple(out)

    def _build(self, dac: DacDef) -> Built:
        rows: list[dict[str, Any]] = []
        deleted: list[tuple[str, int]] = []
        for si, src in enumerate(dac.sources):
            live, dead = self._source(dac, si, src)
            rows += live
            deleted += dead
        keys = dac.keys
        rows.sort(key=lambda r: tuple(_sortable(r[k]) for k in keys))
        by_owner: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for row in rows:
            by_owner.setdefault(row["_o"], []).append(row)
        deleted.sort(key=lambda d: (d[1], d[0]))
        return Built(rows, deleted, by_owner)

    # ------------------------------------------------------------------ one source
    def _source(
        self, dac: DacDef, si: int, src: Source
    ) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
        ds = self.ds
        t = ds.tables[src.entity]
        with ds.lock:
            n = t.n
            live = t.live[:n].copy()
            rev = t.rev[:n].copy()
            changed = t.changed[:n].copy()
            created = t.created[:n].copy()
            dead_at = t.deleted_at[:n].copy()
            edits = dict(ds.detail_state.get(src.entity, {}))
        idx = np.arange(n, dtype=np.int64)
        h = vrecord_hash(ds.seed, t.eno, idx)
        top = Cols(h, vrev_hash(h, rev), changed, created, idx, np.zeros_like(idx), [], None)
        top.guids = t.guids(idx, h) if n else []
        top.keys = t.key_columns(idx)
        cols, stamp = top, changed
        gen = ds.gens.top(t.edef)
        if src.path:
            cols, gen = self._descend(t, top, src.path, edits)
            stamp = cols.changed
        owner = cols.idx
        values = self._values(dac, src, t, top, cols, gen)
        guids = [g.decode() for g in cols.guids]
        alive = live[owner].tolist()
        stamps = stamp.tolist()
        gone_at = dead_at[owner].tolist()
        names = [c.name for c in dac.cols]
        live_rows: list[dict[str, Any]] = []
        dead_rows: list[tuple[str, int]] = []
        owners = owner.tolist()
        for k, row_values in enumerate(zip(*values, strict=True)):
            if not alive[k]:
                dead_rows.append((guids[k], int(gone_at[k])))
                continue
            row = dict(zip(names, row_values, strict=True))
            row["_o"] = (si, owners[k])
            row["_ms"] = stamps[k]
            live_rows.append(row)
        return live_rows, dead_rows

    def _descend(self, t: Table, top: Cols, path: str, edits: dict[int, Any]) -> tuple[Cols, Any]:
        """The rows of a detail/linked member path: the hashes fastpage.detail renders from,
        with stamps.apply_edits' edits; a row's stamp is its edit's or its record's creation."""
        gen = self.ds.gens.top(t.edef)
        cur, prefix = top, ""
        for seg in path.split("/"):
            prefix = f"{prefix}/{seg}" if prefix else seg
            salt = gen.salts[seg]
            base = cur.h if cur.kids is None else cur.kids
            if seg in gen.schema.linked:
                counts = np.ones(len(base), dtype=np.int64)
                sub_name = gen.schema.linked[seg]
            else:
                sub_name = gen.schema.details[seg]
                lo, hi = schema(sub_name).lines
                counts = lo + vpick_arr(base, salt | 1, hi - lo + 1).astype(np.int64)
            rep = np.repeat(np.arange(len(base)), counts)
            starts = np.cumsum(counts) - counts
            line = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
            sh = vmix64(base[rep] ^ (U(salt) ^ (line.astype(U) * U(GOLDEN))))
            created = top.created[cur.idx[rep]]
            nxt = Cols(sh, sh, created.copy(), created, cur.idx[rep], line, guids_of(sh), None)
            nxt.kids = sh.copy()
            nxt.h = sh.copy()
            for k in np.flatnonzero(np.isin(nxt.idx, list(edits))).tolist() if edits else []:
                got = edits[int(nxt.idx[k])].lines.get((prefix, int(line[k])))
                if got is not None:
                    nxt.h[k] = U(rev_hash(int(sh[k]), got[0]))
                    nxt.changed[k] = got[1]
            nxt.hm = nxt.h
            cur, gen = nxt, self.ds.gens.sub(sub_name)
        return cur, gen

    def _values(
        self, dac: DacDef, src: Source, t: Table, top: Cols, cols: Cols, gen: Any
    ) -> list[list[Any]]:
        """Column values of every row (dead ones too), column by column."""
        renderer = PageRenderer(self.ds.gens, "")
        own = [c.src[2:] for c in dac.cols if c.src[:2] == "f:"]
        own += [c.src.partition(":")[2] for c in dac.cols if c.src.startswith(("code:", "date:"))]
        own = [f for f in dict.fromkeys(own) if f in gen.fields]
        raw = dict(zip(own, renderer.raw_columns(gen, own, cols), strict=True)) if own else {}
        tgen = self.ds.gens.top(t.edef)
        owner = cols.idx
        n = len(owner)
        out: list[list[Any]] = []
        for col in dac.cols:
            kind, _, arg = col.src.partition(":")
            if kind == "f":
                out.append(raw.get(arg, [None] * n))
            elif kind == "code":
                codes = _codes(src.entity, arg)
                out.append(
                    [None if v is None else codes.get(v, v) for v in raw.get(arg, [None] * n)]
                )
            elif kind == "date":
                out.append([self._date(v) for v in raw.get(arg, [None] * n)])
            elif kind in ("key", "tcode"):
                keys = np.array(top.keys[int(arg)] if top.keys else [], dtype=object)
                vals = keys[owner].tolist() if n else []
                if kind == "tcode":
                    codes = {d: c for c, d, _ in t.edef.types}
                    vals = [codes.get(v, v) for v in vals]
                out.append(vals)
            elif kind == "line":
                out.append((cols.line + 1).tolist())
            elif kind == "own":
                out.append((owner + src.base).tolist())
            elif kind == "idx":
                out.append((owner + int(arg)).tolist())
            elif kind == "owner":
                if arg in tgen.fields:
                    (vals,) = renderer.raw_columns(tgen, [arg], top)
                    out.append(np.array(vals, dtype=object)[owner].tolist())
                else:
                    out.append([None] * n)
            elif kind == "noteid":
                out.append([g.decode() for g in cols.guids])
            elif kind in ("stamp", "created"):
                out.append(
                    [from_ms(int(v)) for v in (cols.changed if kind == "stamp" else cols.created)]
                )
            else:  # const
                out.append([arg == "true"] * n)
        return out

    @functools.lru_cache(maxsize=20_000)  # noqa: B019  (one store per dataset, bounded)
    def _date(self, ms: int | None) -> dt.datetime | None:
        """A date-only value (tenant-local midnight) as midnight UTC of that date (UNVERIFIED)."""
        if ms is None:
            return None
        day = self.ds.clock.local(ms).date()
        return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)

    # ------------------------------------------------------------------ read-outs
    def ground_truth(self, name: str) -> dict[str, Any] | None:
        """``GET /_sandbox/records/dac/{DAC}``: live rows (NoteID, trimmed keys, own stamp) and
        every deletion (not limited to "Days to Keep Records")."""
        dac = find(name)
        if dac is None:
            return None
        b = self.built(dac)
        return {
            "live": [
                {"id": r["NoteID"], "keys": {k: r[k] for k in dac.keys}, "changed": utc_z(r["_ms"])}
                for r in b.rows
            ],
            "deleted": [{"id": g, "deleted": utc_z(ms)} for g, ms in b.deleted],
        }


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)
