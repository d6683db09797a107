"""Ground truth, OData feeds and change simulation of the Dataset (a mixin of data.Dataset)."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .entities import ENTITIES, VERSIONS
from .errors import ApiError
from .fastpage import Cols, PageRenderer
from .render import TenantClock, from_ms, to_ms, utc_z

if TYPE_CHECKING:
    from .records import Ctx, Generators
    from .table import Table


class Changes:
    """Mutations and read-outs of the record state (see CONTRACTS.md "Dataset interface")."""

    tables: dict[str, Table]
    lock: threading.RLock
    now: Callable[[], dt.datetime]
    gens: Generators
    clock: TenantClock
    _mut_rng: random.Random

    def _table(self, entity: str) -> Table:
        raise NotImplementedError

    def _ctx(self, t: Table, idx: int, rev: int, changed: int, created: int) -> Ctx:
        raise NotImplementedError

    def _cols(self, t: Table, rows: list[tuple[int, int, int, int]]) -> Cols:
        raise NotImplementedError

    # ------------------------------------------------------------------ ground truth, OData feeds
    def ground_truth(self, entity: str) -> dict[str, Any]:
        edef = ENTITIES.get(entity)
        t = self._table(entity)
        has_change = bool(edef and edef.change)
        with self.lock:
            n = t.n
            live = np.flatnonzero(t.live[:n]).tolist()
            stamps = t.changed[live].tolist()
            dead = np.flatnonzero(~t.live[:n]).tolist()
            dstamps = t.deleted_at[dead].tolist()
        return {
            "live": [
                {"id": t.guid(i), "changed": utc_z(s) if has_change else None}
                for i, s in zip(live, stamps, strict=True)
            ],
            "deleted": [
                {"id": t.guid(i), "deleted": utc_z(s)} for i, s in zip(dead, dstamps, strict=True)
            ],
        }

    def rows(self, entity: str) -> Iterator[dict[str, Any]]:
        """Live records as flat unwrapped values (24.200.001 fields), key order, for OData GIs.

        Date-times are aware datetimes in the tenant zone; "id" is the NoteID.
        """
        edef = ENTITIES[entity]
        t = self._table(entity)
        top = self.gens.top(edef)
        fmap = edef.field_map(VERSIONS[-1])
        with self.lock:
            n = t.n
            live = np.flatnonzero(t.live[:n])
            rows = list(
                zip(
                    live.tolist(),
                    t.rev[live].tolist(),
                    t.changed[live].tolist(),
                    t.created[live].tolist(),
                    strict=True,
                )
            )
        names = list(fmap)
        dt_cols = [i for i, name in enumerate(names) if fmap[name].type == "DT"]
        renderer = PageRenderer(self.gens, "")
        tz = self.clock.tz
        seen: dict[int, dt.datetime] = {}  # date-only values repeat a lot

        def local(ms: int) -> dt.datetime:
            got = seen.get(ms)
            if got is None:
                got = dt.datetime.fromtimestamp(ms // 1000, tz).replace(
                    microsecond=ms % 1000 * 1000
                )
                if len(seen) < 100_000:
                    seen[ms] = got
            return got

        for start in range(0, len(rows), 2048):
            cols = self._cols(t, rows[start : start + 2048])
            values = renderer.raw_columns(top, names, cols)
            for i in dt_cols:
                values[i] = [None if v is None else local(v) for v in values[i]]
            for guid, row in zip(cols.guids, zip(*values, strict=True), strict=True):
                out: dict[str, Any] = {"id": guid.decode()}
                out.update(zip(names, row, strict=True))
                yield out

    def deleted(self, entity: str) -> list[tuple[str, dt.datetime]]:
        t = self.tables.get(entity)
        if t is None:
            return []
        with self.lock:
            dead = np.flatnonzero(~t.live[: t.n]).tolist()
            stamps = t.deleted_at[dead].tolist()
        return [(t.guid(i), from_ms(s)) for i, s in zip(dead, stamps, strict=True)]

    def entity_of_dac(self, dac: str) -> str | None:
        short = dac.rsplit("_", 1)[-1] if dac.startswith("PX_") else dac.rsplit(".", 1)[-1]
        for name, edef in ENTITIES.items():
            if short in edef.dacs or short == name:
                return name
        return None

    # ------------------------------------------------------------------ mutations
    def mutate(self, request: dict[str, Any]) -> dict[str, Any]:
        """Insert / update / delete "now" (or at request["at"]); returns ids and stamps."""
        entity = request.get("entity", "")
        op = request.get("op")
        t = self.tables.get(entity)
        if t is None or op not in {"insert", "update", "delete"}:
            raise ApiError(400, {"message": f"Bad mutation request: {request!r}"})
        try:
            stamp = to_ms(_parse_at(request["at"]) if request.get("at") else self.now())
            count = int(request.get("count", len(request.get("ids") or []) or 1))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, {"message": f"Bad mutation request: {exc}"}) from None
        with self.lock:
            if request.get("ids") and op != "insert":
                idxs = []
                for rid in request["ids"]:
                    idx = t.find_guid(str(rid))
                    if idx is None or not t.live[idx]:
                        raise ApiError(400, {"message": f"No live {entity} record with id {rid}"})
                    idxs.append(idx)
            else:
                idxs = self._choose(t, op, count)
            done = []
            for idx in idxs:
                if op == "insert":
                    done.append(t.insert(stamp))
                elif op == "update":
                    t.update(idx, max(stamp, int(t.created[idx])))
                    done.append(idx)
                else:
                    t.delete(idx, stamp)
                    done.append(idx)
            stamps = (t.deleted_at if op == "delete" else t.changed)[done].tolist()
        return {"ids": [t.guid(i) for i in done], "changed": [utc_z(s) for s in stamps]}

    def _choose(self, t: Table, op: str, count: int) -> list[int]:
        if op == "insert":
            return [0] * count
        live = np.flatnonzero(t.live[: t.n])
        count = min(count, len(live))
        pick = self._mut_rng.sample(range(len(live)), count)
        return sorted(int(live[i]) for i in pick)

    def random_mutations(self, rng: random.Random, n: int) -> None:
        """--writers: n random inserts/updates/deletes stamped now() across tracked entities."""
        names = [name for name, e in ENTITIES.items() if e.change and name in self.tables]
        weights = [5 if name in {"SalesOrder", "Customer", "StockItem"} else 1 for name in names]
        for _ in range(n):
            entity = rng.choices(names, weights)[0]
            op = rng.choices(["insert", "update", "delete"], [4, 5, 1])[0]
            t = self.tables[entity]
            stamp = to_ms(self.now())
            with self.lock:
                if op == "insert":
                    t.insert(stamp)
                    continue
                for _try in range(20):
                    idx = rng.randrange(t.n)
                    if t.live[idx]:
                        if op == "update":
                            t.update(idx, max(stamp, int(t.created[idx])))
                        else:
                            t.delete(idx, stamp)
                        break


def _parse_at(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value
