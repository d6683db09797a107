"""Change-stamp fidelity (issue 11): SQL Server ticks, per-table stamps, literal time semantics.

Three switches, each from api.md §3 ("Stamps are per table", "Precision", "Time zones"):

* ``--stamp-precision sql``: stored stamps are SQL Server ``datetime`` values (1/300 s ticks, so
  the milliseconds end in 0, 3 or 7) and ``$filter`` date-time literals are rounded to the same
  ticks before comparing, as a ``datetime`` parameter is (api.md §3 "Precision"). A 1 ms range can
  then round to nothing: ``ge .007 and lt .008`` is ``ge tick 2 and lt tick 2``.
* ``--detail-edits on``: detail lines and linked entities (SalesOrder ``Details``, Customer
  ``MainContact``, ``MainContact/Address``, …) are edited on their own; such an edit moves only that
  row's stamp, the header's only with probability ``--detail-touches-header`` ("totals changed";
  api.md §3 "Stamps are per table", §13 "Header stamps ignore detail edits").
* ``--time-semantics local``: a literal's clock time is read as tenant-local time and its offset
  ignored (a quirky instance; api.md §3 "Time zones (unverified)").

The Dataset mixin :class:`Stamps` wraps ``mutate``, ``random_mutations`` and ``ground_truth`` of
``changes.Changes``; ``pages``/``fastpage`` ask :func:`row_edits` / :func:`apply_edits` to render
the edited rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .entities import ENTITIES, EntityDef, schema
from .errors import ApiError
from .records import rev_hash
from .render import TenantClock, from_ms, to_ms, to_us, utc_z

if TYPE_CHECKING:
    from .fastpage import Cols
    from .records import Ctx, Generators
    from .table import Table

PRECISIONS = ("ms", "sql")
SEMANTICS = ("offset", "local")
DEFAULT_PRECISION = "sql"  # real instances; the tap's incremental, window and chaos tests pass
DEFAULT_DETAIL_EDITS = True
# what --writers edit besides headers: (entity, member path) -> weight
WRITER_MEMBERS = {
    ("SalesOrder", "Details"): 4,
    ("Customer", "MainContact"): 2,
    ("Customer", "MainContact/Address"): 1,
}
WRITER_DETAIL_SHARE = 0.3  # share of --writers operations that are detail edits


@dataclass
class StampOptions:
    """The four flags: stamp precision, time semantics, detail edits, detail-touches-header."""

    precision: str = "ms"
    semantics: str = "offset"
    detail_edits: bool = DEFAULT_DETAIL_EDITS
    detail_touches_header: float = 0.5


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("change stamps (issue 11, api.md §3)")
    g.add_argument(
        "--stamp-precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="ms: millisecond stamps; sql: SQL Server datetime (1/300 s, ms end in 0/3/7) stamps "
        f"and $filter literals rounded to those ticks (default {DEFAULT_PRECISION})",
    )
    g.add_argument(
        "--time-semantics",
        choices=SEMANTICS,
        default="offset",
        help="offset: a $filter literal's offset is honoured; local: its clock time is read as "
        "tenant-local time and the offset ignored (default offset)",
    )
    g.add_argument(
        "--detail-edits",
        choices=("on", "off"),
        default="on" if DEFAULT_DETAIL_EDITS else "off",
        help="--writers also edit detail lines / contacts / addresses, each with its own stamp "
        f"(default {'on' if DEFAULT_DETAIL_EDITS else 'off'})",
    )
    g.add_argument(
        "--detail-touches-header",
        type=_probability,
        default=0.5,
        metavar="P",
        help="probability that a detail edit also moves the header's stamp (default 0.5)",
    )


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        msg = f"{text} is not between 0 and 1"
        raise argparse.ArgumentTypeError(msg)
    return value


def options_from_args(ns: argparse.Namespace) -> StampOptions:
    return StampOptions(
        ns.stamp_precision, ns.time_semantics, ns.detail_edits == "on", ns.detail_touches_header
    )


# --------------------------------------------------------------------------- SQL Server ticks
def sql_ms(ms: Any) -> Any:
    """UTC ms rounded as SQL Server stores a ``datetime`` (nearest 1/300 s tick, shown as ms).

    Works on ints and int64 arrays: tick = floor(ms · 0.3 + 0.5) (SqlDateTime's rounding), shown
    as floor(tick · 10/3 + 0.5) ms: .001 → .000, .002 → .003, .005 → .007, .009 → .010.
    """
    return ((ms * 3 + 5) // 10 * 20 + 3) // 6


def sql_us(us: int) -> int:
    """A literal (UTC µs) rounded to the tick a ``datetime`` parameter gets, as UTC µs."""
    tick = (us * 3 + 5000) // 10000
    return (tick * 20 + 3) // 6 * 1000


class StampClock(TenantClock):
    """The tenant clock plus how ``$filter`` reads date-time literals (filters.Parser.instant)."""

    def __init__(self, tz: str, opts: StampOptions | None = None) -> None:
        super().__init__(tz)
        self.opts = opts or StampOptions()


def literal_us(clock: TenantClock, parsed: dt.datetime) -> int:
    """A parsed date-time literal as the UTC µs the comparison uses.

    No offset → tenant-local (api.md §3). ``local`` semantics: the offset is ignored and the clock
    time read as tenant-local. ``sql`` precision: rounded to a 1/300 s tick.
    """
    opts = clock.opts if isinstance(clock, StampClock) else StampOptions()
    if parsed.tzinfo is None or opts.semantics == "local":
        us = clock.parse_local_naive(parsed.replace(tzinfo=None).isoformat())
    else:
        us = to_us(parsed)
    return sql_us(us) if opts.precision == "sql" else us


# --------------------------------------------------------------------------- per-table stamps
@dataclass(frozen=True)
class RowEdits:
    """Edited detail/linked rows of one record: (member path, line) -> (revision, stamp ms).

    Immutable (replaced on every edit), so a page renders from a consistent snapshot.
    """

    lines: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    version: int = 0
    latest: int = 0

    def edited(self, path: str, line: int, stamp: int) -> RowEdits:
        lines = dict(self.lines)
        rev = lines.get((path, line), (0, 0))[0] + 1
        lines[(path, line)] = (rev, stamp)
        return RowEdits(lines, self.version + 1, max(self.latest, stamp))


def row_edits(state: dict[int, RowEdits] | None, rows: list[Any]) -> dict[int, RowEdits]:
    """The edits of the records being rendered (rows: (index, …)); empty when there are none."""
    if not state:
        return {}
    return {row[0]: e for row in rows if (e := state.get(row[0])) is not None}


def cache_keys(sig: int, rows: list[Any], edits: dict[int, RowEdits]) -> list[Any]:
    """Render-cache keys: the record state incl. its detail-edit version."""
    get = edits.get
    return [(sig, i, r, c, (e.version if (e := get(i)) else 0)) for i, r, c, _ in rows]


def apply_edits(sub: Cols, parent: Cols, member: str, line: np.ndarray) -> None:
    """Give the edited rows of a detail/linked level their own values and stamps (in place).

    The row keeps its id; its values come from a revised hash (like a header update), its
    ``LastModifiedDateTime`` is its own stamp. Nested members derive from the original hash, so
    editing a contact does not change its address.
    """
    edits = parent.edits
    path = f"{parent.path}/{member}" if parent.path else member
    sub.path, sub.edits = path, edits
    if not edits:
        return
    hit = np.flatnonzero(np.isin(sub.idx, np.fromiter(edits, dtype=np.int64, count=len(edits))))
    for k in hit.tolist():
        got = edits[int(sub.idx[k])].lines.get((path, int(line[k])))
        if got is None:
            continue
        if sub.kids is None:
            sub.kids = sub.h.copy()
        sub.h[k] = np.uint64(rev_hash(int(sub.h[k]), got[0]))
        sub.changed[k] = got[1]


class Stamps:
    """Dataset mixin: stamp rounding, detail edits and their ground truth (see module docstring)."""

    tables: dict[str, Table]
    lock: threading.RLock
    now: Callable[[], dt.datetime]
    gens: Generators
    clock: TenantClock
    seed: int

    def _ctx(self, t: Table, idx: int, rev: int, changed: int, created: int) -> Ctx:
        raise NotImplementedError

    def _init_stamps(self, opts: StampOptions | None) -> None:
        """Called at the end of Dataset.__init__."""
        self.stamp_opts = opts or StampOptions()
        self.detail_state: dict[str, dict[int, RowEdits]] = {}
        self._touch_rng = random.Random(self.seed * 7 + 11)  # "totals changed" draws
        self._line_rng = random.Random(self.seed * 13 + 5)  # which line an edit picks
        if self.stamp_opts.precision == "sql":
            for t in self.tables.values():
                n = t.n
                t.changed[:n] = sql_ms(t.changed[:n])
                t.created[:n] = sql_ms(t.created[:n])
                t.burst_ms = int(sql_ms(t.burst_ms))
            raw_now = self.now

            def now() -> dt.datetime:  # every stamp written from now on is a datetime tick
                return from_ms(int(sql_ms(to_ms(raw_now()))))

            self.now = now

    # ------------------------------------------------------------------ wrapped Changes methods
    def mutate(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("op") == "detail":
            return self.detail_mutate(request)
        if self.stamp_opts.precision == "sql" and request.get("at"):
            request = {**request, "at": _sql_at(str(request["at"]))}
        return super().mutate(request)  # type: ignore[misc]

    def random_mutations(self, rng: random.Random, n: int) -> None:
        if not self.stamp_opts.detail_edits:
            super().random_mutations(rng, n)  # type: ignore[misc]
            return
        members = list(WRITER_MEMBERS)
        weights = list(WRITER_MEMBERS.values())
        for _ in range(n):
            if rng.random() >= WRITER_DETAIL_SHARE:
                super().random_mutations(rng, 1)  # type: ignore[misc]
                continue
            entity, path = rng.choices(members, weights)[0]
            t = self.tables.get(entity)
            if t is None:
                continue
            stamp = to_ms(self.now())
            with self.lock:
                for _try in range(20):
                    idx = rng.randrange(t.n)
                    if t.live[idx] and self._edit(t, idx, path, None, stamp, None) is not None:
                        break

    def ground_truth(self, entity: str) -> dict[str, Any]:
        """Adds ``detail_changed``: the latest stamp of the record's header, details and links."""
        out: dict[str, Any] = super().ground_truth(entity)  # type: ignore[misc]
        edef = ENTITIES.get(entity)
        state = self.detail_state.get(entity)
        if edef is None or not (edef.details or edef.linked) or not edef.change:
            return out
        if not (self.stamp_opts.detail_edits or state):
            return out
        t = self.tables[entity]
        with self.lock:
            latest = {t.guid(i): e.latest for i, e in (state or {}).items() if t.live[i]}
        for row in out["live"]:
            got = latest.get(row["id"])
            own = row["changed"]
            row["detail_changed"] = own if got is None else max(own, utc_z(got))
        return out

    # ------------------------------------------------------------------ detail edits
    def detail_mutate(self, request: dict[str, Any]) -> dict[str, Any]:
        """``{"op": "detail", "entity", "member", "ids"|"count", "line", "at", "touch_header"}``.

        Edits one detail line or linked entity of each record; returns the ids, the member path,
        the lines, the rows' new stamps (``changed``) and the headers' (``header_changed``).
        """
        entity = str(request.get("entity", ""))
        t = self.tables.get(entity)
        path = str(request.get("member") or _default_member(entity))
        if t is None or not _member_ok(t.edef, path):
            raise ApiError(400, {"message": f"Bad detail edit: {request!r}"})
        try:
            at = request.get("at")
            stamp = to_ms(_parse(str(at)) if at else self.now())
            if self.stamp_opts.precision == "sql":
                stamp = int(sql_ms(stamp))
            line = None if request.get("line") is None else int(request["line"])
            count = int(request.get("count", len(request.get("ids") or []) or 1))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, {"message": f"Bad detail edit: {exc}"}) from None
        touch = request.get("touch_header")
        out: dict[str, Any] = {"ids": [], "member": path, "lines": [], "changed": []}
        out["header_changed"] = []
        with self.lock:
            if request.get("ids"):
                idxs = []
                for rid in request["ids"]:
                    idx = t.find_guid(str(rid))
                    if idx is None or not t.live[idx]:
                        raise ApiError(400, {"message": f"No live {entity} record with id {rid}"})
                    idxs.append(idx)
            else:  # random live records that have such a row (a detail may have no lines)
                live = np.flatnonzero(t.live[: t.n])
                pool = [int(live[self._line_rng.randrange(len(live))]) for _ in range(count * 20)]
                idxs = [i for i in pool if self._has_row(t, i, path, line)][:count]
            for idx in idxs:
                got = self._edit(t, idx, path, line, stamp, None if touch is None else bool(touch))
                if got is None:
                    raise ApiError(400, {"message": f"{entity} {t.guid(idx)} has no {path} line"})
                out["ids"].append(t.guid(idx))
                out["lines"].append(got)
                out["changed"].append(utc_z(self.detail_state[entity][idx].lines[(path, got)][1]))
                out["header_changed"].append(utc_z(int(t.changed[idx])))
        return out

    def _has_row(self, t: Table, idx: int, path: str, line: int | None) -> bool:
        first = path.partition("/")[0]
        if first not in t.edef.details:
            return True
        lines = self._lines(t, idx, first)
        return lines > 0 if line is None else 0 <= line < lines

    def _lines(self, t: Table, idx: int, member: str) -> int:
        c = self._ctx(t, idx, int(t.rev[idx]), int(t.changed[idx]), int(t.created[idx]))
        return self.gens.top(t.edef).line_count(c, member)

    def _edit(
        self, t: Table, idx: int, path: str, line: int | None, stamp: int, touch: bool | None
    ) -> int | None:
        """Edit one row (caller holds the lock); returns its line or None (no such line)."""
        stamp = max(stamp, int(t.created[idx]))
        first, _, _rest = path.partition("/")
        if first in t.edef.details:
            lines = self._lines(t, idx, first)
            if line is None and lines:
                line = self._line_rng.randrange(lines)
            if line is None or not 0 <= line < lines:
                return None
        else:
            line = 0
        state = self.detail_state.setdefault(t.edef.name, {})
        state[idx] = state.get(idx, RowEdits()).edited(path, line, stamp)
        p = self.stamp_opts.detail_touches_header
        if touch if touch is not None else self._touch_rng.random() < p:
            # "totals changed": the header row is saved too (its values stay; api.md §3)
            t.changed[idx] = max(stamp, int(t.changed[idx]))
        return line


def _default_member(entity: str) -> str:
    for ent, path in WRITER_MEMBERS:
        if ent == entity:
            return path
    edef = ENTITIES.get(entity)
    if edef is not None and (edef.details or edef.linked):
        return next(iter(edef.details or edef.linked))
    return ""


def _member_ok(edef: EntityDef, path: str) -> bool:
    """A detail member, a linked member, or a linked member of a linked member."""
    segs = path.split("/")
    if len(segs) == 1:
        return segs[0] in edef.details or segs[0] in edef.linked
    if len(segs) == 2 and segs[0] in edef.linked:
        return segs[1] in schema(edef.linked[segs[0]]).linked
    return False


def _parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _sql_at(text: str) -> str:
    return utc_z(int(sql_ms(to_ms(_parse(text)))))
