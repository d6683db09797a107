"""OData building blocks shared by the GI and DAC services: columns, CSDL, and the query options.

``Query`` applies ``$filter $orderby $top $skip $select`` to flat rows; ``FilterParser`` is a small
OData ``$filter`` parser (v4 syntax; v3 typed literals tolerated). api.md §8.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import quoteattr


@dataclass(frozen=True)
class Column:
    name: str
    source: str  # field of Dataset.rows()
    type: str  # String | Decimal | Int | Boolean | DateTime | DateTimeOffset | Guid
    pad: int = 0  # api.md §8: OData keeps CHAR key padding ("AALEGO500 ")


EDM = {
    "String": "Edm.String",
    "Decimal": "Edm.Decimal",
    "Int": "Edm.Int32",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "DateTimeOffset": "Edm.DateTimeOffset",
    "Guid": "Edm.Guid",
}


# api.md §8, legacy GI service (OData v3): CSDL 3.0 types. GI date-times carry no offset, so
# they are Edm.DateTime there (v4 has no such type and declares them Edm.DateTimeOffset).
EDM_V3 = {**EDM, "DateTime": "Edm.DateTime"}
CSDL_V3_NS = "http://schemas.microsoft.com/ado/2009/11/edm"


class ODataError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def csdl(*schemas: str) -> str:
    """An OData v4 CSDL document (``$metadata``) holding the given ``<Schema>`` elements."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
        "<edmx:DataServices>" + "".join(schemas) + "</edmx:DataServices></edmx:Edmx>"
    )


def csdl_v3(*schemas: str) -> str:
    """An OData v3 CSDL document (EDMX 1.0, ``m:DataServiceVersion="3.0"``), api.md §8."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx">'
        '<edmx:DataServices m:DataServiceVersion="3.0" m:MaxDataServiceVersion="3.0" '
        'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">'
        + "".join(schemas)
        + "</edmx:DataServices></edmx:Edmx>"
    )


def service_document_v3(service: str, names: Iterable[str]) -> dict[str, Any]:
    """An OData v3 JSON light service document: ``odata.metadata``, entries without ``kind``."""
    return {
        "odata.metadata": f"{service}/$metadata",
        "value": [{"name": n, "url": n} for n in names],
    }


def service_document(service: str, names: Iterable[str]) -> dict[str, Any]:
    """The service document of ``service`` (``…/api/odata/gi`` or ``…/dac``): its entity sets."""
    return {
        "@odata.context": f"{service}/$metadata",
        "value": [{"name": n, "kind": "EntitySet", "url": n} for n in names],
    }


def entity_type(
    name: str, keys: Iterable[str], cols: Iterable[Column], edm: dict[str, str] | None = None
) -> str:
    """A CSDL ``<EntityType>``: key fields are non-nullable; ``edm`` maps column types."""
    keys = list(keys)
    types = edm or EDM
    refs = "".join(f"<PropertyRef Name={quoteattr(k)}/>" for k in keys)
    props = "".join(
        f"<Property Name={quoteattr(c.name)} Type={quoteattr(types[c.type])}"
        + (' Nullable="false"' if c.name in keys else "")
        + "/>"
        for c in cols
    )
    return f"<EntityType Name={quoteattr(name)}><Key>{refs}</Key>{props}</EntityType>"


UNSUPPORTED = {"$expand", "$count", "$apply", "$search"}
KNOWN = {"$filter", "$orderby", "$top", "$skip", "$select", "$format", "$skiptoken"}


class Query:
    """$filter / $orderby / $skip / $top / $select over flat rows."""

    def __init__(
        self, params: dict[str, str], cols: dict[str, Column], tz: dt.tzinfo, *, v3: bool = False
    ) -> None:
        for name in params:
            if name in UNSUPPORTED:
                raise ODataError(400, f"The query parameter '{name}' is not supported.")
            if name.startswith("$") and name not in KNOWN:
                raise ODataError(400, f"The query parameter '{name}' is not supported.")
        self.cols = cols
        self.tz = tz
        self.filter = (
            FilterParser(params["$filter"], cols, tz, v3=v3).parse()
            if params.get("$filter")
            else None
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
    """A small OData $filter parser (v4 syntax; v3 typed literals tolerated).

    ``v3`` (the legacy GI service, api.md §8) speaks OData v3 only: date-times are typed
    literals (``datetime'2024-01-01T00:00:00'``, ``datetimeoffset'…'``), a bare ISO date-time
    is a syntax error and ``contains`` (v4) an unknown function (v3 has ``substringof``).
    """

    def __init__(
        self, text: str, cols: dict[str, Column], tz: dt.tzinfo, *, v3: bool = False
    ) -> None:
        self.text = text
        self.cols = cols
        self.tz = tz
        self.v3 = v3
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ODataError(400, f"Syntax error at position {pos} in '{self.text}'.")
            kind = m.lastgroup or ""
            if v3 and kind == "dt":  # OData v3 has no bare date-time literals
                raise ODataError(400, f"Syntax error at position {pos} in '{self.text}'.")
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
                if self.v3 and low == "contains":
                    raise ODataError(400, f"Unknown function '{text}'.")
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
