"""The DACs the sandbox's DAC OData service serves (api.md §8, §10): names, keys, columns, sources.

A DAC is a table. Its rows come from the REST dataset, so writers, ``/_sandbox/mutate`` and detail
edits change them too: a header DAC (SOOrder, ARInvoice, Customer, InventoryItem) has one row per
record of its entity; SOLine one per ``SalesOrder.Details`` line; Contact one per Contact record
and per Customer ``MainContact``; Address one per Contact ``Address`` and Customer
``MainContact/Address``. Every row has its own ``LastModifiedDateTime`` (api.md §3 "Stamps are per
table"). The field names follow Acumatica's DACs (``AcctCD``, ``CuryOrderTotal``, …); the values are
the REST fields named in each column's ``src``.

Column ``src`` specs: ``f:Field`` (raw REST value of the row's schema), ``code:Field`` (the
single-select code of a header field, contract5 codes), ``date:Field`` (date-only field →
midnight UTC), ``key:i`` (header key i), ``tcode:i`` (header key i as its internal type code),
``line`` (line number), ``own`` (the source's ``base`` + owner index: ContactID, AddressID),
``idx:B`` (B + owner index), ``owner:Field`` (a field of the owning header record), ``noteid``,
``stamp``, ``created``, ``const:true``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.sandbox.entities import ENTITIES

# api.md §8: entity sets by full name (PX_Objects_SO_SOOrder); the module of each DAC name
MODULES = {
    "Customer": "AR", "ARCustomer": "AR", "BAccount": "CR", "Vendor": "AP", "APVendor": "AP",
    "SOOrder": "SO", "ARInvoice": "AR", "SOInvoice": "SO", "ARRegister": "AR",
    "APInvoice": "AP", "APRegister": "AP", "ARPayment": "AR", "InventoryItem": "IN",
    "StockItem": "IN", "NonStockItem": "IN", "POOrder": "PO", "Batch": "GL", "GLTran": "GL",
    "Account": "GL", "Contact": "CR", "EPEmployee": "EP", "SOShipment": "SO",
    "PMProject": "PM", "Contract": "CT", "Sub": "GL",
}  # fmt: skip
CUSTOMER_CONTACT_BASE = 500_000  # ContactID / AddressID of Customer MainContact rows


@dataclass(frozen=True)
class Source:
    """Where rows come from: an entity's records (path "") or a detail/linked member path."""

    entity: str
    path: str = ""
    base: int = 0  # "own" ids: base + index of the owning record


@dataclass(frozen=True)
class DacCol:
    name: str
    type: str  # String | Decimal | Int | Boolean | DateTimeOffset | Date | Guid
    src: str
    pad: int = 0  # api.md §8: CHAR columns keep their padding ("AALEGO500 ")


@dataclass(frozen=True)
class Nav:
    """A navigation property (api.md §8: ``<Type>By<Field>`` / ``<Detail>Collection``)."""

    name: str
    target: str  # short DAC name
    many: bool
    links: tuple[tuple[Source, Source], ...]  # my source -> the target's source of the same owner


@dataclass(frozen=True)
class DacDef:
    short: str
    module: str
    display: str
    keys: tuple[str, ...]
    cols: tuple[DacCol, ...]
    sources: tuple[Source, ...]
    navs: tuple[Nav, ...] = ()

    @property
    def full(self) -> str:
        return f"PX_Objects_{self.module}_{self.short}"  # api.md §8: entity sets by full name


NOTE = DacCol("NoteID", "Guid", "noteid")
STAMP = DacCol("LastModifiedDateTime", "DateTimeOffset", "stamp")
CREATED = DacCol("CreatedDateTime", "DateTimeOffset", "created")
SO = Source("SalesOrder")
SO_LINES = Source("SalesOrder", "Details")
CUST = Source("Customer")
CUST_CONTACT = Source("Customer", "MainContact", CUSTOMER_CONTACT_BASE)
CUST_ADDRESS = Source("Customer", "MainContact/Address", CUSTOMER_CONTACT_BASE)
CONTACT = Source("Contact", "", 100)  # ContactID = 100 + index, the REST key
CONTACT_ADDRESS = Source("Contact", "Address", 100)

