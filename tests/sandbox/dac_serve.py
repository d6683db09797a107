"""DAC OData answers (api.md §8, §10): rows with query options, and ``px.GetDeletedRecords()``.

``GET {root}/{DAC}`` takes ``$filter`` (OData v4: bare date-time literals with ``Z`` or an
offset, rounded to SQL Server ticks like the REST filter, api.md §3 "Precision"), ``$orderby``
(several columns, asc/desc; without it rows come in key order, api.md §8), ``$top``, ``$skip``,
``$select`` and ``$expand`` of navigation properties (one level). Values: DateTimeOffset in UTC
with ``Z`` and trailing fractional zeros dropped, as ODataLib writes a ``DateTimeOffset`` with
offset zero (UNVERIFIED for Acumatica); Decimal as JSON numbers; CHAR keys padded.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tests.sandbox.dac_defs import DACS, DacCol, DacDef
from tests.sandbox.odata_query import Column, ODataError, Query
from tests.sandbox.render import from_ms, to_us
from tests.sandbox.stamps import literal_us

if TYPE_CHECKING:
    from tests.sandbox.dac_rows import Built, DacStore
    from tests.sandbox.render import TenantClock

DELETED_COLUMNS = {
    "RefNoteID": Column("RefNoteID", "RefNoteID", "Guid"),
    "DeleteDate": Column("DeleteDate", "DeleteDate", "DateTimeOffset"),
}


def columns(dac: DacDef) -> dict[str, Column]:
    return {c.name: Column(c.name, c.name, c.type, c.pad) for c in dac.cols}


def tick_literal(clock: TenantClock) -> Any:
    """Date-time literals as the comparison reads them: offset honoured, SQL ticks (§3)."""

    def adjust(value: dt.datetime) -> dt.datetime:
        us = literal_us(clock, value)
        return from_ms(0) + dt.timedelta(microseconds=us)

    return adjust


def rows_body(store: DacStore, dac: DacDef, params: dict[str, str], root: str) -> dict[str, Any]:
    """The answer to ``GET {root}/{DAC}?…``."""
    cols = columns(dac)
    clock = store.ds.clock
    query = Query(params, cols, dt.timezone.utc, expand=True, literal=tick_literal(clock))
    navs = {n.name: n for n in dac.navs}
    for name in query.expand:
        if name not in navs:
            raise ODataError(
                400, f"Could not find a property named '{name}' on type 'Default.{dac.full}'."
            )
    built = store.built(dac)
    out = query.run(built.rows)
    fmt = {c.name: c for c in dac.cols}
    value = []
    for row in out:
        item = {k: _out(row[k], fmt[k]) for k in query.select}
        for name in query.expand:
            item[name] = _expanded(store, dac, navs[name], row)
        value.append(item)
    select = ",".join(query.select) if params.get("$select") else ""
    context = f"{root}/$metadata#{dac.full}" + (f"({select})" if select else "")
    return {"@odata.context": context, "value": value}


def _expanded(store: DacStore, dac: DacDef, nav: Any, row: dict[str, Any]) -> Any:
    target = DACS[nav.target]
    si, owner = row["_o"]
    mine = dac.sources[si]
    got: list[dict[str, Any]] = []
    built: Built = store.built(target)
    for src, tsrc in nav.links:
        if src == mine:
            tsi = target.sources.index(tsrc)
            got = built.by_owner.get((tsi, owner), [])
    items = [{c.name: _out(r[c.name], c) for c in target.cols} for r in got]
    return items if nav.many else (items[0] if items else None)


def _out(value: Any, col: DacCol) -> Any:
    if value is None:
        return None
    if col.type in ("DateTimeOffset", "Date"):
        return odata_z(value)
    if col.pad and isinstance(value, str):
        return value.ljust(col.pad)
    return value


def odata_z(value: dt.datetime) -> str:
    """ODataLib's DateTimeOffset text at offset zero: ``2024-07-15T10:00:00.85Z``."""
    text = value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{value.microsecond:06d}".rstrip("0")
    return f"{text}.{frac}Z" if frac else f"{text}Z"


def deleted_body(
    store: DacStore, dac: DacDef, cutoff: dt.datetime, params: dict[str, str], root: str
) -> dict[str, Any]:
    """api.md §10: RefNoteID + DeleteDate of the rows deleted within "Days to Keep Records"."""
    # DeleteDate is a datetime column too: literals on SQL ticks (api.md §3 "Precision")
    query = Query(params, DELETED_COLUMNS, dt.timezone.utc, literal=tick_literal(store.ds.clock))
    low = to_us(cutoff) // 1000
    items = store.built(dac).deleted
    rows = ({"RefNoteID": g, "DeleteDate": from_ms(ms)} for g, ms in items if ms >= low)
    value = [
        {k: (_z3(row[k]) if isinstance(row[k], dt.datetime) else row[k]) for k in query.select}
        for row in query.run(rows)
    ]
    context = f"{root}/$metadata#Collection(PX.Api.ODataV4.DeletedRecord)"
    return {"@odata.context": context, "value": value}


def _z3(value: dt.datetime) -> str:
    text = value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def untracked_message(dac: DacDef) -> str:
    """ODataLib's text for a segment that cannot follow a collection (the function is not bound
    on a DAC missing from SM207010). Status and text on Acumatica: UNVERIFIED."""
    return (
        f"The request URI is not valid. Since the segment '{dac.full}' refers to a collection, "
        "this must be the last segment in the request URI or it must be followed by an function "
        "or action that can be bound to it otherwise all intermediate segments must refer to a "
        "single resource."
    )
