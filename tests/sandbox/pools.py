"""Value pools for generated records: realistic, Unicode-rich, with empty values and long notes."""

# ruff: noqa: RUF001, E501  (Unicode look-alikes are the point of these pools)
from __future__ import annotations

import random
from functools import lru_cache

COMPANIES = [
    "USA Bartending School",
    "Müller & Söhne GmbH",
    "Société Générale de Café",
    "東京商事株式会社",
    "Ωmega Logistics Ltd",
    "O'Brien Hardware & Co.",
    "Café São Paulo Ltda",
    "Nordlicht Ærø ApS",
    "Żółć Trading Sp. z o.o.",
    "Acme Widgets, Inc.",
    "Blue Ridge Supplies",
    "Große Straße Bäckerei",
    "Ilıca Turizm A.Ş.",
    "Москва Импорт ООО",
    'The "Quoted" Company',
    "Back\\slash Tools LLC",
    "Greenfield Dairy Co-op",
    "Northwind Traders",
    "Contoso Pharmaceuticals",
    "Fabrikam Residences",
    "Sunrise Bakery 🍞",
    "Alpine Ski House",
    "Coho Vineyard & Winery",
    "Tailspin Toys",
]
FIRST = [
    "John", "María", "Zoë", "Łukasz", "Søren", "Aiko", "Renée", "José", "Ольга", "Chloé",
    "Mohammed", "Priya", "Björn", "Nguyễn", "Siobhán", "Amelia", "Kenji", "Fatima",
]  # fmt: skip
LAST = [
    "Good", "García", "Müller", "Kowalczyk", "Ørsted", "Tanaka", "Lefèvre", "Ruiz", "Иванова",
    "Dubois", "Al-Sayed", "Patel", "Åkesson", "Trần", "Ó Briain", "Smith", "Yamada", "Haddad",
]  # fmt: skip
CITIES = [
    ("New York", "NY", "US", "10001"),
    ("Little Falls", "NJ", "US", "07424"),
    ("San Francisco", "CA", "US", "94105"),
    ("Montréal", "QC", "CA", "H2X 1Y4"),
    ("München", "BY", "DE", "80331"),
    ("Zürich", "ZH", "CH", "8001"),
    ("São Paulo", "SP", "BR", "01310-100"),
    ("Kraków", "MA", "PL", "31-042"),
    ("Seattle", "WA", "US", "98101"),
    ("Austin", "TX", "US", "73301"),
]
STREETS = ["Main St", "Lower Notch Rd", "Rue Sainte-Catherine", "Königstraße", "Av. Paulista"]
WORDS = [
    "Bar equipment restock",
    "Quarterly supply order",
    "Rush delivery — customer pickup",
    "Réassort boutique été",
    "Ersatzteile für Maschine №4",
    "年末セール用在庫",
    "Replacement filters (3×)",
    "Website order #00687",
    "Net 30, partial shipment allowed",
    "",
    "Office furniture",
    "Ski rental fleet refresh",
    "Tab\tseparated and new\nline",
    "Emoji order 📦🚚",
]
ITEMS = ["Acer Laptop Computer", "Lego 500 piece set", "Ejector pin 3mm", "Café crème 1 kg",
         "Bolt M8×40", "Ski wax — universal", "Water filter cartridge", "Ethernet cable 5 m"]  # fmt: skip


def long_note(rng: random.Random) -> str:
    """A note longer than 2 KB with Unicode and line breaks."""
    parts = []
    while sum(len(p) for p in parts) < 2300:
        parts.append(rng.choice(WORDS + ITEMS + COMPANIES))
    return "\r\n".join(parts)


def notes(seed: int) -> list[str]:
    rng = random.Random(seed * 7919 + 17)
    out = (
        [""] * 40 + WORDS[:8] + ["Call before delivery.", "Prüfen Sie die Lieferung", "备注：加急"]
    )
    out += [long_note(rng) for _ in range(4)]
    return out


