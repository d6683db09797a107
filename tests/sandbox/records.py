"""Deterministic record generation: raw values per (seed, entity, index, revision) and §3 shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from . import pools
from .entities import EntityDef, Schema, schema
from .render import GOLDEN, M64, TenantClock, fmt_guid, mix64, pick, str_hash

_ENC = msgspec.json.Encoder()
NOTE_MULT = 0x5851F42D4C957F2D
EMPTY_DATE_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z: Acumatica's "no date" in a few fields
MISSING: dict[str, Any] = {}  # api.md §3: an empty field is {} (never {"value": null})


@dataclass
class Ctx:
    """What a record's values derive from."""

    idx: int
    h: int  # base hash of the record
    hm: int  # hash for mutable fields (changes with every update)
    changed: int  # UTC ms
    created: int  # UTC ms
    guid: str
    keys: tuple[Any, ...]


@dataclass
class FieldGen:
    name: str
    type: str
    kind: str
    mult: int
    mutable: bool = False
    raw: list[Any] = field(default_factory=list)
    wrapped: list[dict[str, Any]] = field(default_factory=list)
    arg: Any = None
    prefix: bytes = b""  # b',"Name":' — the member's JSON key, comma first
    pool_bytes: list[bytes] = field(default_factory=list)  # prefix + encoded wrapped value
    pool_arr: Any = None  # pool_bytes as a numpy object array (fastpage gathers from it)


def _wrap(v: Any) -> dict[str, Any]:
    return MISSING if v is None else {"value": v}


