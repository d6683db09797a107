"""The sandbox Dataset: Acumatica's contract-based entities, queries and change simulation.

The HTTP server calls this (rest.py, odata.py, admin.py); everything here is pure
in-process Python over numpy arrays, deterministic from the seed, safe for many threads.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import numpy as np

from . import filters
from .changes import Changes
from .entities import ENTITIES, VERSIONS, EntityDef, schema
from .errors import api_error, not_found, odata_error, unknown_entity
from .pages import Pages, RenderCache
from .records import Ctx, Generators, rev_hash
from .render import to_ms
from .shape import Sel, compile_selection, no_property
from .stamps import StampClock, StampOptions, Stamps
from .table import END_MS, Table

QUERY_OPTIONS = {"$filter", "$select", "$expand", "$custom", "$top", "$skip"}
_ENC = msgspec.json.Encoder()


class Dataset(Pages, Stamps, Changes):
    """All entities of one sandbox instance (see module docstring)."""

    versions = list(VERSIONS)

    def __init__(
        self,
        *,
        seed: int,
        records: int,
        tz: str,
        now: Callable[[], dt.datetime],
        big_entity: str | None = None,
        big_records: int = 0,
        burst_size: int = 3000,
        site_path: str = "",
        stamps: StampOptions | None = None,
    ) -> None:
        self.seed = seed
        self.now = now
        self.site_path = site_path.rstrip("/")
        self.clock = StampClock(tz, stamps)  # issue 11: how $filter reads literals (stamps.py)
        self.lock = threading.RLock()
        self.burst_size = burst_size
        end = min(END_MS, to_ms(now()) - 86_400_000)
        self.tables: dict[str, Table] = {}
        for eno, (name, edef) in enumerate(ENTITIES.items(), start=1):
            if edef.inquiry:
                continue
            n = records if edef.scale == "core" else max(20, records // 5)
            burst = 0
            if name == "SalesOrder" and burst_size > 0:
                # a burst bigger than any page must exist even at small --records
                n = records + burst_size
                burst = burst_size
            elif name in {"Customer", "StockItem"} and burst_size > 0:
                burst = min(burst_size, max(1, n // 3))
            if big_entity == name and big_records > 0:
                n = big_records
                burst = min(burst_size, n) if burst_size > 0 else 0
            self.tables[name] = Table(edef, eno, n, seed, end, burst)
        self.gens = Generators(seed, self.clock, self._ref_key, self._ref_count)
        self._sel_cache: dict[tuple[Any, ...], tuple[Sel, Any, set[str], int]] = {}
        self._sig_ids: dict[tuple[Any, ...], int] = {}
        self._sig_next = itertools.count()
        self.render_cache = RenderCache()
        self._mut_rng = random.Random(seed * 101 + 3)
        self._init_stamps(stamps)  # issue 11: SQL ticks, per-table stamps (stamps.py)

    # ------------------------------------------------------------------ lookup helpers
    def entity_names(self, version: str) -> list[str]:
        self._version(version)
        return sorted(ENTITIES)

    def _version(self, version: str) -> None:
        if version not in self.versions:  # --endpoints (contract5.py), api.md §1.1
            raise api_error(f"The endpoint version '{version}' is not found.", status=404)

    def _entity(self, version: str, entity: str) -> EntityDef:
        self._version(version)
        edef = ENTITIES.get(entity)
        if edef is None:
            raise unknown_entity(entity)
        return edef

    def _table(self, entity: str) -> Table:
        t = self.tables.get(entity)
        if t is None:
            raise unknown_entity(entity)
        return t

    def _ref_key(self, entity: str, r: int) -> Any:
        t = self.tables[entity]
        return t.keys(r % max(1, t.n0))[-1]

    def _ref_count(self, entity: str) -> int:
        return max(1, self.tables[entity].n0)

    def _ctx(self, t: Table, idx: int, rev: int, changed: int, created: int) -> Ctx:
        h = t.base_hash(idx)
        return Ctx(idx, h, rev_hash(h, rev), changed, created, t.guid(idx), t.keys(idx))

    # ------------------------------------------------------------------ query compilation
    def _compile(
        self, version: str, edef: EntityDef, params: dict[str, str], *, listing: bool
    ) -> tuple[Sel, Any, set[str], int]:
        for name in params:
            if name == "$orderby":
                # api.md §4: no $orderby in Contract 4 — we refuse it loudly (documented choice)
                raise odata_error("The query parameter '$orderby' is not supported.")
            if name.startswith("$") and name not in QUERY_OPTIONS:
                raise odata_error(f"The query parameter '{name}' is not supported.")
        key = (
            version,
            edef.name,
            params.get("$filter") if listing else None,
            params.get("$select"),
            params.get("$expand"),
            params.get("$custom"),
        )
        got = self._sel_cache.get(key)
        if got is None:
            ast, fields = None, set()
            if listing and params.get("$filter", "").strip():
                ast, fields = filters.parse(
                    params["$filter"], self._resolver(version, edef), self.clock
                )
            top = self.gens.top(edef)
            sel = compile_selection(
                top,
                self.gens.sub,
                version,
                params.get("$select"),
                params.get("$expand"),
                params.get("$custom"),
                fields,
            )
            # the rendered bytes depend on the filter only through the fields it adds to $select
            extra = tuple(sorted(fields)) if params.get("$select") else ()
            # a small int stands for the signature in render-cache keys (cheap to hash)
            if len(self._sel_cache) > 2000:
                self._sel_cache.clear()
                self._sig_ids.clear()  # ids come from a counter: never reused
            sig = self._sig_ids.setdefault(
                (version, edef.name, *key[3:], extra), next(self._sig_next)
            )
            got = (sel, ast, fields, sig)
            self._sel_cache[key] = got
        return got

    def _resolver(self, version: str, edef: EntityDef) -> filters.Resolver:
        def resolve(path: str) -> str:
            if path.startswith("cf:"):
                _, ctype, ref = path.split(":", 2)
                view, _, fname = ref.partition(".")
                if self.gens.top(edef).custom_gen(view, fname) is None:
                    raise odata_error(
                        f"The custom field '{ref}' is not found in the entity '{edef.name}'."
                    )
                return ctype
            sch = edef
            segs = path.split("/")
            for seg in segs[:-1]:
                if seg in sch.details:
                    # api.md §4: filtering on detail entities is unsupported
                    raise api_error(
                        f"Filtering by fields of the detail entity '{seg}' is not supported.",
                        "System.NotSupportedException",
                        stack="odata",
                    )
                if seg not in sch.linked:
                    raise no_property(seg, sch)
                sch = schema(sch.linked[seg])  # type: ignore[assignment]
            last = segs[-1]
            f = sch.field_map(version).get(last)
            if f is None:
                if last in sch.details or last in sch.linked:
                    raise odata_error(
                        f"The property '{last}' of type 'Default.{sch.name}' cannot be used in "
                        "$filter."
                    )
                raise no_property(last, sch)
            return f.type

        return resolve

    def _getter(self, edef: EntityDef, c: Ctx) -> filters.Getter:
        top = self.gens.top(edef)

        def get(node: filters.Node) -> Any:
            if node[0] == "cf":
                cg = top.custom_gen(node[1], node[2])
                return None if cg is None else top.raw_value(cg, c)
            *path, last = node[1].split("/")
            gen, ctx = top, c
            for seg in path:
                ctx = gen.sub_ctx(ctx, seg, 0)
                gen = self.gens.sub(gen.schema.linked[seg])
            return gen.raw_value(gen.fields[last], ctx)

        return get

    # ------------------------------------------------------------------ reads
    def list_records(self, version: str, entity: str, params: dict[str, str]) -> tuple[bytes, int]:
        """GET /{Entity}: (JSON array body, number of records)."""
        edef = self._entity(version, entity)
        if edef.inquiry:
            raise api_error(
                f"The inquiry entity '{entity}' can be requested only with the PUT method.",
                "PX.Api.ContractBased.NotSupportedException",
            )
        skip = _int_option(params, "$skip")
        top = _int_option(params, "$top")
        sel, ast, _fields, sig = self._compile(version, edef, params, listing=True)
        t = self._table(entity)
        residual: list[filters.Node] = []
        with self.lock:
            n = t.n
            if ast is None:
                cand = t.live_page(skip, top)
            else:
                mask = t.live[:n].copy()
                bounds, residual = filters.split_change_ranges(ast, set(edef.change))
                if bounds:
                    # fast path: a vectorised mask over the change stamps (µs vs µs)
                    stamps = t.changed[:n] * 1000
                    for op, us in bounds:
                        mask &= _OPS[op](stamps, us)
                cand = np.flatnonzero(mask)
                if not residual:
                    cand = cand[skip:] if top is None else cand[skip : skip + top]
            revs = t.rev[cand].tolist()
            chg = t.changed[cand].tolist()
            crt = t.created[cand].tolist()
        idxs = cand.tolist()
        rows = zip(idxs, revs, chg, crt, strict=True)
        if residual:
            rows = self._residual(t, edef, rows, residual, skip, top)
        rendered = self._render_rows(t, edef, version, sel, sig, list(rows))
        return self._page(rendered), len(rendered)

    def _residual(
        self,
        t: Table,
        edef: EntityDef,
        rows: Iterator[tuple[int, int, int, int]],
        residual: list[filters.Node],
        skip: int,
        top: int | None,
    ) -> list[tuple[int, int, int, int]]:
        out = []
        seen = 0
        for row in rows:
            get = self._getter(edef, self._ctx(t, *row))
            if all(filters.evaluate(node, get) for node in residual):
                seen += 1
                if seen > skip:
                    out.append(row)
                    if top is not None and len(out) >= top:
                        break
        return out

    def get_record(
        self, version: str, entity: str, key_path: list[str], params: dict[str, str]
    ) -> bytes:
        """GET /{Entity}/{keys…} or /{Entity}/{id}; a missing record → §9 500."""
        edef = self._entity(version, entity)
        if edef.inquiry:
            raise not_found()
        sel, _ast, _fields, sig = self._compile(version, edef, params, listing=False)
        if "$filter" in params and params["$filter"].strip():
            filters.parse(params["$filter"], self._resolver(version, edef), self.clock)
        t = self._table(entity)
        parts = [p for seg in key_path for p in seg.split("|")]  # api.md §1: '|' may replace '/'
        with self.lock:
            idx = t.find_guid(parts[0]) if len(parts) == 1 else None
            if idx is None:
                idx = t.find_keys(parts)
            if idx is None or not t.live[idx]:
                raise not_found()
            row = (idx, int(t.rev[idx]), int(t.changed[idx]), int(t.created[idx]))
        ((head, tail),) = self._render_rows(t, edef, version, sel, sig, [row])
        return head + b"1" + tail

    def adhoc_schema(self, version: str, entity: str) -> bytes:
        """$adHocSchema: a template listing every custom field with value null (api.md §5)."""
        edef = self._entity(version, entity)
        return _ENC.encode(self._template(edef, version, top=True))

    def _template(self, sch: Any, version: str, *, top: bool) -> dict[str, Any]:
        d: dict[str, Any] = {"id": _fake_guid(self.seed, sch.name), "rowNumber": 1, "note": None}
        members: dict[str, Any] = {key: {} for key in sch.field_map(version)}
        for m, tname in sch.details.items():
            members[m] = [self._template(schema(tname), version, top=False)]
        for m, tname in sch.linked.items():
            members[m] = self._template(schema(tname), version, top=False)
        for name in sorted(members, key=str.lower):
            d[name] = members[name]
        custom: dict[str, Any] = {}
        for view, flds in sch.custom.items():
            for fname, ctype in flds.items():
                custom.setdefault(view, {})[fname] = {"type": f"Custom{ctype}Field", "value": None}
        d["custom"] = custom
        if top:
            base = f"{self.site_path}/entity/Default/{version}"
            d["_links"] = {
                "self": f"{base}/{sch.name}/{d['id']}",
                "files:put": f"{base}/files/{sch.graph}/{sch.view}/{d['id']}/{{filename}}",
            }
            d["_workflowActions"] = []
        return d

    def swagger(self, version: str, server_url: str) -> bytes:
        from .swagger import build_document  # noqa: PLC0415

        self._version(version)
        return _ENC.encode(build_document(version, server_url))


_OPS = {
    "gt": np.greater,
    "ge": np.greater_equal,
    "lt": np.less,
    "le": np.less_equal,
    "eq": np.equal,
}


def _int_option(params: dict[str, str], name: str) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        return 0 if name == "$skip" else None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise odata_error(
            f"Invalid value '{raw}' for {name} query option found. The {name} query option "
            "requires a non-negative integer value."
        )
    return value


def _fake_guid(seed: int, name: str) -> str:
    from .render import fmt_guid, str_hash  # noqa: PLC0415

    h = str_hash(f"{seed}:{name}:template")
    return fmt_guid((h << 64) | (h ^ 0x5DEECE66D))
