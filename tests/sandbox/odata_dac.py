"""DAC-based OData: deleted-record tracking (api.md §10) and the DAC service's ``$metadata``.

The sandbox serves only ``px.GetDeletedRecords()`` of the DACs behind its tracked entities (the
ones with a change field); their entity sets, types and the bound function are in ``$metadata``.
DAC rows themselves are not served.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from tests.sandbox.entities import ENTITIES
from tests.sandbox.odata_query import EDM, Column, Query, csdl, entity_type

if TYPE_CHECKING:
    from tests.sandbox.data import Dataset

DELETED_COLUMNS = (
    Column("RefNoteID", "RefNoteID", "Guid"),
    Column("DeleteDate", "DeleteDate", "DateTimeOffset"),
)
# api.md §8: entity sets by full name (PX_Objects_SO_SOOrder); the module of each DAC name
MODULES = {
    "Customer": "AR", "ARCustomer": "AR", "BAccount": "CR", "Vendor": "AP", "APVendor": "AP",
    "SOOrder": "SO", "ARInvoice": "AR", "SOInvoice": "SO", "ARRegister": "AR",
    "APInvoice": "AP", "APRegister": "AP", "ARPayment": "AR", "InventoryItem": "IN",
    "StockItem": "IN", "NonStockItem": "IN", "POOrder": "PO", "Batch": "GL", "GLTran": "GL",
    "Account": "GL", "Contact": "CR", "EPEmployee": "EP", "SOShipment": "SO",
    "PMProject": "PM", "Contract": "CT", "Sub": "GL",
}  # fmt: skip


def tracked_dacs() -> list[tuple[str, str, str]]:
    """(entity set full name, short DAC name, entity) of every DAC with deleted-record tracking."""
    out = []
    for name, edef in ENTITIES.items():
        if not edef.change or edef.inquiry:
            continue  # SM207010 tracks DACs of entities the sandbox can change and delete
        dac = edef.dacs[0] if edef.dacs else name
        out.append((f"PX_Objects_{MODULES.get(dac, 'CS')}_{dac}", dac, name))
    return out


def metadata_xml() -> str:
    """CSDL of the tracked DACs and the bound ``PX.GetDeletedRecords()`` function.

    Each DAC type has its entity's key fields, NoteID and LastModifiedDateTime (a small subset:
    the real DAC metadata is ~20 MB, api.md §8); the function returns
    ``Collection(PX.Api.ODataV4.DeletedRecord)`` with ``RefNoteID`` and ``DeleteDate`` (§10).
    """
    ns = 'xmlns="http://docs.oasis-open.org/odata/ns/edm"'
    types, sets, functions = [], [], []
    for full, _dac, entity in tracked_dacs():
        keys = list(ENTITIES[entity].keys)
        cols = [Column(k, k, "Int" if entity == "Contact" else "String") for k in keys]
        cols += [Column("NoteID", "NoteID", "Guid"), Column("LastModifiedDateTime", "", "DateTime")]
        types.append(entity_type(full, keys, cols))
        default = quoteattr(f"Default.{full}")
        sets.append(f"<EntitySet Name={quoteattr(full)} EntityType={default}/>")
        functions.append(
            '<Function Name="GetDeletedRecords" IsBound="true">'
            f'<Parameter Name="bindingParameter" Type={quoteattr(f"Collection(Default.{full})")}/>'
            '<ReturnType Type="Collection(PX.Api.ODataV4.DeletedRecord)"/></Function>'
        )
    deleted = "".join(
        f'<Property Name="{c.name}" Type="{EDM[c.type]}" Nullable="false"/>'
        for c in DELETED_COLUMNS
    )
    return csdl(
        f'<Schema Namespace="Default" {ns}>{"".join(types)}'
        f'<EntityContainer Name="Default">{"".join(sets)}</EntityContainer></Schema>',
        f'<Schema Namespace="PX" {ns}>{"".join(functions)}</Schema>',
        f'<Schema Namespace="PX.Api.ODataV4" {ns}>'
        f'<ComplexType Name="DeletedRecord">{deleted}</ComplexType></Schema>',
    )


def deleted_records(
    dataset: Dataset, cutoff: dt.datetime, entity: str, params: dict[str, str], root: str
) -> dict[str, Any]:
    """api.md §10: RefNoteID + DeleteDate of records deleted within "Days to Keep Records".

    ``root`` is the DAC service root: ``…/t/{tenant}/api/odata/dac`` or, on a legacy instance,
    ``…/odatav4/{tenant}`` (api.md §8).
    """
    cols = {c.name: c for c in DELETED_COLUMNS}
    query = Query(params, cols, dt.timezone.utc)
    items = sorted(dataset.deleted(entity), key=lambda item: (item[1], item[0]))
    rows = ({"RefNoteID": g, "DeleteDate": d} for g, d in items if d >= cutoff)
    out = query.run(rows)
    value = [
        {k: (_z(row[k]) if isinstance(row[k], dt.datetime) else row[k]) for k in query.select}
        for row in out
    ]
    context = f"{root}/$metadata#Collection(PX.Api.ODataV4.DeletedRecord)"
    return {"@odata.context": context, "value": value}


def _z(value: dt.datetime) -> str:
    return (
        value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