class SchemaGen:
    """Generates the fields, details and linked entities of one schema."""

    def __init__(self, gens: Generators, sch: Schema, top: EntityDef | None) -> None:
        self.g = gens
        self.schema = sch
        self.top = top
        self.fields: dict[str, FieldGen] = {}
        for f in sch.fields:
            fg = self._field(f.name, f.type)
            fg.prefix = b',"' + f.name.encode() + b'":'
            fg.pool_bytes = [fg.prefix + _ENC.encode(w) for w in fg.wrapped]
            self.fields[f.name] = fg
        self.custom: dict[tuple[str, str], FieldGen] = {}
        for view, flds in sch.custom.items():
            for fname, ctype in flds.items():
                self.custom[(view, fname)] = self._custom(view, fname, ctype)
        self.salts = {m: str_hash(sch.name + "/" + m) for m in (*sch.details, *sch.linked)}

    def custom_gen(self, view: str, fname: str) -> FieldGen | None:
        got = self.custom.get((view, fname))
        if got is None and view in self.schema.custom and fname.startswith("Attribute"):
            # api.md §4: user-defined attributes are addressed as <View>.Attribute<ID>
            got = self._custom(view, fname, "String")
            self.custom[(view, fname)] = got
        return got

    def _custom(self, view: str, fname: str, ctype: str) -> FieldGen:
        raw = pools.CUSTOM_POOLS[ctype]
        return FieldGen(fname, ctype, "pool", str_hash(view + "." + fname) | 1, raw=raw)

    def _field(self, name: str, typ: str) -> FieldGen:
        # City/State/Country/PostalCode pick the same row of the (equal-length) city pools
        salt = "City" if name in {"City", "State", "Country", "PostalCode"} else name
        mult = str_hash(self.schema.name + "." + salt) | 1
        top = self.top
        mutable = top is not None and name in top.mutable
        if top is not None:
            if name in top.keys:
                return FieldGen(name, typ, "key", mult, arg=top.keys.index(name))
            if name in top.change:
                return FieldGen(name, typ, "changed", mult)
            if name in top.created:
                # examples INDEX: an "empty" SalesOrder.CreatedDate shows as 1900-01-01 (UTC)
                quirk = top.name == "SalesOrder" and name == "CreatedDate"
                return FieldGen(name, typ, "created", mult, arg=quirk)
            if name == "NoteID":
                return FieldGen(name, typ, "guid", mult)
            base = {"BAccountID": 7000, "AccountID": 1000, "SubaccountID": 500}.get(name)
            if base is not None:
                return FieldGen(name, typ, "idx", mult, arg=base)
        else:
            if name == "LineNbr":
                return FieldGen(name, typ, "line", mult)
            if name == "NoteID":
                return FieldGen(name, typ, "guid", mult)
            if name == "LastModifiedDateTime":
                return FieldGen(name, typ, "changed", mult)
        if typ == "DT":
            return FieldGen(name, typ, "date", mult, mutable)
        ref = self._ref(name)
        if ref is not None:
            return FieldGen(name, typ, "ref", mult, mutable, arg=ref)
        raw = self._pool(name, typ)
        return FieldGen(name, typ, "pool", mult, mutable, raw, [_wrap(v) for v in raw])

    def _ref(self, name: str) -> str | None:
        own = self.top.name if self.top else ""
        if name in {"CustomerID", "Customer"} and own != "Customer":
            return "Customer"
        if name in {"VendorID", "Vendor"} and own != "Vendor":
            return "Vendor"
        if name == "InventoryID" and own not in {"StockItem", "NonStockItem"}:
            return "StockItem"
        return None

    def _pool(self, name: str, typ: str) -> list[Any]:
        owner = self.top.name if self.top else self.schema.name
        if name in self.schema.pools:
            return list(self.schema.pools[name])
        seed = self.g.seed
        if typ == "Bool":
            return [False, False, False, True, True]
        if typ == "Dec":
            return pools.amounts(seed + str_hash(name) % 97)
        if typ in {"Int", "Short", "Long", "Dbl", "Byte"}:
            return [0, 1, 2, 3, 5, 8, 10, 12, 30, 100]
        if typ == "Guid":
            return pools.guid_pool(seed + str_hash(name) % 89, 32)
        return pools.string_pool(name, owner)

    # ----------------------------------------------------------------- values
    def raw_value(self, fg: FieldGen, c: Ctx, line: int = 0) -> Any:
        kind = fg.kind
        if kind == "pool":
            return fg.raw[pick(c.hm if fg.mutable else c.h, fg.mult, len(fg.raw))]
        if kind in {"key"}:
            return c.keys[fg.arg]
        if kind == "changed":
            return c.changed
        if kind == "created":
            return EMPTY_DATE_MS if fg.arg and pick(c.h, fg.mult, 20) == 0 else c.created
        if kind == "date":
            h = c.hm if fg.mutable else c.h
            return self.g.clock.midnight_ms(c.created // 86_400_000 + pick(h, fg.mult, 40) - 3)
        if kind == "guid":
            return c.guid
        if kind == "idx":
            return fg.arg + c.idx
        if kind == "line":
            return line + 1
        if kind == "ref":
            return self.g.ref_key(fg.arg, pick(c.h, fg.mult, 1 << 30))
        raise AssertionError(kind)

    def wrapped_value(self, fg: FieldGen, c: Ctx, line: int = 0) -> dict[str, Any]:
        if fg.kind == "pool":
            return fg.wrapped[pick(c.hm if fg.mutable else c.h, fg.mult, len(fg.wrapped))]
        v = self.raw_value(fg, c, line)
        if v is None:
            return MISSING
        if fg.type == "DT":
            return {"value": self.g.clock.fmt(v)}
        return {"value": v}

    def sub_ctx(self, c: Ctx, member: str, line: int) -> Ctx:
        h = mix64(c.h ^ self.salts[member] ^ (line * GOLDEN))
        hm = h if c.hm == c.h else mix64(c.hm ^ self.salts[member] ^ (line * GOLDEN))
        return Ctx(c.idx, h, hm, c.changed, c.created, fmt_guid((h << 64) | mix64(h)), c.keys)

    def line_count(self, c: Ctx, member: str) -> int:
        # from the base hash: an update never adds or removes lines (a DAC's SOLine rows keep
        # their identity, dac_rows.py; api.md §3 "Stamps are per table")
        lo, hi = schema(self.schema.details[member]).lines
        return lo + pick(c.h, self.salts[member] | 1, hi - lo + 1)


class Generators:
    """All schema generators of a dataset (one per schema and owning top-level entity)."""

    def __init__(
        self,
        seed: int,
        clock: TenantClock,
        ref_key: Callable[[str, int], Any],
        ref_count: Callable[[str], int],
    ) -> None:
        self.seed = seed
        self.clock = clock
        self._ref_key = ref_key
        self.ref_count = ref_count  # ref_key(e, r) == ref_key(e, r % ref_count(e))
        self.fragments: dict[Any, bytes] = {}  # fastpage's cache of pre-encoded fragments
        self._gens: dict[tuple[str, str | None], SchemaGen] = {}
        self.notes = pools.notes(seed)
        self.note_wrapped = [{"value": n} for n in self.notes]
        self.note_bytes = [_ENC.encode(w) for w in self.note_wrapped]

    def ref_key(self, entity: str, r: int) -> Any:
        return self._ref_key(entity, r)

    def top(self, edef: EntityDef) -> SchemaGen:
        key = (edef.name, edef.name)
        got = self._gens.get(key)
        if got is None:
            got = self._gens[key] = SchemaGen(self, edef, edef)
        return got

    def sub(self, name: str) -> SchemaGen:
        key = (name, None)
        got = self._gens.get(key)
        if got is None:
            got = self._gens[key] = SchemaGen(self, schema(name), None)
        return got

    def note(self, c: Ctx) -> dict[str, Any]:
        # Most notes are empty; some are Unicode; a few are > 2 KB (issue 2, Data).
        return self.note_wrapped[pick(c.hm, NOTE_MULT, len(self.notes))]


def record_hash(seed: int, eno: int, idx: int) -> int:
    return mix64((seed * GOLDEN) ^ (eno << 52) ^ mix64(idx + 1))


def rev_hash(h: int, rev: int) -> int:
    return h if rev == 0 else mix64(h ^ ((rev * 0xD1B54A32D192ED03) & M64))
