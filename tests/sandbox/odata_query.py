"""OData building blocks shared by the GI and DAC services: columns, CSDL, and the query options.

``Query`` applies ``$filter $orderby $top $skip $select`` to flat rows; ``FilterParser`` is a small
OData ``$filter`` parser (v4 syntax; v3 typed literals tolerated). api.md §8.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from tests.sandbox.odata_filter import FilterParser, ODataError

__all__ = ["Column", "FilterParser", "ODataError", "Query"]


@dataclass(frozen=True)
class Column:
    name: str
    source: str  # field of Dataset.rows()
    type: str  # String | Decimal | Int | Boolean | DateTime | DateTimeOffset | Guid
    pad: int = 0  # api.md §8: OData keeps CHAR key padding ("AALEGO500 ")
    formula: bool = False  # a GI formula column: a $filter on it answers 200, empty body (§8)


EDM = {
    "String": "Edm.String",
    "Decimal": "Edm.Decimal",
    "Int": "Edm.Int32",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "DateTimeOffset": "Edm.DateTimeOffset",
    "Date": "Edm.DateTimeOffset",  # DAC date-only fields: midnight of the date, UTC (UNVERIFIED)
    "Guid": "Edm.Guid",
}


# api.md §8, legacy GI service (OData v3): CSDL 3.0 types. GI date-times carry no offset, so
# they are Edm.DateTime there (v4 has no such type and declares them Edm.DateTimeOffset).
EDM_V3 = {**EDM, "DateTime": "Edm.DateTime"}
CSDL_V3_NS = "http://schemas.microsoft.com/ado/2009/11/edm"


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
    """$filter / $orderby / $skip / $top / $select over flat rows.

    ``expand``: the DAC service accepts ``$expand`` (api.md §8; the GI service refuses it);
    ``literal`` adjusts date-time literals (DAC: SQL Server ticks, api.md §3).
    """

    def __init__(
        self,
        params: dict[str, str],
        cols: dict[str, Column],
        tz: dt.tzinfo,
        *,
        v3: bool = False,
        expand: bool = False,
        literal: Callable[[dt.datetime], dt.datetime] | None = None,
    ) -> None:
        refused = UNSUPPORTED - {"$expand"} if expand else UNSUPPORTED
        for name in params:
            if name in refused:
                raise ODataError(400, f"The query parameter '{name}' is not supported.")
            if name.startswith("$") and name not in KNOWN | {"$expand"}:
                raise ODataError(400, f"The query parameter '{name}' is not supported.")
        self.cols = cols
        self.tz = tz
        self.used: set[str] = set()
        self.filter = None
        if params.get("$filter"):
            parser = FilterParser(params["$filter"], cols, tz, v3=v3, literal=literal)
            self.filter = parser.parse()
            self.used = parser.used
        self.order = self._orderby(params.get("$orderby", ""))
        self.top = _nonneg(params, "$top")
        self.skip = _nonneg(params, "$skip") or 0
        select = [s.strip() for s in params.get("$select", "").split(",") if s.strip()]
        self.expand = [s.strip() for s in params.get("$expand", "").split(",") if s.strip()]
        for name in select:
            if name not in cols and name not in self.expand:
                raise ODataError(400, f"Could not find a property named '{name}'.")
        self.select = [s for s in select if s in cols] or list(cols)

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
                data.sort(key=functools.partial(_column_key, name), reverse=desc)
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


def _column_key(name: str, row: dict[str, Any]) -> tuple[int, Any]:
    return _sort_key(row[name])


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
