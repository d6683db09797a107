"""OData v4 (api.md §8, §10): routing, Generic Inquiries, and the DAC service (odata_dac.py).

``/t/{tenant}/api/odata/gi`` (service document), ``.../gi/$metadata`` (CSDL XML),
``.../gi/{GI}`` with ``$filter $orderby $top $skip $select`` (odata_query.py), and
``/t/{tenant}/api/odata/dac`` (service document, ``$metadata``,
``{DAC}/px.GetDeletedRecords()``). Bearer or basic auth.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from tests.sandbox import Reply, json_reply, odata_dac
from tests.sandbox.auth import TENANT
from tests.sandbox.odata_dac import tracked_dacs
from tests.sandbox.odata_query import (
    Column,
    ODataError,
    Query,
    csdl,
    entity_type,
    service_document,
)

if TYPE_CHECKING:
    from tests.sandbox.server import Handler

ODATA_JSON = "application/json; odata.metadata=minimal; charset=utf-8"
ODATA_HEADERS = [("OData-Version", "4.0")]


@dataclass(frozen=True)
class Inquiry:
    name: str  # URL / entity-set name
    title: str  # display name (also accepted in the URL)
    entity: str  # Dataset entity the rows come from
    keys: tuple[str, ...]
    columns: tuple[Column, ...]


INQUIRIES = {
    gi.name: gi
    for gi in (
        Inquiry(
            "ModifiedStockItems",
            "Modified Stock Items",
            "StockItem",
            ("InventoryID",),
            (
                Column("InventoryID", "InventoryID", "String", 10),
                Column("Description", "Description", "String"),
                Column("ItemStatus", "ItemStatus", "String"),
                Column("ItemClass", "ItemClass", "String", 10),
                Column("BaseUnit", "BaseUOM", "String"),
                Column("DefaultPrice", "DefaultPrice", "Decimal"),
                Column("LastModifiedOn", "LastModifiedDateTime", "DateTime"),
            ),
        ),
        Inquiry(
            "SalesOrders",
            "Sales Orders",
            "SalesOrder",
            ("OrderType", "OrderNbr"),
            (
                Column("OrderType", "OrderType", "String"),
                Column("OrderNbr", "OrderNbr", "String", 15),
                Column("CustomerID", "CustomerID", "String", 10),
                Column("Status", "Status", "String"),
                Column("Date", "Date", "DateTime"),
                Column("OrderTotal", "OrderTotal", "Decimal"),
                Column("OrderedQty", "OrderedQty", "Decimal"),
                Column("LastModifiedOn", "LastModified", "DateTime"),
            ),
        ),
        Inquiry(
            "CustomerList",
            "Customer List",
            "Customer",
            ("CustomerID",),
            (
                Column("CustomerID", "CustomerID", "String", 10),
                Column("CustomerName", "CustomerName", "String"),
                Column("Status", "Status", "String"),
                Column("Email", "Email", "String"),
                Column("CreditLimit", "CreditLimit", "Decimal"),
                Column("BAccountID", "BAccountID", "Int"),
                Column("LastModifiedOn", "LastModifiedDateTime", "DateTime"),
            ),
        ),
    )
}


def odata_error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    return json_reply(status, {"error": {"code": "", "message": message}}, headers)


# ---------------------------------------------------------------- routing


def route_odata(handler: Handler, method: str, tenant: str, segs: list[str]) -> Reply:
    app = handler.server.app
    if tenant.lower() != TENANT.lower():
        return odata_error(404, f"Tenant '{tenant}' was not found.")
    # api.md §8: basic auth (conventional user, no API seat) or an OAuth bearer.
    denied = handler.authenticate(allow_basic=True)
    if denied is not None:
        if denied.status == 401:
            denied.headers.append(("WWW-Authenticate", 'Basic realm="Acumatica"'))
        return denied
    if method != "GET":
        return odata_error(405, "The OData service is read-only.")
    base = f"{app.base_url}/t/{tenant}/api/odata"
    kind, rest = (segs[0].lower(), segs[1:]) if segs else ("", [])
    if kind == "gi":
        if not rest:
            return _reply(200, service_document(f"{base}/gi", list(INQUIRIES)))
        if rest == ["$metadata"]:
            return _xml(metadata_xml())
        gi = _find_inquiry(rest[0])
        if gi is None or len(rest) > 1:
            return odata_error(404, f"Resource not found for the segment '{rest[0]}'.")
        app.stats.query(handler.stat_path, handler.params)
        return handler.limited(lambda: _guard(lambda: gi_data(handler, gi, base)), entity=gi.entity)
    if kind == "dac":
        return route_dac(handler, rest, base)
    return odata_error(404, "Resource not found.")


def route_dac(handler: Handler, rest: list[str], base: str) -> Reply:
    """The DAC service: service document, ``$metadata`` and ``px.GetDeletedRecords()`` (§10)."""
    app = handler.server.app
    if not rest:
        return _reply(200, service_document(f"{base}/dac", [n for n, _d, _e in tracked_dacs()]))
    if rest == ["$metadata"]:
        return _xml(odata_dac.metadata_xml())
    if len(rest) != 2 or rest[1].lower() != "px.getdeletedrecords()":
        # DAC rows are not served; only the deleted-records function of tracked DACs
        return odata_error(404, f"Resource not found for the segment '{rest[-1]}'.")
    entity = app.dataset.entity_of_dac(rest[0])
    if entity is None:
        return odata_error(404, f"Resource not found for the segment '{rest[0]}'.")
    app.stats.query(handler.stat_path, handler.params)
    cutoff = app.clock.now() - dt.timedelta(days=app.opt.deleted_keep_days)

    def work() -> Reply:
        body = odata_dac.deleted_records(app.dataset, cutoff, entity, handler.params, base)
        return _reply(200, body, len(body["value"]))

    return handler.limited(lambda: _guard(work), entity=entity)


def _guard(work: Callable[[], Reply]) -> Reply:
    try:
        return work()
    except ODataError as err:
        return odata_error(err.status, err.message, ODATA_HEADERS)


def _xml(text: str) -> Reply:
    return Reply(200, text.encode(), "application/xml; charset=utf-8", list(ODATA_HEADERS))


def _reply(status: int, obj: Any, records: int = 0) -> Reply:
    reply = json_reply(status, obj, list(ODATA_HEADERS))
    reply.content_type = ODATA_JSON
    reply.records = records
    return reply


def _find_inquiry(name: str) -> Inquiry | None:
    for gi in INQUIRIES.values():
        if name in (gi.name, gi.title):
            return gi
    return None


def metadata_xml() -> str:
    """CSDL of the Generic Inquiries: one EntityType and EntitySet each (api.md §8)."""
    types = "".join(entity_type(gi.name, gi.keys, gi.columns) for gi in INQUIRIES.values())
    sets = "".join(
        f"<EntitySet Name={quoteattr(gi.name)} EntityType={quoteattr('Default.' + gi.name)}/>"
        for gi in INQUIRIES.values()
    )
    return csdl(
        '<Schema Namespace="Default" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f'{types}<EntityContainer Name="Default">{sets}</EntityContainer></Schema>'
    )


# ---------------------------------------------------------------- data


def gi_data(handler: Handler, gi: Inquiry, base: str) -> Reply:
    app = handler.server.app
    tz = ZoneInfo(app.opt.tz)
    cols = {c.name: c for c in gi.columns}
    query = Query(handler.params, cols, tz)

    def rows() -> Iterator[dict[str, Any]]:
        for raw in app.dataset.rows(gi.entity):
            yield {c.name: _local(raw.get(c.source), c, tz) for c in gi.columns}

    out = query.run(rows())
    value = [{k: _gi_out(row[k], cols[k]) for k in query.select} for row in out]
    context = f"{base}/gi/$metadata#{gi.name}"
    return _reply(200, {"@odata.context": context, "value": value}, len(value))


def _local(value: Any, col: Column, tz: dt.tzinfo) -> Any:
    """GI values: tenant-local date-times WITHOUT offset (api.md §8 examples)."""
    if isinstance(value, dt.datetime) and col.type == "DateTime":
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _gi_out(value: Any, col: Column) -> Any:
    if value is None:
        return None
    if col.type == "Decimal":
        return f"{Decimal(str(value)):.6f}"  # api.md §8: GI decimals as "1999.000000"
    if col.type == "DateTime":
        text = value.isoformat(timespec="milliseconds")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if col.type == "String" and col.pad and isinstance(value, str):
        return value.ljust(col.pad)
    return value
