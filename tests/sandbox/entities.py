"""Entity definitions of the sandbox's Default endpoint (api.md §2: names and types).

A realistic subset of every entity's fields is declared here; the swagger document, the records and
the filter validation are all generated from these definitions (never from the real document).
Field specs are strings ``"Name:Type"``; ``@24`` marks a field that exists only since 24.200.001.
Type codes: S=StringValue, Dec=DecimalValue, DT=DateTimeValue, Int=IntValue, Bool=BooleanValue,
Guid=GuidValue, Short=ShortValue, Long=LongValue.

This module is long on purpose: it is data (one declaration per entity and sub-entity, ~30 of
them), not logic; splitting it would only scatter the definitions that a reader compares.
"""

# ruff: noqa: E501  (field tables read best as long lines)
from __future__ import annotations

from dataclasses import dataclass, field

V23 = "23.200.001"
V24 = "24.200.001"
VERSIONS = [V23, V24]

WRAPPER = {
    "S": "StringValue",
    "Dec": "DecimalValue",
    "DT": "DateTimeValue",
    "Int": "IntValue",
    "Bool": "BooleanValue",
    "Guid": "GuidValue",
    "Short": "ShortValue",
    "Long": "LongValue",
    "Dbl": "DoubleValue",
    "Byte": "ByteValue",
}
# api.md §3: custom fields are typed ``Custom<Type>Field``; cf.<Type>(f='View.Field') in $filter.
CUSTOM_TYPES = (
    "String",
    "Int",
    "Decimal",
    "Boolean",
    "DateTime",
    "Guid",
    "Short",
    "Long",
    "Double",
)


@dataclass(frozen=True)
class Field:
    """One contract field: name, type code, and the first endpoint version that has it."""

    name: str
    type: str
    since: str = V23

    def in_version(self, version: str) -> bool:
        return version >= self.since


@dataclass
class Schema:
    """A top-level, detail or linked entity type."""

    name: str
    fields: tuple[Field, ...]
    details: dict[str, str] = field(default_factory=dict)  # member -> schema name
    linked: dict[str, str] = field(default_factory=dict)  # member -> schema name
    custom: dict[str, dict[str, str]] = field(default_factory=dict)  # view -> field -> type
    view: str = "Document"  # graph view name used in the files:put link
    note_null: bool = False  # api.md §12.2: a linked Address shows "note": null
    lines: tuple[int, int] = (0, 3)  # min/max lines of a detail collection
    pools: dict[str, list[object]] = field(default_factory=dict)  # per-field value overrides

    def field_map(self, version: str) -> dict[str, Field]:
        return {f.name: f for f in self.fields if f.in_version(version)}


@dataclass
class EntityDef(Schema):
    """A top-level entity of the endpoint."""

    screen: str = ""
    title: str = ""
    graph: str = ""
    keys: tuple[str, ...] = ()
    change: tuple[str, ...] = ()  # change-tracking fields (all carry the same stamp)
    created: tuple[str, ...] = ()
    scale: str = "core"  # core: --records; ref: --records // 5 (at least 20)
    prefix: str = ""  # key number prefix (last key)
    digits: int = 6  # minimum zero-padded width of the key number
    types: tuple[tuple[str, str, float], ...] = ()  # (internal code, display, share) for 2-key docs
    mutable: tuple[str, ...] = ()  # fields that change on update
    dacs: tuple[str, ...] = ()
    inquiry: bool = False

    def change_field(self, version: str) -> str | None:
        """The change-tracking field a tap filters on in this version (None: full sync only)."""
        present = [f for f in self.change if self.field_map(version).get(f)]
        return present[-1] if present else None


def F(spec: str) -> tuple[Field, ...]:  # noqa: N802
    """Parse ``"A:S B:DT@24 ..."`` into fields."""
    out = []
    for tok in spec.split():
        name, _, typ = tok.partition(":")
        since = V23
        if "@" in typ:
            typ, _, ver = typ.partition("@")
            since = {"24": V24, "23": V23}[ver]
        out.append(Field(name, typ, since))
    return tuple(out)


SUBS: dict[str, Schema] = {}


def sub(name: str, spec: str, **kw: object) -> None:
    SUBS[name] = Schema(name, F(spec), **kw)  # type: ignore[arg-type]


