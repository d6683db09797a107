"""DAC OData streams (``dac_<DAC>``): one database table each, read in keyset pages.

docs/acumatica-api.md §8: the DAC service sorts (``$orderby``) and filters on any column, and
each table carries its own ``LastModifiedDateTime`` (§3: a line's edit moves only the line's
stamp). So a read is one sorted walk: ``$orderby=<stamp>,<keys>``, ``$top=page_size``, and
each next page starts strictly after the previous page's last (stamp, keys). No ``$skip``:
positions are values, so rows deleted or changed during the read shift nothing, and ⌈N/page⌉
requests read N rows. A table without a stamp is walked the same way on its keys alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tap_acumatica.errors import AnswerShapeError
from tap_acumatica.odata.service import literal
from tap_acumatica.odata.values import record_converter
from tap_acumatica.stamps import from_ms, parse_ms, tick_floor
from tap_acumatica.sync.keyset import KeysetPage
from tap_acumatica.sync.paging import page_consistently
from tap_acumatica.sync.stream import WindowedStream

if TYPE_CHECKING:
    from singer_sdk import Tap

    from tap_acumatica.connection import Connection
    from tap_acumatica.odata.model import EntityType, Service
    from tap_acumatica.odata.service import ODataServices
    from tap_acumatica.odata.values import Converter
    from tap_acumatica.settings import Settings
    from tap_acumatica.sync.scheduler import WindowResult
    from tap_acumatica.sync.windows import Window

#: The DAC column every record's ``id`` comes from: the REST ``id`` and §10's ``RefNoteID``.
NOTE_ID = "NoteID"
_NUMBERS = frozenset(
    {"Edm.Decimal", "Edm.Double", "Edm.Single", "Edm.Int16", "Edm.Int32", "Edm.Int64"}
    | {"Edm.Byte", "Edm.SByte"}
)


def after(position: Sequence[tuple[str, str]]) -> str:
    """``$filter`` text: rows sorted strictly after ``position`` ((column, literal) pairs).

    ``[(a, 1), (b, 2)]`` → ``a gt 1 or (a eq 1 and b gt 2)``: the sort order's lexicographic
    "greater than", so a position between two equal stamps (a tie) is exact.
    """
    (column, value), rest = position[0], position[1:]
    if not rest:
        return f"{column} gt {value}"
    inner = after(rest)
    inner = f"({inner})" if len(rest) > 1 else inner
    return f"{column} gt {value} or ({column} eq {value} and {inner})"


def keyset_filter(
    position: Sequence[tuple[str, str]], bounds: tuple[str, str, str] | None
) -> str | None:
    """The ``$filter`` of one keyset page.

    ``bounds``: (stamp column, low literal, high literal) of an incremental read, or None for
    a whole table; ``position``: the previous page's last row, stamp first (empty: first page).
    """
    if bounds is None:
        return after(position) if position else None
    stamp, low, high = bounds
    if not position:
        return f"{stamp} ge {low} and {stamp} lt {high}"
    return f"{stamp} lt {high} and ({after(position)})"


def value_literal(edm: str, value: Any, service: Service) -> str:
    """A key value as an OData v4 literal (``'O''Brien'``, ``42``, a bare GUID or date-time)."""
    if value is None:
        return "null"
    if edm in ("Edm.DateTimeOffset", "Edm.DateTime"):
        ms = parse_ms(str(value))
        if ms is None:
            msg = f"cannot page on the date-time key value {value!r}"
            raise AnswerShapeError(msg)
        return literal(ms, service)
    if edm == "Edm.Boolean":
        return "true" if value is True or str(value).lower() == "true" else "false"
    if edm in _NUMBERS or edm == "Edm.Guid":
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class DacStream(WindowedStream):
    """The rows of one DAC (database table) of the DAC OData service."""

    keyset = True

    def __init__(
        self,
        tap: Tap,
        *,
        connection: Connection,
        settings: Settings,
        services: ODataServices,
        etype: EntityType,
        name: str,
        schema: dict[str, Any],
        replication_key: str | None,
    ) -> None:
        """A stream over the entity set ``etype.name``; no network I/O here."""
        super().__init__(
            tap,
            connection=connection,
            settings=settings,
            name=name,
            schema=schema,
            replication_key=replication_key,
        )
        self.services = services
        self.etype = etype
        self.noted = etype.property(NOTE_ID) is not None
        # docs/acumatica-api.md §10: NoteID is what REST calls ``id`` and what deletions
        # report; without one the table's own key is the record's identity.
        self.primary_keys = ["id"] if self.noted else list(etype.keys)
        self._service: Service | None = None
        self._path = ""
        self._query: dict[str, str] = {}
        self._convert: Converter | None = None

    # -- what is asked for ------------------------------------------------------------------

    def columns(self) -> list[str]:
        """``$select``: the selected columns, plus the keys, the stamp and NoteID (always)."""
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        always = {*self.etype.keys, self.replication_key, NOTE_ID if self.noted else None}
        return [
            p.name
            for p in self.etype.properties
            if p.name in always or (p.name in props and self._selected(p.name))
        ]

    def _selected(self, name: str) -> bool:
        return bool(self.mask.get(("properties", name), True))

    def _order(self) -> list[str]:
        stamp = [self.replication_key] if self.replication_key else []
        return [*stamp, *self.etype.keys]

    def prepare(self) -> None:
        """The service, path, query and converter, once before any request."""
        self._service = self.services.service("dac")
        self._path = self.services.path("dac", self.etype.name)
        columns = self.columns()
        self._query = {"$select": ",".join(columns)}
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        keep = [c for c in columns if c in props]
        # docs/acumatica-api.md §8: OData keeps the CHAR padding REST trims; trimmed here so
        # keys equal REST's values (the keyset position keeps the raw, padded value).
        text = [p.name for p in self.etype.properties if p.edm == "Edm.String"]
        self._convert = record_converter(
            self.etype, self.settings.date_only_time_zone, selected=keep, trim=text
        )

    # -- reading ----------------------------------------------------------------------------

    def _ready(self) -> Service:
        """The DAC service, preparing the stream on first use (a ``--check`` or probe call)."""
        if self._service is None:
            self.prepare()
        assert self._service is not None
        return self._service

    def _rows(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One GET of the entity set: the raw rows of its ``value`` array."""
        self.check_running()
        body = self.connection.client.get_json(self._path, params, stream=self.name)
        rows = body.get("value") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            msg = f"{self.name}: GET {self._path} did not return an OData value array"
            raise AnswerShapeError(msg)
        return rows

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        """A Singer record: the converted columns, ``id`` = NoteID in lower case."""
        assert self._convert is not None
        out = self._convert(row)
        if self.noted:
            note = row.get(NOTE_ID)
            if not isinstance(note, str) or not note:
                keys = ", ".join(f"{k}={row.get(k)!r}" for k in self.etype.keys)
                msg = f"{self.name}: the row {keys} has no {NOTE_ID}, the id of its record"
                raise AnswerShapeError(msg)
            out = {"id": note.lower(), **out}
        return out

    def _walk(self, bounds: tuple[str, str, str] | None) -> Iterator[list[dict[str, Any]]]:
        """Raw pages in (stamp, keys) order, each after the last row of the one before."""
        service = self._ready()
        order, size = self._order(), self.settings.page_size
        types = {p.name: p.edm for p in self.etype.properties}
        base = {**self._query, "$orderby": ",".join(order), "$top": size}
        position: list[tuple[str, str]] = []
        while True:
            where = keyset_filter(position, bounds)
            rows = self._rows({**base, "$filter": where})
            yield rows
            if len(rows) < size:
                return
            last = rows[-1]
            new = [(c, value_literal(types.get(c, ""), last.get(c), service)) for c in order]
            if new == position:  # the service ignored the filter: it would loop forever
                msg = f"{self.name}: GET {self._path} returned the same page again ({where})"
                raise AnswerShapeError(msg)
            position = new

    def read_pages(self, begin_ms: int, end_ms: int) -> Iterator[KeysetPage]:
        """Rows stamped in ``[begin_ms, end_ms)``, in keyset pages (see ``sync.keyset``)."""
        service = self._ready()
        stamp = self.replication_key or ""
        bounds = (stamp, literal(begin_ms, service), literal(end_ms, service))
        size = self.settings.page_size
        for rows in self._walk(bounds):
            records = [self.record(r) for r in rows]
            if len(rows) < size:
                yield KeysetPage(records, end_ms)
                return
            last = parse_ms(str(records[-1].get(stamp)))
            # The last stamp's tick: every row before it has left (ties may follow).
            yield KeysetPage(records, begin_ms if last is None else tick_floor(last))

    def fetch_all(self) -> Iterator[dict[str, Any]]:
        """Every row of a table read without a stamp, in key order."""
        if self.etype.keys:
            for rows in self._walk(None):
                yield from (self.record(r) for r in rows)
            return
        self._ready()
        # No key to continue after: overlapping $top/$skip pages detect any shift.
        yield from page_consistently(
            lambda skip, top: [
                self.record(r) for r in self._rows({**self._query, "$top": top, "$skip": skip})
            ],
            page_size=self.settings.page_size,
            what=f"{self.name} rows",
        )

    def fetch_window(self, window: Window) -> WindowResult:
        """Unused: a keyset stream is read by :meth:`read_pages`."""
        raise NotImplementedError

    # -- the time-semantics probe (docs/acumatica-api.md §3, §13) ---------------------------

    def fetch_sample(self) -> dict[str, Any] | None:
        """One row with its stamp (``$top=1``)."""
        self._ready()
        rows = self._rows({**self._query, "$top": 1})
        return self.record(rows[0]) if rows else None

    def fetch_offset_window(self, window: Window, offsets: tuple[int, int]) -> list[dict[str, Any]]:
        """``window`` with its bounds written at ``offsets`` minutes east of UTC.

        docs/acumatica-api.md §8: DAC literals are bare ISO date-times with an offset
        (``2022-07-13T00:00-04:00``); the same instants far from UTC.
        """
        self._ready()
        key = self.replication_key
        low, high = (
            from_ms(ms)
            .astimezone(dt.timezone(dt.timedelta(minutes=m)))
            .isoformat("T", "milliseconds")
            for ms, m in ((window.start, offsets[0]), (window.end, offsets[1]))
        )
        where = f"{key} ge {low} and {key} lt {high}"
        rows = self._rows({**self._query, "$filter": where, "$top": self.settings.page_size})
        return [self.record(r) for r in rows]
