"""OData v4: Generic Inquiries and deleted-record tracking (API-FACTS §8, §10).

``/t/{tenant}/api/odata/gi`` (service document), ``.../gi/$metadata`` (CSDL XML),
``.../gi/{GI}`` with ``$filter $orderby $top $skip $select``, and
``/t/{tenant}/api/odata/dac/{DAC}/px.GetDeletedRecords()``. Bearer or basic auth.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from tests.sandbox import Reply, json_reply
from tests.sandbox.auth import TENANT

if TYPE_CHECKING:
    from tests.sandbox.server import Handler

ODATA_JSON = "application/json; odata.metadata=minimal; charset=utf-8"
ODATA_HEADERS = [("OData-Version", "4.0")]


@dataclass(frozen=True)
class Column:
    name: str
    source: str  # field of Dataset.rows()
    type: str  # String | Decimal | Int | Boolean | DateTime | DateTimeOffset | Guid
    pad: int = 0  # API-FACTS §8: OData keeps CHAR key padding ("AALEGO500 ")


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
DELETED_COLUMNS = (
    Column("RefNoteID", "RefNoteID", "Guid"),
    Column("DeleteDate", "DeleteDate", "DateTimeOffset"),
)
EDM = {
    "String": "Edm.String",
    "Decimal": "Edm.Decimal",
    "Int": "Edm.Int32",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "DateTimeOffset": "Edm.DateTimeOffset",
    "Guid": "Edm.Guid",
}


class ODataError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def odata_error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    return json_reply(status, {"error": {"code": "", "message": message}}, headers)


# ---------------------------------------------------------------- routing


def route_odata(handler: Handler, method: str, tenant: str, segs: list[str]) -> Reply:
    app = handler.server.app
    if tenant.lower() != TENANT.lower():
        return odata_error(404, f"Tenant '{tenant}' was not found.")
    # API-FACTS §8: basic auth (conventional user, no API seat) or an OAuth bearer.
    denied = app.auth.authenticate(handler.cookies, handler.authorization, allow_basic=True)
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
            return _reply(200, service_document(base))
        if rest == ["$metadata"]:
            return Reply(
                200, metadata_xml().encode(), "application/xml; charset=utf-8", ODATA_HEADERS
            )
        gi = _find_inquiry(rest[0])
        if gi is None or len(rest) > 1:
            return odata_error(404, f"Resource not found for the segment '{rest[0]}'.")
        app.stats.query(handler.stat_path, handler.params)
        return handler.limited(lambda: _guard(lambda: gi_data(handler, gi, base)), entity=gi.entity)
    if kind == "dac" and len(rest) == 2 and rest[1].lower() == "px.getdeletedrecords()":
        entity = app.dataset.entity_of_dac(rest[0])
        if entity is None:
            return odata_error(404, f"Resource not found for the segment '{rest[0]}'.")
        app.stats.query(handler.stat_path, handler.params)
        return handler.limited(
            lambda: _guard(lambda: deleted_records(handler, entity, base)), entity=entity
        )
    return odata_error(404, "Resource not found.")


def _guard(work: Callable[[], Reply]) -> Reply:
    try:
        return work()
    except ODataError as err:
        return odata_error(err.status, err.message, ODATA_HEADERS)


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


def service_document(base: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{base}/gi/$metadata",
        "value": [
            {"name": gi.name, "kind": "EntitySet", "url": gi.name} for gi in INQUIRIES.values()
        ],
    }


def metadata_xml() -> str:
    types, sets = [], []
    for gi in INQUIRIES.values():
        keys = "".join(f"<PropertyRef Name={quoteattr(k)}/>" for k in gi.keys)
        props = "".join(
            f"<Property Name={quoteattr(c.name)} Type={quoteattr(EDM[c.type])}"
            + (' Nullable="false"' if c.name in gi.keys else "")
            + "/>"
            for c in gi.columns
        )
        types.append(f"<EntityType Name={quoteattr(gi.name)}><Key>{keys}</Key>{props}</EntityType>")
        sets.append(
            f"<EntitySet Name={quoteattr(gi.name)} EntityType={quoteattr('Default.' + gi.name)}/>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
        '<edmx:DataServices><Schema Namespace="Default" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        + "".join(types)
        + '<EntityContainer Name="Default">'
        + "".join(sets)
        + "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
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


def deleted_records(handler: Handler, entity: str, base: str) -> Reply:
    """API-FACTS §10: RefNoteID + DeleteDate of records deleted within "Days to Keep Records"."""
    app = handler.server.app
    keep = dt.timedelta(days=app.opt.deleted_keep_days)
    cutoff = app.clock.now() - keep
    cols = {c.name: c for c in DELETED_COLUMNS}
    query = Query(handler.params, cols, dt.timezone.utc)
    items = sorted(app.dataset.deleted(entity), key=lambda item: (item[1], item[0]))
    rows = ({"RefNoteID": g, "DeleteDate": d} for g, d in items if d >= cutoff)
    out = query.run(rows)
    value = [
        {k: (_z(row[k]) if isinstance(row[k], dt.datetime) else row[k]) for k in query.select}
        for row in out
    ]
    context = f"{base}/dac/$metadata#Collection(PX.Api.ODataV4.DeletedRecord)"
    return _reply(200, {"@odata.context": context, "value": value}, len(value))


def _z(value: dt.datetime) -> str:
    return (
        value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _local(value: Any, col: Column, tz: dt.tzinfo) -> Any:
    """GI values: tenant-local date-times WITHOUT offset (API-FACTS §8 examples)."""
    if isinstance(value, dt.datetime) and col.type == "DateTime":
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _gi_out(value: Any, col: Column) -> Any:
    if value is None:
        return None
    if col.type == "Decimal":
        return f"{Decimal(str(value)):.6f}"  # API-FACTS §8: GI decimals as "1999.000000"
    if col.type == "DateTime":
        text = value.isoformat(timespec="milliseconds")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if col.type == "String" and col.pad and isinstance(value, str):
        return value.ljust(col.pad)
    return value


# ---------------------------------------------------------------- query options

UNSUPPORTED = {"$expand", "$count", "$apply", "$search"}
KNOWN = {"$filter", "$orderby", "$top", "$skip", "$select", "$format", "$skiptoken"}


class Query:
    """$filter / $orderby / $skip / $top / $select over flat rows."""

    def __init__(self, params: dict[str, str], cols: dict[str, Column], tz: dt.tzinfo) -> None:
        for name in params:
            if name in UNSUPPORTED:
                raise ODataError(400, f"The query parameter '{name}' is not supported.")
            if name.startswith("$") and name not in KNOWN:
                raise ODataError(400, f"The query parameter '{name}' is not supported.")
        self.cols = cols
        self.tz = tz
        self.filter = (
            FilterParser(params["$filter"], cols, tz).parse() if params.get("$filter") else None
        )
        self.order = self._orderby(params.get("$orderby", ""))
        self.top = _nonneg(params, "$top")
        self.skip = _nonneg(params, "$skip") or 0
        select = [s.strip() for s in params.get("$select", "").split(",") if s.strip()]
        for name in select:
            if name not in cols:
                raise ODataError(400, f"Could not find a property named '{name}'.")
        self.select = select or list(cols)

    def _orderby(self, text: str) -> list[tuple[str, bool]]:
        out = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name, _, direction = part.partition(" ")
            direction = direction.strip().lower() or "asc"
            if name not in self.cols or direction not in ("asc", "desc"):
                raise ODataError(400, f"Invalid $orderby clause '{part}'.")
            out.append((name, direction == "desc"))
        return out

    def run(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        pred = self.filter
        matching = (r for r in rows if pred is None or pred(r) is True)
        if self.order:
            data = list(matching)
            for name, desc in reversed(self.order):
                data.sort(key=lambda r, n=name: _sort_key(r[n]), reverse=desc)
            end = None if self.top is None else self.skip + self.top
            return data[self.skip : end]
        out: list[dict[str, Any]] = []
        for i, row in enumerate(matching):
            if i < self.skip:
                continue
            if self.top is not None and len(out) >= self.top:
                break
            out.append(row)
        return out


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value.rstrip())
    return (1, value)


def _nonneg(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        value = int(params[name])
    except ValueError:
        raise ODataError(400, f"Invalid value '{params[name]}' for {name}.") from None
    if value < 0:
        raise ODataError(400, f"Invalid value '{params[name]}' for {name}.")
    return value


TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')"
    r"|(?P<typed>(?:datetimeoffset|datetime|guid)'[^']*')"
    r"|(?P<dt>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)(?![\w-])"
    r"|(?P<guid>[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})"
    r"|(?P<num>-?\d+(?:\.\d+)?[mMdD]?)"
    r"|(?P<punct>[(),])"
    r"|(?P<word>[A-Za-z_][\w.]*))"
)
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
FUNCS = {"contains", "startswith", "endswith", "substringof", "tolower", "toupper"}

Pred = Callable[[dict[str, Any]], Any]


class FilterParser:
    """A small OData $filter parser (v4 syntax; v3 typed literals tolerated)."""

    def __init__(self, text: str, cols: dict[str, Column], tz: dt.tzinfo) -> None:
        self.text = text
        self.cols = cols
        self.tz = tz
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ODataError(400, f"Syntax error at position {pos} in '{self.text}'.")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def parse(self) -> Pred:
        pred = self._or()
        if self.i != len(self.tokens):
            raise ODataError(400, f"Syntax error: unexpected '{self.tokens[self.i][1]}'.")
        return pred

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None or (value is not None and tok[1].lower() != value):
            wanted = f"'{value}'" if value else "an operand"
            raise ODataError(400, f"Syntax error in '{self.text}': expected {wanted}.")
        self.i += 1
        return tok

    def _word(self, *words: str) -> bool:
        tok = self._peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() in words

    def _or(self) -> Pred:
        left = self._and()
        while self._word("or"):
            self._take()
            right = self._and()
            left = _either(left, right)
        return left

    def _and(self) -> Pred:
        left = self._not()
        while self._word("and"):
            self._take()
            right = self._not()
            left = _both(left, right)
        return left

    def _not(self) -> Pred:
        if self._word("not"):
            self._take()
            inner = self._not()
            return lambda r: inner(r) is not True
        return self._compare()

    def _compare(self) -> Pred:
        left, lcol = self._operand()
        if self._word(*COMPARE):
            op = COMPARE[self._take()[1].lower()]
            right, rcol = self._operand()
            col = lcol or rcol
            lconv, rconv = self._coerce(left, col), self._coerce(right, col)

            def cmp(r: dict[str, Any]) -> bool:
                a, b = lconv(r), rconv(r)
                if a is None or b is None:
                    return op(a, b) if op in (COMPARE["eq"], COMPARE["ne"]) else False
                try:
                    return bool(op(a, b))
                except TypeError:
                    return False

            return cmp
        return left

    def _coerce(self, fn: Pred, col: Column | None) -> Pred:
        tz = self.tz

        def conv(r: dict[str, Any]) -> Any:
            v = fn(r)
            if isinstance(v, str) and col is not None:
                if col.type in ("DateTime", "DateTimeOffset") and not isinstance(v, dt.datetime):
                    return v
                return v.rstrip() if col.pad else v
            if isinstance(v, dt.datetime) and col is not None:
                if col.type == "DateTime":  # GI: naive tenant-local values
                    return v.astimezone(tz).replace(tzinfo=None) if v.tzinfo else v
                return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)
            if isinstance(v, Decimal):
                return float(v)
            return v

        return conv

    def _operand(self) -> tuple[Pred, Column | None]:
        tok = self._take()
        kind, text = tok
        if text == "(":
            inner = self._or()
            self._take(")")
            return inner, None
        if kind == "str":
            value = text[1:-1].replace("''", "'")
            return (lambda r: value), None
        if kind in ("dt", "typed"):
            if text.lower().startswith("guid"):
                guid = text[5:-1].lower()
                return (lambda r: guid), None
            value = _literal_datetime(text)
            return (lambda r: value), None
        if kind == "guid":
            return (lambda r: text.lower()), None
        if kind == "num":
            number: Any = Decimal(text.rstrip("mMdD"))
            return (lambda r: number), None
        if kind == "word":
            low = text.lower()
            if low in ("true", "false"):
                flag = low == "true"
                return (lambda r: flag), None
            if low == "null":
                return (lambda r: None), None
            if low in FUNCS and self._peek() == ("punct", "("):
                return self._function(low), None
            if text not in self.cols:
                raise ODataError(400, f"Could not find a property named '{text}'.")
            col = self.cols[text]
            if col.type == "Guid":
                return (lambda r: (r[text] or "").lower() or None), col
            return (lambda r: r[text]), col
        raise ODataError(400, f"Syntax error in '{self.text}' near '{text}'.")

    def _function(self, name: str) -> Pred:
        self._take("(")
        args = [self._operand()]
        while self._peek() == ("punct", ","):
            self._take(",")
            args.append(self._operand())
        self._take(")")
        fns = [a[0] for a in args]

        def text(fn: Pred, r: dict[str, Any]) -> str | None:
            v = fn(r)
            return v.rstrip() if isinstance(v, str) else None

        if name in ("tolower", "toupper") and len(fns) == 1:
            f = fns[0]
            return lambda r: None if text(f, r) is None else getattr(text(f, r), name[2:])()
        if len(fns) != 2:
            raise ODataError(400, f"Function '{name}' takes two arguments.")
        a, b = fns
        if name == "substringof":  # v3: substringof(needle, haystack)
            a, b = b, a
        method = {"contains": "__contains__", "substringof": "__contains__"}.get(name, name)

        def call(r: dict[str, Any]) -> bool:
            hay, needle = text(a, r), text(b, r)
            if hay is None or needle is None:
                return False
            return bool(getattr(hay, method)(needle))

        return call


def _either(a: Pred, b: Pred) -> Pred:
    return lambda r: a(r) is True or b(r) is True


def _both(a: Pred, b: Pred) -> Pred:
    return lambda r: a(r) is True and b(r) is True


def _literal_datetime(text: str) -> dt.datetime:
    raw = text
    if "'" in text:
        raw = text[text.index("'") + 1 : -1]
    raw = raw.replace(" ", "+")  # an unencoded "+" arrives as a space
    raw = raw.replace("Z", "+00:00").replace("z", "+00:00")
    # Python 3.10's fromisoformat wants 0, 3 or 6 fractional digits: pad to 6.
    raw = re.sub(r"\.(\d{1,6})\d*", lambda m: "." + m.group(1).ljust(6, "0"), raw)
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ODataError(400, f"Unrecognized date-time literal '{text}'.") from None
    return value
