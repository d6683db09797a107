"""Which DAC holds the deleted records of a contract-API entity (docs/acumatica-api.md §10).

Acumatica keeps deleted records only per DAC table (SM207010), never per REST entity, and a
REST record's ``id`` is its NoteID, which is what ``px.GetDeletedRecords()`` returns as
``RefNoteID``. So an entity's deletions are those of the primary DAC of the form behind it
(the DAC whose NoteID the record carries). The map below names the usual one per entity of the
Default endpoint; ``deletion_dacs`` overrides or extends it ("" turns an entity's feed off).
"""

from __future__ import annotations

from collections.abc import Mapping

#: REST entity → short DAC name of the form's primary view (the row whose NoteID is ``id``).
DELETION_DACS: Mapping[str, str] = {
    "Account": "Account",
    "Appointment": "FSAppointment",
    "Bill": "APInvoice",
    "BusinessAccount": "BAccount",
    "Case": "CRCase",
    "CashSale": "ARCashSale",
    "Check": "APPayment",
    "Contact": "Contact",
    "Customer": "Customer",
    "CustomerClass": "CustomerClass",
    "Employee": "EPEmployee",
    "Invoice": "ARInvoice",
    "ItemClass": "INItemClass",
    "JournalTransaction": "Batch",
    "Lead": "CRLead",
    "NonStockItem": "InventoryItem",
    "Opportunity": "CROpportunity",
    "Payment": "ARPayment",
    "Project": "PMProject",
    "ProjectTask": "PMTask",
    "PurchaseOrder": "POOrder",
    "PurchaseReceipt": "POReceipt",
    "SalesInvoice": "ARInvoice",
    "SalesOrder": "SOOrder",
    "ServiceOrder": "FSServiceOrder",
    "Shipment": "SOShipment",
    "StockItem": "InventoryItem",
    "Subaccount": "Sub",
    "Vendor": "Vendor",
    "Warehouse": "INSite",
}


def deletion_dac(entity: str, overrides: Mapping[str, str]) -> str | None:
    """The DAC whose deleted records are ``entity``'s, or None (no mapping, or turned off)."""
    dac = overrides.get(entity, DELETION_DACS.get(entity))
    return dac or None


__all__ = ["DELETION_DACS", "deletion_dac"]