def guid_pool(seed: int, n: int = 64) -> list[str]:
    rng = random.Random(seed * 31 + 5)
    return [_fmt_guid(rng.getrandbits(128)) for _ in range(n)]


def _fmt_guid(x: int) -> str:
    h = f"{x:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=512)
def amounts(seed: int, n: int = 251) -> list[object]:
    rng = random.Random(seed * 13 + 1)
    out: list[object] = [0, 0.0, 1, 100, 1296, 56.45, 201.73, 410.4545, 97.98, 64.5]
    while len(out) < n:
        v = round(rng.lognormvariate(5, 1.4), rng.choice([0, 2, 2, 2, 4]))
        out.append(int(v) if v == int(v) else v)
    return out


def string_pool(fname: str, ename: str) -> list[object]:
    """A plausible value pool for a string field, by field name."""
    n = fname
    if n in {"CurrencyID", "BaseCurrencyID", "Currency"}:
        return ["USD"] * 6 + ["EUR", "CAD", "GBP"]
    if n.endswith(("Subaccount", "SubAccount", "Sub")) or n == "SubaccountCD":
        return ["000000", "000000", "PRODWHL", "PRODRET", "CON-000", None]
    if n.endswith("Account") or n in {"AccountRef"}:
        return ["10100", "10200", "11000", "12000", "20000", "40000", "50000", "60000", None]
    if n in {"Branch", "BranchID", "LinkBranch", "ShippingBranch"}:
        return ["HEADOFFICE", "HEADOFFICE", "PRODWHOLE", "PRODRETAIL"]
    if "Warehouse" in n or n in {"Warehouse", "ToWarehouseID"}:
        return ["WHOLESALE", "RETAIL", "MAIN", "EAST", None]
    if n in {"UOM", "BaseUOM", "SalesUOM", "PurchaseUOM", "BaseUnit", "SalesUnit", "PurchaseUnit",
             "FromUOM", "ToUOM"}:  # fmt: skip
        return ["EA", "EA", "PIECE", "BOX", "KG", "HOUR"]
    if n in {"WeightUOM"}:
        return ["KG", "LB"]
    if n in {"VolumeUOM"}:
        return ["LITER", "M3", "GAL"]
    if n.startswith("TaxZone") or n.endswith("TaxZone"):
        return ["CA", "NY", "EXEMPT", None]
    if n in {"TaxCategory", "TaxCategoryID"}:
        return ["TAXABLE", "TAXABLE", "EXEMPT", None]
    if n == "TaxID":
        return ["CASTATE", "NYSTATE", "NYCITY", "VAT20"]
    if n == "Terms":
        return ["30D", "30D", "15D", "COD", "NET60", None]
    if n == "ShipVia":
        return ["FEDEXGROUND", "UPSGROUND", "LOCAL", "DHL", None]
    if n in {"PaymentMethod"}:
        return ["CHECK", "CASH", "VISA", "ACH"]
    if n == "Email":
        return ["info@usabartending.con", "orders@müller.example", "zoë@example.com",
                "ap@northwind.example", "", None]  # fmt: skip
    if n.startswith("Phone") and not n.endswith("Type"):
        return ["+1 (916) 555-0142", "+1 (212) 555-0199", "+49 89 1234567", "", None]
    if n in {"City"}:
        return [c[0] for c in CITIES]
    if n in {"State"}:
        return [c[1] for c in CITIES]
    if n in {"Country", "CountryOfOrigin"}:
        return [c[2] for c in CITIES]
    if n == "PostalCode":
        return [c[3] for c in CITIES]
    if n == "AddressLine1":
        return [f"{i * 17 + 1} {s}" for i, s in enumerate(STREETS)]
    if n == "AddressLine2":
        return [None, None, None, "Suite 200", "2. OG", "Bâtiment B"]
    if n in {"Description", "LineDescription", "TransactionDescription", "TransactionDescr",
             "Summary"}:  # fmt: skip
        return WORDS + ITEMS + [None]
    if n.endswith("Name") and n not in {"LocationName", "FirstName", "LastName", "MiddleName"}:
        return (
            COMPANIES
            if ename not in {"Contact", "Employee"}
            else [f"{a} {b}" for a, b in zip(FIRST, LAST, strict=True)]
        )
    if n == "FirstName":
        return FIRST
    if n in {"LastName"}:
        return LAST
    if n == "MiddleName":
        return [None, None, "A.", "Marie"]
    if n in {"Attention", "BusinessAccount"}:
        return ["Accounts Payable", "Receiving", None]
    if n in {"LocationName"}:
        return ["Primary Location", "Main", "Warehouse Dock"]
    if n in {"LocationID", "Location"}:
        return ["MAIN", "MAIN", "R1S1", "DOCK"]
    if n in {"Project"}:
        return ["X", "X", "X", "PRJ000001"]
    if n in {"PostPeriod"}:
        return [f"{m:02d}{y}" for y in (2022, 2023, 2024, 2025) for m in range(1, 13)]
    if n in {"WebSite"}:
        return ["http://www.usabartending.con", "https://northwind.example", None]
    if n in {"ItemClass", "CustomerClass", "VendorClass", "ContactClass", "EmployeeClass",
             "PostingClass", "PriceClass", "PriceClassID", "AccountClass"}:  # fmt: skip
        return ["DEFAULT", "LOCAL", "INTL", "WHOLESALE", "RETAIL", None]
    if n in {"LineType"}:
        return ["Goods for IN", "Non-Stock", "Misc. Charge"]
    if n in {"LastModifiedDate"}:  # api.md §2.1: SalesOrderDetail.LastModifiedDate is a string
        return ["8/15/2024 4:03:27 PM", "1/2/2023 9:00:00 AM", "12/31/2022 11:59:59 PM"]
    if n in {"ExternalRef", "CustomerOrder", "VendorRef", "ExternalRefNbr", "PaymentRef",
             "TrackingNbr", "TaxRegistrationID", "EmployeeRefNbr", "CustomerOrderNbr"}:  # fmt: skip
        return [None, None, "", "PO-44871", "EXT-0042", "1Z999AA10123456784", "ÄÖÜ-7"]
    if n in {"Owner", "ProductManager", "ReportsTo", "Delegate", "Salesperson", "SalespersonID"}:
        return ["EP00000001", "EP00000002", "EP00000005", None]
    if n in {"Gender"}:
        return ["Female", "Male", None]
    if n in {"Title"}:
        return ["Mr.", "Ms.", "Dr.", None]
    if n in {"JobTitle", "PositionID"}:
        return ["Accountant", "Buyer", "CEO", "Warehouse Manager", None]
    if n in {"LanguageOrLocale"}:
        return ["en-US", "fr-CA", "de-DE", None]
    if n == "Status":
        return ["Active", "Inactive"]
    if n == "ImageUrl":
        return [None, None, "https://img.example/item.png"]
    if n == "Visibility":
        return ["Visible", "Featured", "Invisible"]
    return [None, None, f"{n[:3].upper()}01", f"{n[:3].upper()}02", "ÉTÉ-03"]


CUSTOM_POOLS: dict[str, list[object]] = {
    "String": ["Battery", "Filter", "Screen", "Ümlaut", "", None],
    "Boolean": [True, False, False, None],
    "Int": [0, 1, 7, 42, 365, None],
    "Short": [0, 1, 2, None],
    "Long": [0, 10_000_000_000, None],
    "Decimal": [0, 1.5, 99.99, None],
    "Double": [0.0, 2.5, None],
    # Acumatica's published example payloads: CustomDateTimeField values carry no offset.
    "DateTime": ["2020-08-17T05:50:43", "2024-02-29T00:00:00", None],
    "Guid": ["7a9b6f3e-1c3a-ef11-8c65-ac198e472cfe", None],
}