sub(
    "Address",
    "AddressLine1:S AddressLine2:S City:S Country:S PostalCode:S State:S Validated:Bool",
    note_null=True,
)
sub("DocContact", "Attention:S BusinessName:S Email:S Phone1:S")
sub(
    "AttributeValue",
    "AttributeID:S AttributeDescription:S IsActive:Bool RefNoteID:Guid Required:Bool Value:S "
    "ValueDescription:S",
    view="Answers",
    custom={"Answers": {"AttributeCategory": "String"}},
)
sub(
    "CustomerContact",
    "ContactID:Int LastModifiedDateTime:DT",
    linked={"Contact": "Contact"},
    view="Contacts",
    lines=(0, 2),
)
sub(
    "CustomerSalesPerson",
    "Commission:Dec Default:Bool LocationID:S LocationName:S Name:S SalespersonID:S",
    view="SalesPersons",
    lines=(0, 2),
)
sub(
    "CreditVerificationRules",
    "CreditDaysPastDue:Short CreditLimit:Dec CreditVerification:S FirstDueDate:DT "
    "OpenOrdersBalance:Dec RemainingCreditLimit:Dec UnreleasedBalance:Dec",
)
sub(
    "SalesOrderDetail",
    "Account:S Amount:Dec Branch:S Completed:Bool DiscountAmount:Dec DiscountPercent:Dec "
    "ExtendedPrice:Dec FreeItem:Bool InventoryID:S LastModifiedDate:S LineDescription:S LineNbr:Int "
    "LineType:S Location:S ManualPrice:Bool NoteID:Guid OpenQty:Dec OrderQty:Dec QtyOnShipments:Dec "
    "RequestedOn:DT ShipOn:DT TaxCategory:S UnitCost:Dec UnitPrice:Dec UOM:S WarehouseID:S",
    view="Transactions",
    lines=(0, 5),
    custom={"Transactions": {"UsrGiftWrap": "Boolean"}},
)
sub(
    "TaxDetail",
    "LineNbr:Int OrderNbr:S OrderType:S RecordID:Int TaxableAmount:Dec TaxAmount:Dec TaxID:S "
    "TaxRate:Dec TaxType:S",
    view="Taxes",
    lines=(0, 2),
)
sub(
    "SalesOrderShipment",
    "InvoiceNbr:S InvoiceType:S ShipmentDate:DT ShipmentNbr:S ShipmentType:S ShippedQty:Dec "
    "ShippedWeight:Dec Status:S LastModifiedDateTime:DT",
    view="shipmentlist",
    lines=(0, 2),
)
sub(
    "Totals",
    "DiscountTotal:Dec LineTotalAmount:Dec MiscTotalAmount:Dec TaxTotal:Dec UnbilledAmount:Dec "
    "UnbilledQty:Dec UnpaidBalance:Dec Freight:Dec OrderVolume:Dec OrderWeight:Dec "
    "OverrideFreightAmount:Bool",
)
sub(
    "SalesInvoiceDetail",
    "Amount:Dec BranchID:S Description:S DiscountAmount:Dec InventoryID:S LineNbr:Int NoteID:Guid "
    "OrderNbr:S OrderType:S Qty:Dec ShipmentNbr:S TaxCategory:S TransactionDescr:S UnitPrice:Dec "
    "UOM:S WarehouseID:S",
    view="Transactions",
)
sub("SalesInvoiceTaxDetail", "TaxableAmount:Dec TaxAmount:Dec TaxID:S", view="Taxes", lines=(0, 2))
sub(
    "SalesInvoiceAddress",
    "AddressLine1:S AddressLine2:S City:S Country:S PostalCode:S State:S",
    note_null=True,
)
sub(
    "InvoiceDetail",
    "Account:S Amount:Dec Branch:S DiscountAmount:Dec ExtendedPrice:Dec InventoryID:S "
    "LastModifiedDateTime:DT LineNbr:Int Qty:Dec Subaccount:S TransactionDescription:S "
    "UnitPrice:Dec UOM:S TaxCategory:S",
    view="Transactions",
)
sub("InvoiceTaxDetail", "TaxableAmount:Dec TaxAmount:Dec TaxID:S TaxRate:Dec", view="Taxes")
sub(
    "BillDetail",
    "Account:S Amount:Dec Branch:S Description:S ExtendedCost:Dec InventoryID:S NonBillable:Bool "
    "POOrderNbr:S POOrderType:S Project:S Qty:Dec Subaccount:S TaxCategory:S "
    "TransactionDescription:S UnitCost:Dec UOM:S",
    view="Transactions",
)
sub("BillTaxDetail", "TaxableAmount:Dec TaxAmount:Dec TaxID:S TaxRate:Dec", view="Taxes")
sub(
    "BillApplicationDetail",
    "AmountPaid:Dec Balance:Dec DocType:S ReferenceNbr:S Status:S",
    view="Adjustments",
    lines=(0, 1),
)
sub(
    "PaymentDetail",
    "AmountPaid:Dec BalanceWriteOff:Dec CashDiscountTaken:Dec CustomerOrder:S Description:S "
    "DocLineNbr:Int DocType:S ReferenceNbr:S WriteOffReasonCode:S",
    view="Adjustments",
)
sub("PaymentOrderDetail", "AppliedToOrder:Dec OrderNbr:S OrderType:S", view="SOAdjustments")
sub(
    "StockItemWarehouseDetail",
    "DefaultIssueLocationID:S DefaultReceiptLocationID:S InventoryAccount:S IsDefault:Bool "
    "Override:Bool PreferredVendor:S ProductManager:S QtyOnHand:Dec ReplenishmentSource:S "
    "ServiceLevel:Dec Status:S WarehouseID:S",
    view="itemsiterecords",
    lines=(1, 3),
)
sub(
    "StockItemVendorDetail",
    "Active:Bool CurrencyID:S Default:Bool LastVendorPrice:Dec LeadTimeDays:Short Location:S "
    "MinOrderQty:Dec PurchaseUnit:S RecordID:Int VendorID:S VendorName:S Warehouse:S",
    view="VendorItems",
    lines=(0, 2),
)
sub(
    "InventoryItemUOMConversion",
    "ConversionFactor:Dec FromUOM:S MultiplyOrDivide:S ToUOM:S",
    view="itemunits",
    lines=(0, 2),
)
sub("CategoryStockItem", "CategoryID:Int", view="Category", lines=(0, 2))
sub(
    "NonStockItemVendorDetail",
    "RecordID:Int VendorID:S VendorName:S Default:Bool",
    view="VendorItems",
    lines=(0, 2),
)
sub(
    "InventoryItemCrossReference",
    "AlternateID:S AlternateType:S Description:S Subitem:S VendorOrCustomer:S UOM:S",
    view="itemxrefrecords",
    lines=(0, 2),
)
sub(
    "PurchaseOrderDetail",
    "Account:S BranchID:S Cancelled:Bool Completed:Bool Description:S ExtendedCost:Dec "
    "InventoryID:S LineNbr:Int LineType:S OrderNbr:S OrderQty:Dec OrderType:S Promised:DT "
    "QtyOnReceipts:Dec ReceivedAmount:Dec Requested:DT Subaccount:S UnitCost:Dec UOM:S "
    "WarehouseID:S",
    view="Transactions",
)
sub(
    "PurchaseOrderTaxDetail",
    "TaxableAmount:Dec TaxAmount:Dec TaxID:S TaxRate:Dec",
    view="Taxes",
    lines=(0, 1),
)
sub(
    "ShippingInstructions",
    "ShippingDestinationType:S ShippingLocation:S ShipTo:S ShipToAddressOverride:Bool "
    "ShipToContactOverride:Bool Warehouse:S",
    linked={"ShipToAddress": "Address", "ShipToContact": "DocContact"},
)
sub(
    "JournalTransactionDetail",
    "Account:S BranchID:S CreditAmount:Dec DebitAmount:Dec Description:S LineNbr:Int "
    "NonBillable:Bool Project:S ProjectTransactionID:Long Qty:Dec ReferenceNbr:S Subaccount:S "
    "TransactionDescription:S UOM:S VendorOrCustomer:S",
    view="GLTranModuleBatNbr",
    lines=(2, 6),
)
sub(
    "EmployeeSettings",
    "BranchID:S Calendar:S CurrencyID:S DepartmentID:S EmployeeClass:S EmployeeRefNbr:S "
    "EnableCurrencyOverride:Bool ReportsTo:S RouteEmails:Bool Salesperson:S TimeCardIsRequired:Bool",
)
sub(
    "EmploymentHistoryRecord",
    "Active:Bool EndDate:DT LineNbr:Int PositionID:S RehireEligible:Bool StartDate:DT "
    "StartReason:S Terminated:Bool TerminationReason:S",
    view="EmployeePositions",
    lines=(1, 3),
)
sub(
    "EmployeeDelegate",
    "Delegate:S EmployeeName:S DelegationOf:S StartsOn:DT ExpiresOn:DT IsActive:Bool",
    view="Delegates",
    lines=(0, 1),
)
sub(
    "ShipmentDetail",
    "Description:S ExpirationDate:DT FreeItem:Bool InventoryID:S LineNbr:Int LocationID:S "
    "LotSerialNbr:S OpenQty:Dec OrderedQty:Dec OrderLineNbr:Int OrderNbr:S OrderType:S "
    "ShippedQty:Dec UOM:S WarehouseID:S",
    view="Transactions",
    lines=(1, 4),
)
sub(
    "ShipmentOrderDetail",
    "InvoiceNbr:S InvoiceType:S OrderNbr:S OrderType:S ShipmentNbr:S ShipmentType:S "
    "ShippedQty:Dec ShippedWeight:Dec OrderNoteID:Guid",
    view="OrderList",
    lines=(1, 2),
)
sub(
    "ShipmentPackage",
    "BoxID:S Confirmed:Bool Description:S TrackingNbr:S Type:S UOM:S Weight:Dec LineNbr:Int "
    "NoteID:Guid",
    view="Packages",
    lines=(0, 2),
)
sub(
    "ProjectBalance",
    "AccountGroup:S ActualAmount:Dec CommittedOpenAmount:Dec Description:S "
    "OriginalBudgetedAmount:Dec RevisedBudgetedAmount:Dec VarianceAmount:Dec",
    view="Balances",
)
sub("ProjectEmployee", "Department:S EmployeeID:S EmployeeName:S", view="EmployeeContract")
sub(
    "ProjectAddress",
    "AddressLine1:S City:S Country:S State:S PostalCode:S Latitude:Dec Longitude:Dec",
    note_null=True,
)
sub(
    "SalesPriceDetail",
    "BreakQty:Dec CurrencyID:S Description:S EffectiveDate:DT ExpirationDate:DT InventoryID:S "
    "Price:Dec PriceCode:S PriceType:S Promotion:Bool RecordID:Int UOM:S Warehouse:S",
    view="Records",
)

