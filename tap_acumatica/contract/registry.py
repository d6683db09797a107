"""Registry of Acumatica entities: natural keys, inquiry-only entities, per-entity overrides.

Streams are not hand-written classes: the tap builds one generic
:class:`~tap_acumatica.contract.stream.ContractStream` per top-level entity the endpoint
document lists, and this registry only adds what the document cannot say.
"""

from __future__ import annotations

#: Natural (form) key fields, in URL order (docs/acumatica-api.md §2.1). Key fields are not in the
#: OpenAPI
#: document, so they come from Acumatica's generated models. The stream's primary key stays
#: ``id`` (the NoteID, stable across sessions and key renames); these are recorded in the schema
#: and always added to ``$select``. A FULL_TABLE stream whose ids turn out to be session-scoped
#: is keyed by these instead (``contract.ids``).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "Account": ("AccountCD",),
    "Appointment": ("ServiceOrderType", "AppointmentNbr"),
    "Bill": ("Type", "ReferenceNbr"),
    "BusinessAccount": ("BusinessAccountID",),
    "Case": ("CaseID",),
    "CashSale": ("Type", "ReferenceNbr"),
    "Check": ("Type", "ReferenceNbr"),
    "Contact": ("ContactID",),
    "Customer": ("CustomerID",),
    "CustomerClass": ("ClassID",),
    "CustomerLocation": ("Customer", "LocationID"),
    "Employee": ("EmployeeID",),
    "Invoice": ("Type", "ReferenceNbr"),
    "ItemClass": ("ClassID",),
    "ItemWarehouse": ("InventoryID", "WarehouseID"),
    "JournalTransaction": ("Module", "BatchNbr"),
    "KitAssembly": ("Type", "ReferenceNbr"),
    "Lead": ("LeadID",),
    "NonStockItem": ("InventoryID",),
    "Opportunity": ("OpportunityID",),
    "Payment": ("Type", "ReferenceNbr"),
    "Project": ("ProjectID",),
    "ProjectTask": ("ProjectID", "ProjectTaskID"),
    "PurchaseOrder": ("Type", "OrderNbr"),
    "PurchaseReceipt": ("Type", "ReceiptNbr"),
    "SalesInvoice": ("Type", "ReferenceNbr"),
    "SalesOrder": ("OrderType", "OrderNbr"),
    "ServiceOrder": ("ServiceOrderType", "ServiceOrderNbr"),
    "Shipment": ("ShipmentNbr",),
    "StockItem": ("InventoryID",),
    "Subaccount": ("SubaccountCD",),
    "Vendor": ("VendorID",),
    "Warehouse": ("WarehouseID",),
}

#: Inquiry-style entities: a filter form plus a results detail, read with PUT and a body, not
#: with a list GET (docs/acumatica-api.md §2.1), so they are not streams. Any other entity whose
#: name ends in
#: ``Inquiry`` is skipped as well. Also the filter forms without that suffix that §2.1 lists
#: (ContractUsage, PayrollWCCCode; eCommerce and Manufacturing processing forms).
INQUIRY_ENTITIES: frozenset[str] = frozenset(
    {
        "AccountDetailsForPeriodInquiry",
        "AccountSummaryInquiry",
        "BCShipments",
        "Budget",
        "CloseProductionOrders",
        "CompaniesStructure",
        "ContractUsage",
        "CostRoll",
        "EmailProcessing",
        "InventoryAllocationInquiry",
        "InventoryQuantityAvailable",
        "InventorySummaryInquiry",
        "ItemImages",
        "LaborCostRate",
        "PayrollWCCCode",
        "PhysicalInventoryCount",
        "RegenerateMRP",
        "ReleaseProductionOrders",
        "SalesPricesInquiry",
        "StorageDetails",
        "StorageDetailsByLocationInquiry",
        "StorageDetailsInquiry",
        "VendorPricesInquiry",
    }
)

#: Replication-key overrides for entities where the default choice (LastModifiedDateTime, else
#: LastModified) is wrong for an instance; empty by default, kept as the single place to fix one.
REPLICATION_KEY_OVERRIDES: dict[str, str | None] = {}


def is_inquiry(entity: str) -> bool:
    """True for inquiry-style entities that cannot be listed with GET."""
    return entity in INQUIRY_ENTITIES or entity.endswith("Inquiry")


def natural_keys(entity: str) -> tuple[str, ...]:
    """The entity's natural key fields, or ``()`` when unknown."""
    return NATURAL_KEYS.get(entity, ())


#: Change fields renamed between endpoint versions, old → new, carrying the same stamp: a
#: bookmark written under the old name resumes under the new one (docs/acumatica-api.md §1.1,
#: §2.1: SalesOrder and StockItem ``LastModified`` → ``LastModifiedDateTime`` in 26.200.001).
RENAMED_REPLICATION_KEYS: dict[str, str] = {"LastModified": "LastModifiedDateTime"}