RICH = (
    DacDef(
        "SOOrder", "SO", "Sales Order", ("OrderType", "OrderNbr"),
        (
            DacCol("OrderType", "String", "key:0", 2), DacCol("OrderNbr", "String", "key:1", 15),
            DacCol("Status", "String", "code:Status", 1), DacCol("OrderDate", "Date", "date:Date"),
            DacCol("OrderDesc", "String", "f:Description"),
            DacCol("CuryOrderTotal", "Decimal", "f:OrderTotal"),
            DacCol("OrderQty", "Decimal", "f:OrderedQty"), DacCol("Hold", "Boolean", "f:Hold"),
            NOTE, CREATED, STAMP,
        ),
        (SO,),
        (Nav("SOLineCollection", "SOLine", True, ((SO, SO_LINES),)),),
    ),
    DacDef(
        "SOLine", "SO", "Sales Order Line", ("OrderType", "OrderNbr", "LineNbr"),
        (
            DacCol("OrderType", "String", "key:0", 2), DacCol("OrderNbr", "String", "key:1", 15),
            DacCol("LineNbr", "Int", "line"), DacCol("TranDesc", "String", "f:LineDescription"),
            DacCol("OrderQty", "Decimal", "f:OrderQty"),
            DacCol("CuryUnitPrice", "Decimal", "f:UnitPrice"),
            DacCol("CuryLineAmt", "Decimal", "f:Amount"), DacCol("ShipDate", "Date", "date:ShipOn"),
            DacCol("Completed", "Boolean", "f:Completed"), NOTE, STAMP,
        ),
        (SO_LINES,),
        (Nav("SOOrderByOrderNbr", "SOOrder", False, ((SO_LINES, SO),)),),
    ),
    DacDef(
        "ARInvoice", "AR", "AR Invoice", ("DocType", "RefNbr"),
        (
            DacCol("DocType", "String", "tcode:0", 3), DacCol("RefNbr", "String", "key:1", 15),
            DacCol("Status", "String", "code:Status", 1), DacCol("DocDate", "Date", "date:Date"),
            DacCol("DocDesc", "String", "f:Description"),
            DacCol("CuryOrigDocAmt", "Decimal", "f:Amount"),
            DacCol("CuryDocBal", "Decimal", "f:Balance"), DacCol("Hold", "Boolean", "f:Hold"),
            NOTE, STAMP,
        ),
        (Source("SalesInvoice"),),
    ),
    DacDef(
        "Customer", "AR", "Customer", ("AcctCD",),
        (
            DacCol("BAccountID", "Int", "f:BAccountID"), DacCol("AcctCD", "String", "key:0", 10),
            DacCol("AcctName", "String", "f:CustomerName"),
            DacCol("Status", "String", "code:Status", 1),
            DacCol("CustomerClassID", "String", "f:CustomerClass"),
            DacCol("CreditLimit", "Decimal", "f:CreditLimit"),
            DacCol("DefContactID", "Int", f"idx:{CUSTOMER_CONTACT_BASE}"), NOTE, CREATED, STAMP,
        ),
        (CUST,),
        (Nav("ContactByDefContactID", "Contact", False, ((CUST, CUST_CONTACT),)),),
    ),
    DacDef(
        "Contact", "CR", "Contact", ("ContactID",),
        (
            DacCol("ContactID", "Int", "own"), DacCol("BAccountID", "Int", "owner:BAccountID"),
            DacCol("DisplayName", "String", "f:DisplayName"),
            DacCol("FirstName", "String", "f:FirstName"),
            DacCol("LastName", "String", "f:LastName"), DacCol("EMail", "String", "f:Email"),
            DacCol("Phone1", "String", "f:Phone1"), DacCol("IsActive", "Boolean", "f:Active"),
            DacCol("DefAddressID", "Int", "own"), NOTE, STAMP,
        ),
        (CONTACT, CUST_CONTACT),
        (
            Nav(
                "AddressByDefAddressID", "Address", False,
                ((CONTACT, CONTACT_ADDRESS), (CUST_CONTACT, CUST_ADDRESS)),
            ),
        ),
    ),
    DacDef(
        "Address", "CR", "Address", ("AddressID",),
        (
            DacCol("AddressID", "Int", "own"), DacCol("BAccountID", "Int", "owner:BAccountID"),
            DacCol("AddressLine1", "String", "f:AddressLine1"), DacCol("City", "String", "f:City"),
            DacCol("State", "String", "f:State"), DacCol("PostalCode", "String", "f:PostalCode"),
            DacCol("CountryID", "String", "f:Country"),
            DacCol("IsValidated", "Boolean", "f:Validated"), NOTE, STAMP,
        ),
        (CONTACT_ADDRESS, CUST_ADDRESS),
    ),
    DacDef(
        "InventoryItem", "IN", "Inventory Item", ("InventoryCD",),
        (
            DacCol("InventoryID", "Int", "idx:10000"),
            DacCol("InventoryCD", "String", "key:0", 10),
            DacCol("Descr", "String", "f:Description"),
            DacCol("ItemStatus", "String", "code:ItemStatus", 2),
            DacCol("ItemClassID", "String", "f:ItemClass"),
            DacCol("BasePrice", "Decimal", "f:DefaultPrice"),
            DacCol("StkItem", "Boolean", "const:true"), NOTE, STAMP,
        ),
        (Source("StockItem"),),
    ),
)  # fmt: skip


def _generic(short: str, entity: str) -> DacDef:
    """Another tracked DAC: its entity's keys, NoteID and LastModifiedDateTime only."""
    keys = ENTITIES[entity].keys
    kind = "Int" if entity == "Contact" else "String"
    cols = tuple(DacCol(k, kind, f"key:{i}") for i, k in enumerate(keys))
    return DacDef(
        short, MODULES.get(short, "CS"), short, keys, (*cols, NOTE, STAMP), (Source(entity),)
    )


def served() -> dict[str, DacDef]:
    """Every served DAC by short name: the rich ones, then one per other tracked entity."""
    out = {d.short: d for d in RICH}
    covered = {s.entity for d in RICH for s in d.sources if not s.path}
    for name, edef in ENTITIES.items():
        if edef.change and not edef.inquiry and name not in covered:
            short = edef.dacs[0] if edef.dacs else name
            out.setdefault(short, _generic(short, name))
    return out


DACS = served()


def find(name: str) -> DacDef | None:
    """A served DAC by full (``PX_Objects_SO_SOLine``, ``PX.Objects.SO.SOLine``), short or
    display name (api.md §8), or by another DAC name of the same entity (``ARCustomer``)."""
    low = name.strip().lower()
    for d in DACS.values():
        names = (d.full, d.full.replace("_", "."), d.short, d.display)
        if low in (n.lower() for n in names):
            return d
    for d in DACS.values():
        for src in d.sources:
            edef = ENTITIES[src.entity]
            if not src.path and len(d.sources) == 1 and name in (*edef.dacs, src.entity):
                return d
    return None