STATUS_DOC = ["Open", "On Hold", "Balanced", "Closed", "Completed", "Voided"]

ENTITIES: dict[str, EntityDef] = {}


def ent(name: str, spec: str, **kw: object) -> None:
    ENTITIES[name] = EntityDef(name, F(spec), **kw)  # type: ignore[arg-type]


ent(
    "Customer",
    "AccountRef:S ApplyOverdueCharges:Bool AutoApplyPayments:Bool BAccountID:Int "
    "BillingAddressOverride:Bool BillingContactOverride:Bool CreatedDateTime:DT CreditLimit:Dec "
    "CurrencyID:S CurrencyRateType:S CustomerClass:S CustomerID:S CustomerName:S Email:S "
    "EnableCurrencyOverride:Bool EnableWriteOffs:Bool IsGuestCustomer:Bool@24 "
    "LastModifiedDateTime:DT LocationName:S NoteID:Guid ParentRecord:S PriceClassID:S "
    "PrimaryContactID:Int PrintInvoices:Bool SendInvoicesbyEmail:Bool ShippingTerms:S ShipVia:S "
    "StatementCycleID:S StatementType:S Status:S TaxRegistrationID:S TaxZone:S Terms:S "
    "WriteOffLimit:Dec",
    details={
        "Attributes": "AttributeValue",
        "Contacts": "CustomerContact",
        "Salespersons": "CustomerSalesPerson",
    },
    linked={
        "MainContact": "Contact",
        "BillingContact": "Contact",
        "PrimaryContact": "Contact",
        "ShippingContact": "Contact",
        "CreditVerificationRules": "CreditVerificationRules",
    },
    custom={
        # api.md §3: a custom date-time comes without an offset, in the tenant's time.
        "CurrentCustomer": {
            "UsrLoyaltyTier": "String",
            "UsrCreditScore": "Int",
            "UsrLastAuditedOn": "DateTime",
        },
        "DefLocation": {"CBranchID": "Int"},
    },
    view="BAccount",
    screen="AR303000",
    title="Customers",
    graph="PX.Objects.AR.CustomerMaint",
    keys=("CustomerID",),
    change=("LastModifiedDateTime",),
    created=("CreatedDateTime",),
    prefix="C",
    mutable=("Status", "CreditLimit", "Email", "Terms", "CustomerClass"),
    dacs=("Customer", "ARCustomer", "BAccount"),
    pools={
        "Status": ["Active"] * 8 + ["On Hold", "Credit Hold", "Inactive", "One-Time"],
        "StatementType": ["Open Item", "Balance Forward"],
    },
)
ent(
    "Vendor",
    "AccountRef:S APAccount:S APSubaccount:S CashAccount:S CreatedDateTime:DT CurrencyID:S "
    "EnableCurrencyOverride:Bool F1099Vendor:Bool FOBPoint:S LandedCostVendor:Bool "
    "LastModifiedDateTime:DT LeadTimedays:Short LegalName:S LocationName:S PaymentMethod:S "
    "PaySeparately:Bool ShipVia:S Status:S TaxZone:S Terms:S VendorClass:S VendorID:S "
    "VendorName:S Warehouse:S",
    details={"Attributes": "AttributeValue", "Contacts": "CustomerContact"},
    linked={"MainContact": "Contact", "PrimaryContact": "Contact", "RemittanceContact": "Contact"},
    custom={"CurrentVendor": {"UsrPreferredCarrier": "String"}},
    view="BAccount",
    screen="AP303000",
    title="Vendors",
    graph="PX.Objects.AP.VendorMaint",
    keys=("VendorID",),
    change=("LastModifiedDateTime",),
    created=("CreatedDateTime",),
    prefix="V",
    mutable=("Status", "Terms", "PaymentMethod"),
    dacs=("Vendor", "APVendor"),
    pools={"Status": ["Active"] * 6 + ["On Hold", "Hold Payments", "Inactive"]},
)
ent(
    "SalesOrder",
    "Approved:Bool BaseCurrencyID:S BillToAddressOverride:Bool BillToContactOverride:Bool Branch:S "
    "CashAccount:S ContactID:S ControlTotal:Dec CreatedDate:DT CreditHold:Bool CurrencyID:S "
    "CurrencyRate:Dec CustomerID:S CustomerOrder:S Date:DT Description:S EffectiveDate:DT "
    "ExternalRef:S Hold:Bool IsTaxValid:Bool LastModified:DT LocationID:S NoteID:Guid "
    "OrderedQty:Dec OrderNbr:S OrderTotal:Dec OrderType:S PaymentMethod:S PreferredWarehouseID:S "
    "Project:S RequestedOn:DT ShipToAddressOverride:Bool ShipToContactOverride:Bool ShipVia:S "
    "Status:S TaxCalcMode:S@24 TaxTotal:Dec WillCall:Bool",
    details={
        "Details": "SalesOrderDetail",
        "TaxDetails": "TaxDetail",
        "Shipments": "SalesOrderShipment",
    },
    linked={
        "BillToAddress": "Address",
        "BillToContact": "DocContact",
        "ShipToAddress": "Address",
        "ShipToContact": "DocContact",
        "Totals": "Totals",
    },
    custom={"Document": {"AttributePRODUCT": "String", "UsrRushOrder": "Boolean"}},
    screen="SO301000",
    title="Sales Orders",
    graph="PX.Objects.SO.SOOrderEntry",
    keys=("OrderType", "OrderNbr"),
    change=("LastModified",),
    created=("CreatedDate",),
    types=(
        ("CS", "CS", 0.04),
        ("IN", "IN", 0.04),
        ("QT", "QT", 0.08),
        ("RM", "RM", 0.04),
        ("SO", "SO", 0.80),
    ),
    mutable=("Status", "Hold", "Description", "OrderTotal", "OrderedQty", "TaxTotal"),
    dacs=("SOOrder",),
    pools={
        "Status": [
            "Open",
            "Open",
            "Open",
            "On Hold",
            "Back Order",
            "Shipping",
            "Completed",
            "Completed",
            "Cancelled",
            "Pending Approval",
        ],
        "TaxCalcMode": ["Tax Settings", "Gross", "Net"],
    },
)
ent(
    "SalesInvoice",
    "Amount:Dec Balance:Dec CashDiscount:Dec CreatedDate:DT@24 CreditHold:Bool Currency:S "
    "CustomerID:S CustomerOrder:S Date:DT Description:S DetailTotal:Dec DiscountTotal:Dec "
    "DueDate:DT ExternalRef:S FreightPrice:Dec Hold:Bool LastModifiedDate:DT@24 "
    "LastModifiedDateTime:DT PaymentTotal:Dec Project:S ReferenceNbr:S Status:S TaxTotal:Dec Type:S",
    details={"Details": "SalesInvoiceDetail", "TaxDetails": "SalesInvoiceTaxDetail"},
    linked={"BillToAddress": "SalesInvoiceAddress", "ShipToAddress": "SalesInvoiceAddress"},
    screen="SO303000",
    title="Invoices (SO)",
    graph="PX.Objects.SO.SOInvoiceEntry",
    keys=("Type", "ReferenceNbr"),
    change=("LastModifiedDateTime",),
    created=("CreatedDate",),
    types=(("CRM", "Credit Memo", 0.1), ("INV", "Invoice", 0.9)),
    mutable=("Status", "Balance", "Hold"),
    dacs=("ARInvoice", "SOInvoice"),
    pools={"Status": STATUS_DOC},
)
ent(
    "Invoice",
    "Amount:Dec Balance:Dec BillingPrinted:Bool CreatedDateTime:DT Customer:S CustomerOrder:S "
    "Date:DT Description:S DueDate:DT Hold:Bool IsTaxValid:Bool LastModifiedDateTime:DT "
    "LinkARAccount:S LinkBranch:S LocationID:S PostPeriod:S Project:S ReferenceNbr:S Status:S "
    "TaxTotal:Dec Terms:S Type:S",
    details={"Details": "InvoiceDetail", "TaxDetails": "InvoiceTaxDetail"},
    linked={"BillToContact": "DocContact", "ShipToContact": "DocContact"},
    screen="AR301000",
    title="Invoices and Memos",
    graph="PX.Objects.AR.ARInvoiceEntry",
    keys=("Type", "ReferenceNbr"),
    change=("LastModifiedDateTime",),
    created=("CreatedDateTime",),
    types=(("CRM", "Credit Memo", 0.08), ("DRM", "Debit Memo", 0.04), ("INV", "Invoice", 0.88)),
    mutable=("Status", "Balance", "Hold", "Description"),
    dacs=("ARRegister",),
    pools={"Status": STATUS_DOC},
)
ent(
    "Bill",
    "Amount:Dec ApprovedForPayment:Bool Balance:Dec BranchID:S CashAccount:S CurrencyID:S Date:DT "
    "Description:S DueDate:DT Hold:Bool IsTaxValid:Bool LastModifiedDateTime:DT LocationID:S "
    "PostPeriod:S Project:S ReferenceNbr:S Status:S TaxTotal:Dec Terms:S Type:S Vendor:S VendorRef:S",
    details={
        "Details": "BillDetail",
        "TaxDetails": "BillTaxDetail",
        "Applications": "BillApplicationDetail",
    },
    screen="AP301000",
    title="Bills and Adjustments",
    graph="PX.Objects.AP.APInvoiceEntry",
    keys=("Type", "ReferenceNbr"),
    change=("LastModifiedDateTime",),
    types=(("ACR", "Credit Adj.", 0.05), ("ADR", "Debit Adj.", 0.05), ("INV", "Bill", 0.9)),
    mutable=("Status", "Balance", "Hold", "ApprovedForPayment"),
    dacs=("APInvoice", "APRegister"),
    pools={"Status": STATUS_DOC},
)
ent(
    "Payment",
    "ApplicationDate:DT AppliedToDocuments:Dec Branch:S CashAccount:S CurrencyID:S CustomerID:S "
    "Description:S ExternalRef:S Hold:Bool IsCCPayment:Bool LastModifiedDateTime:DT NoteID:Guid "
    "PaymentAmount:Dec PaymentMethod:S PaymentRef:S ReferenceNbr:S Status:S Type:S "
    "AvailableBalance:Dec@24",
    details={"DocumentsToApply": "PaymentDetail", "OrdersToApply": "PaymentOrderDetail"},
    screen="AR302000",
    title="Payments and Applications",
    graph="PX.Objects.AR.ARPaymentEntry",
    keys=("Type", "ReferenceNbr"),
    change=("LastModifiedDateTime",),
    types=(("CRM", "Credit Memo", 0.1), ("PMT", "Payment", 0.9)),
    mutable=("Status", "AppliedToDocuments", "Hold"),
    dacs=("ARPayment",),
    pools={"Status": ["Open", "Closed", "Balanced", "On Hold", "Voided", "Pending Processing"]},
)
ent(
    "StockItem",
    "ABCCode:S AverageCost:Dec BaseUOM:S COGSAccount:S CountryOfOrigin:S CurrentStdCost:Dec "
    "DefaultPrice:Dec DefaultWarehouseID:S Description:S ImageUrl:S InventoryAccount:S "
    "InventoryID:S IsAKit:Bool ItemClass:S ItemStatus:S ItemType:S LastCost:Dec LastModified:DT "
    "LastModifiedDateTime:DT@24 LotSerialClass:S Markup:Dec MSRP:Dec NoteID:Guid PostingClass:S "
    "PriceClass:S ProductManager:S PurchaseUOM:S SalesUOM:S TaxCategory:S ValuationMethod:S "
    "Visibility:S VolumeUOM:S WeightUOM:S",
    details={
        "WarehouseDetails": "StockItemWarehouseDetail",
        "VendorDetails": "StockItemVendorDetail",
        "UOMConversions": "InventoryItemUOMConversion",
        "Categories": "CategoryStockItem",
        "Attributes": "AttributeValue",
    },
    custom={
        "ItemSettings": {
            "UsrRepairItemType": "String",
            "UsrHazmat": "Boolean",
            "UsrShelfLifeDays": "Int",
        }
    },
    view="Item",
    screen="IN202500",
    title="Stock Items",
    graph="PX.Objects.IN.InventoryItemMaint",
    keys=("InventoryID",),
    change=("LastModified", "LastModifiedDateTime"),
    prefix="SI",
    mutable=("ItemStatus", "DefaultPrice", "Description", "LastCost"),
    dacs=("InventoryItem", "StockItem"),
    pools={
        "ItemStatus": ["Active"] * 7
        + ["Inactive", "No Sales", "No Purchases", "Marked for Deletion"],
        "ItemType": ["Finished Good", "Component Part", "Subassembly"],
        "ValuationMethod": ["Average", "Standard", "FIFO", "Specific"],
    },
)
ent(
    "NonStockItem",
    "BaseUnit:S CurrentCost:Dec DefaultPrice:Dec Description:S ExpenseAccount:S InventoryID:S "
    "IsKit:Bool ItemClass:S ItemStatus:S ItemType:S LastCost:Dec LastModifiedDateTime:DT "
    "NoteID:Guid PostingClass:S PriceClass:S PurchaseUnit:S RequireReceipt:Bool "
    "RequireShipment:Bool SalesAccount:S SalesUnit:S TaxCategory:S Visibility:S",
    details={
        "VendorDetails": "NonStockItemVendorDetail",
        "CrossReferences": "InventoryItemCrossReference",
        "Attributes": "AttributeValue",
    },
    view="Item",
    screen="IN202000",
    title="Non-Stock Items",
    graph="PX.Objects.IN.NonStockItemMaint",
    keys=("InventoryID",),
    change=("LastModifiedDateTime",),
    prefix="NS",
    mutable=("ItemStatus", "DefaultPrice", "Description"),
    dacs=("NonStockItem",),
    pools={
        "ItemStatus": ["Active"] * 5 + ["Inactive"],
        "ItemType": ["Non-Stock Item", "Labor", "Service", "Charge", "Expense"],
    },
)
ent(
    "PurchaseOrder",
    "BaseCurrencyID:S Branch:S ControlTotal:Dec CurrencyID:S CurrencyRate:Dec Date:DT "
    "Description:S Hold:Bool IsTaxValid:Bool LastModifiedDateTime:DT LineTotal:Dec Location:S "
    "OrderNbr:S OrderTotal:Dec Owner:S Project:S PromisedOn:DT Status:S TaxTotal:Dec Terms:S "
    "Type:S VendorID:S VendorRef:S VendorTaxZone:S",
    details={"Details": "PurchaseOrderDetail", "TaxDetails": "PurchaseOrderTaxDetail"},
    linked={"ShippingInstructions": "ShippingInstructions"},
    screen="PO301000",
    title="Purchase Orders",
    graph="PX.Objects.PO.POOrderEntry",
    keys=("Type", "OrderNbr"),
    change=("LastModifiedDateTime",),
    prefix="PO",
    types=(("BL", "Blanket", 0.05), ("DP", "Drop Ship", 0.1), ("RO", "Normal", 0.85)),
    mutable=("Status", "Hold", "OrderTotal"),
    dacs=("POOrder",),
    pools={"Status": ["Open", "On Hold", "Pending Approval", "Completed", "Closed", "Canceled"]},
)
ent(
    "JournalTransaction",
    "BatchNbr:S BranchID:S CreatedDateTime:DT CurrencyID:S Description:S Hold:Bool "
    "LastModifiedDateTime:DT LedgerID:S Module:S PostPeriod:S Status:S TransactionDate:DT",
    details={"Details": "JournalTransactionDetail"},
    view="BatchModule",
    screen="GL301000",
    title="Journal Transactions",
    graph="PX.Objects.GL.JournalEntry",
    keys=("Module", "BatchNbr"),
    change=("LastModifiedDateTime",),
    created=("CreatedDateTime",),
    types=(("AP", "AP", 0.2), ("AR", "AR", 0.25), ("CA", "CA", 0.05), ("GL", "GL", 0.5)),
    mutable=("Status", "Hold", "Description"),
    dacs=("Batch", "GLTran"),
    pools={"Status": ["Balanced", "Posted", "Unposted", "On Hold", "Released"]},
)
ent(
    "Account",
    "AccountCD:S AccountClass:S AccountGroup:S AccountID:Int Active:Bool CashAccount:Bool "
    "ChartOfAccountsOrder:Int CreatedDateTime:DT CurrencyID:S Description:S LastModifiedDateTime:DT "
    "PostOption:S RequireUnits:Bool Secured:Bool TaxCategory:S Type:S UseDefaultSubaccount:Bool",
    view="AccountRecords",
    screen="GL202500",
    title="Chart of Accounts",
    graph="PX.Objects.GL.AccountMaint",
    keys=("AccountCD",),
    change=("LastModifiedDateTime",),
    created=("CreatedDateTime",),
    scale="ref",
    mutable=("Description", "Active"),
    dacs=("Account",),
    pools={
        "Type": ["Asset", "Liability", "Income", "Expense"],
        "PostOption": ["Summary", "Detail"],
    },
)
ent(
    "Contact",
    "Active:Bool AddressValidated:Bool Attention:S BusinessAccount:S CompanyName:S ContactClass:S "
    "ContactID:Int ContactMethod:S DateOfBirth:DT DisplayName:S DoNotCall:Bool DoNotEmail:Bool "
    "Email:S Fax:S FirstName:S FullName:S Gender:S JobTitle:S LanguageOrLocale:S "
    "LastModifiedDateTime:DT LastName:S MiddleName:S NoteID:Guid Owner:S Phone1:S Phone1Type:S "
    "Phone2:S Source:S Status:S Title:S Type:S WebSite:S",
    details={"Attributes": "AttributeValue"},
    linked={"Address": "Address"},
    custom={"ContactCurrent": {"UsrNickname": "String"}},
    screen="CR302000",
    title="Contacts",
    graph="PX.Objects.CR.ContactMaint",
    view="Contact",
    keys=("ContactID",),
    change=("LastModifiedDateTime",),
    mutable=("Email", "Phone1", "Status", "JobTitle"),
    dacs=("Contact",),
    pools={
        "Status": ["Active"] * 5 + ["Inactive"],
        "Type": ["Contact", "Employee", "Lead"],
        "Phone1Type": ["Business 1"],
    },
)
ent(
    "Employee",
    "EmployeeID:S EmployeeName:S LastModifiedDateTime:DT Status:S",
    details={
        "EmploymentHistory": "EmploymentHistoryRecord",
        "Delegates": "EmployeeDelegate",
        "Attributes": "AttributeValue",
    },
    linked={"ContactInfo": "Contact", "EmployeeSettings": "EmployeeSettings"},
    screen="EP203000",
    title="Employees",
    graph="PX.Objects.EP.EmployeeMaint",
    view="Employee",
    keys=("EmployeeID",),
    change=("LastModifiedDateTime",),
    scale="ref",
    prefix="EP",
    digits=8,
    mutable=("Status",),
    dacs=("EPEmployee",),
    pools={"Status": ["Active"] * 6 + ["Inactive", "On Hold"]},
)
ent(
    "Shipment",
    "BaseCurrencyID:S ControlQty:Dec CreatedDateTime:DT CustomerID:S Description:S "
    "EffectiveDate:DT FOBPoint:S FreightCost:Dec FreightPrice:Dec Hold:Bool Insurance:Bool "
    "LastModifiedDateTime:DT LocationID:S NoteID:Guid Operation:S PackageCount:Int "
    "PackageWeight:Dec ShipmentDate:DT ShipmentNbr:S ShippedQty:Dec ShippedWeight:Dec ShipVia:S "
    "Status:S Type:S WarehouseID:S",
    details={
        "Details": "ShipmentDetail",
        "Orders": "ShipmentOrderDetail",
        "Packages": "ShipmentPackage",
    },
    screen="SO302000",
    title="Shipments",
    graph="PX.Objects.SO.SOShipmentEntry",
    keys=("ShipmentNbr",),
    change=("LastModifiedDateTime",),
    created=("CreatedDateTime",),
    prefix="SH",
    mutable=("Status", "Hold", "ShippedQty", "PackageCount"),
    dacs=("SOShipment",),
    pools={
        "Status": ["Open", "On Hold", "Confirmed", "Completed", "Invoiced", "Receipted"],
        "Operation": ["Issue", "Receipt"],
        "Type": ["Shipment", "Transfer"],
    },
)
ent(
    "Project",
    "Assets:Dec Customer:S Description:S Expenses:Dec ExternalRefNbr:S Hold:Bool Income:Dec "
    "LastModifiedDateTime:DT Liabilities:Dec ProjectID:S ProjectTemplateID:S Status:S",
    details={
        "Balances": "ProjectBalance",
        "Employees": "ProjectEmployee",
        "Attributes": "AttributeValue",
    },
    linked={"ProjectAddress": "ProjectAddress"},
    screen="PM301000",
    title="Projects",
    graph="PX.Objects.PM.ProjectEntry",
    view="Project",
    keys=("ProjectID",),
    change=("LastModifiedDateTime",),
    scale="ref",
    prefix="PRJ",
    mutable=("Status", "Income", "Expenses"),
    dacs=("PMProject", "Contract"),
    pools={"Status": ["Active", "Active", "Planned", "Completed", "Suspended", "On Hold"]},
)
ent(
    "Subaccount",
    "Active:Bool Description:S Secured:Bool SubaccountCD:S SubaccountID:Int",
    view="SubRecords",
    screen="GL203000",
    title="Subaccounts",
    graph="PX.Objects.GL.SubAccountMaint",
    keys=("SubaccountCD",),
    scale="ref",
    mutable=("Description", "Active"),
    dacs=("Sub",),
)
# api.md §2: "Inquiry" entities wrap a filter form + a result detail and are read with PUT.
ent(
    "SalesPricesInquiry",
    "EffectiveAsOf:DT InventoryID:S ItemClassID:S PriceClass:S PriceCode:S PriceManager:S "
    "PriceManagerIsMe:Bool PriceType:S PriceWorkgroup:S PriceWorkgroupIsMine:Bool "
    "TaxCalculationMode:S",
    details={"SalesPriceDetails": "SalesPriceDetail"},
    view="Filter",
    screen="AR202000",
    title="Sales Prices",
    graph="PX.Objects.AR.ARSalesPriceMaint",
    scale="ref",
    inquiry=True,
)


def schema(name: str) -> Schema:
    """A detail/linked schema by type name (a top-level entity used as a linked type included)."""
    if name in SUBS:
        return SUBS[name]
    return ENTITIES[name]
