"""OData (api.md §8, §10): routing, Generic Inquiries, and the DAC service (odata_dac.py).

``/t/{tenant}/api/odata/gi`` (service document), ``.../gi/$metadata`` (CSDL XML),
``.../gi/{GI}`` with ``$filter $orderby $top $skip $select`` (odata_query.py), and
``/t/{tenant}/api/odata/dac`` (service document, ``$metadata``,
``{DAC}/px.GetDeletedRecords()``). Bearer or basic auth.

With ``--legacy-odata`` (instances before 2024 R2, api.md §8) the same services live at
``/odata/{tenant}/…`` (the GIs, in OData v3) and ``/odatav4/{tenant}/…`` (the DACs), and the
2024 R2 paths answer 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from tests.sandbox import Reply, not_found
from tests.sandbox.auth import TENANT
from tests.sandbox.gi_params import gi_functions, parse_gi_segment
from tests.sandbox.odata_dac import route_dac
from tests.sandbox.odata_query import (
    CSDL_V3_NS,
    EDM,
    EDM_V3,
    Column,
    ODataError,
    Query,
    csdl,
    csdl_v3,
    entity_type,
    service_document,
    service_document_v3,
)
from tests.sandbox.odata_reply import empty_body, odata_error
from tests.sandbox.odata_reply import guard as _guard
from tests.sandbox.odata_reply import reply as _reply
from tests.sandbox.odata_reply import reply_v3 as _reply_v3
from tests.sandbox.odata_reply import xml_reply as _xml

if TYPE_CHECKING:
    from tests.sandbox.server import Handler


@dataclass(frozen=True)
class Inquiry:
    name: str  # URL / entity-set name
    title: str  # display name (also accepted in the URL)
    entity: str  # Dataset entity the rows come from
    keys: tuple[str, ...]
    columns: tuple[Column, ...]
    parameters: tuple[str, ...] = ()  # api.md §8: <GI>_WithParameters(P='X'), gi_params.py


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
        Inquiry(  # a GI with a parameter and a formula column (api.md §8)
            "SalesOrdersByStatus",
            "Sales Orders by Status",
            "SalesOrder",
            ("OrderType", "OrderNbr"),
            (
                Column("OrderType", "OrderType", "String"),
                Column("OrderNbr", "OrderNbr", "String", 15),
                Column("Status", "Status", "String"),
                Column("OrderTotal", "OrderTotal", "Decimal"),
                Column("LastModifiedOn", "LastModified", "DateTime"),
                Column("LastActivityOn", "LastModified", "DateTime", formula=True),
            ),
            ("Status",),
        ),
    )
}


# ---------------------------------------------------------------- routing


@dataclass(frozen=True)
class Service:
    """One OData service of the instance: GI or DAC, where it lives, which protocol version."""

    kind: str  # "gi" | "dac"
    root: str  # absolute URL of the service root (service document)
    v3: bool = False  # api.md §8: the legacy GI service speaks OData v3


def route_odata_paths(handler: Handler, method: str, segs: list[str]) -> Reply:
    """``/t/{tenant}/api/odata/{gi|dac}/…`` (2024 R2 on) or, with ``--legacy-odata``,
    ``/odata/{tenant}/…`` (GI, OData v3) and ``/odatav4/{tenant}/…`` (DAC), api.md §8.

    An instance has one set or the other: the paths of the other generation answer 404.
    """
    app = handler.server.app
    legacy = app.opt.legacy_odata
    head = segs[0].lower()
    if head == "t" and not legacy and [s.lower() for s in segs[2:4]] == ["api", "odata"]:
        kind = segs[4].lower() if len(segs) > 4 else ""
        root = f"{app.base_url}/t/{segs[1]}/api/odata/{kind}"
        return _serve(handler, method, segs[1], Service(kind, root), segs[5:])
    if head in ("odata", "odatav4") and legacy and len(segs) >= 2:
        root = f"{app.base_url}/{head}/{segs[1]}"
        kind = "gi" if head == "odata" else "dac"
        return _serve(handler, method, segs[1], Service(kind, root, kind == "gi"), segs[2:])
    return not_found(handler.stat_path)


def _serve(handler: Handler, method: str, tenant: str, svc: Service, rest: list[str]) -> Reply:
    if tenant.lower() != TENANT.lower():
        return odata_error(404, f"Tenant '{tenant}' was not found.", v3=svc.v3)
    # api.md §8: basic auth (conventional user, no API seat) or an OAuth bearer.
    denied = handler.authenticate(allow_basic=True)
    if denied is not None:
        if denied.status == 401:
            denied.headers.append(("WWW-Authenticate", 'Basic realm="Acumatica"'))
        return denied
    if method != "GET":
        return odata_error(405, "The OData service is read-only.", v3=svc.v3)
    if svc.kind == "dac":
        return route_dac(handler, rest, svc.root)
    if svc.kind == "gi":
        return route_gi(handler, rest, svc)
    return odata_error(404, "Resource not found.")


def route_gi(handler: Handler, rest: list[str], svc: Service) -> Reply:
    """Generic Inquiries: service document, ``$metadata`` and inquiry rows (api.md §8)."""
    if not rest:
        if svc.v3:
            return _reply_v3(200, service_document_v3(svc.root, list(INQUIRIES)))
        return _reply(200, service_document(svc.root, list(INQUIRIES)))
    if rest == ["$metadata"]:
        return _xml(metadata_xml(v3=svc.v3), v3=svc.v3)
    try:
        name, args = parse_gi_segment(rest[0], handler.params)
    except ODataError as err:
        return odata_error(err.status, err.message, v3=svc.v3)
    gi = _find_inquiry(name)
    if gi is None or len(rest) > 1 or (args is not None and set(args) - set(gi.parameters)):
        return odata_error(404, f"Resource not found for the segment '{rest[0]}'.", v3=svc.v3)
    # api.md §9: a GI's rows need the rights of the screens behind it; the sandbox takes its
    # source entity's (--forbidden, --not-set-up).
    gate = handler.server.app.failing.entity_gate(gi.entity)
    if gate is not None:
        return gate
    handler.server.app.stats.query(handler.stat_path, handler.params)
    return handler.limited(
        lambda: _guard(lambda: gi_data(handler, gi, svc, args or {}), v3=svc.v3),
        entity=gi.entity,
    )


def _find_inquiry(name: str) -> Inquiry | None:
    for gi in INQUIRIES.values():
        if name in (gi.name, gi.title):
            return gi
    return None


def metadata_xml(*, v3: bool = False) -> str:
    """CSDL of the Generic Inquiries: one EntityType and EntitySet each (api.md §8).

    ``v3``: the legacy service's CSDL 3.0 (EDMX 1.0, ``Edm.DateTime`` for the tenant-local
    date-times); the v4 service declares them ``Edm.DateTimeOffset``.
    """
    edm = EDM_V3 if v3 else EDM
    types = "".join(entity_type(gi.name, gi.keys, gi.columns, edm) for gi in INQUIRIES.values())
    sets = "".join(
        f"<EntitySet Name={quoteattr(gi.name)} EntityType={quoteattr('Default.' + gi.name)}/>"
        for gi in INQUIRIES.values()
    )
    functions, imports = gi_functions(INQUIRIES.values())
    if v3:  # api.md §8: parameters are not modelled on the legacy v3 service
        return csdl_v3(
            f'<Schema Namespace="Default" xmlns="{CSDL_V3_NS}">{types}'
            '<EntityContainer Name="Default" m:IsDefaultEntityContainer="true">'
            f"{sets}</EntityContainer></Schema>"
        )
    return csdl(
        '<Schema Namespace="Default" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f'{types}{functions}<EntityContainer Name="Default">{sets}{imports}'
        "</EntityContainer></Schema>"
    )


# ---------------------------------------------------------------- data


def gi_data(handler: Handler, gi: Inquiry, svc: Service, args: dict[str, str]) -> Reply:
    """Rows of ``gi`` (with its parameter values ``args``: rows whose column equals each)."""
    app = handler.server.app
    tz = ZoneInfo(app.opt.tz)
    cols = {c.name: c for c in gi.columns}
    query = Query(handler.params, cols, tz, v3=svc.v3)
    if any(cols[name].formula for name in query.used):
        return empty_body()  # api.md §8: a filter on a formula column: 200, empty body

    def rows() -> Iterator[dict[str, Any]]:
        for raw in app.dataset.rows(gi.entity):
            row = {c.name: _local(raw.get(c.source), c, tz) for c in gi.columns}
            if all(not v or row.get(k) == v for k, v in args.items()):
                yield row

    out = query.run(rows())
    value = [{k: _gi_out(row[k], cols[k]) for k in query.select} for row in out]
    context = f"{svc.root}/$metadata#{gi.name}"
    if svc.v3:  # OData v3 JSON light: "odata.metadata" where v4 has "@odata.context"
        return _reply_v3(200, {"odata.metadata": context, "value": value}, len(value))
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
