"""The Generic Inquiry dialect: one stream per GI exposed through OData (``gi_<GI>``).

docs/acumatica-api.md §8: a GI has no change stamp of its own, no ``$count`` and no server
paging; it answers ``$filter``, ``$orderby``, ``$top``, ``$skip`` and ``$select``. With a
``replication_key`` (``odata_inquiry_options``) a GI is read in windows on that column like a REST
entity (``WindowedStream``); without one it is read whole, in ``$top/$skip`` pages ordered on its
keys (or every column) through ``sync.paging.page_consistently``, whose overlapping pages detect
a shifting set. Primary keys: the option ``primary_keys``, else the ``$metadata`` keys, else none
(the target can then only append). Values are typed by ``odata.values``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from tap_acumatica.errors import AnswerShapeError, ConfigError, TimeSemanticsError
from tap_acumatica.odata.values import (
    DATETIME_TYPES,
    MetadataDrift,
    clock_literal,
    clocks_back_ms,
    record_converter,
)
from tap_acumatica.stamps import next_tick, parse_ms, tick_floor, to_ms
from tap_acumatica.sync.paging import page_consistently
from tap_acumatica.sync.stream import WindowedStream
from tap_acumatica.sync.windows import Window

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_acumatica.connection import Connection
    from tap_acumatica.odata import model
    from tap_acumatica.odata.service import ODataServices
    from tap_acumatica.settings import Settings

_DECODER = msgspec.json.Decoder(float_hook=Decimal)  # decimals stay exact (§3)


class GiStream(WindowedStream):
    """Rows of one Generic Inquiry."""

    def __init__(
        self,
        tap: Tap,
        *,
        connection: Connection,
        settings: Settings,
        name: str,
        schema: dict[str, Any],
        replication_key: str | None,
        services: ODataServices,
        etype: model.EntityType,
        options: model.InquiryOptions,
    ) -> None:
        """A stream over the GI ``etype``; no network I/O here."""
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
        self.options = options
        self.primary_keys = list(options.primary_keys or etype.keys)
        self.drift = MetadataDrift(name, self.logger.log)
        columns = [p.name for p in etype.properties]
        #: The identity of a row: its keys, else every column (rows equal in all are one).
        self._identity = tuple(self.primary_keys) or tuple(columns)
        #: ``$orderby`` of list pages: a stable order for ``$skip`` (§8: no server paging).
        self._order = tuple(self.primary_keys) or tuple(columns)
        self._query: dict[str, str] = {}
        self._path = ""
        self._version = "4"
        self._convert = record_converter(etype, settings.date_only_time_zone, drift=self.drift)
        self._checked = False  # the window literals were checked against one row (once)
        self._lock = threading.Lock()

    # -- the dialect protocol ---------------------------------------------------------------

    @override
    def prepare(self) -> None:
        """The service (detected on first use), the path with parameters, ``$select``."""
        self._check_options()
        service = self.services.service("gi")
        self._version = service.version
        # docs/acumatica-api.md §8: a GI with parameters is read as <GI>_WithParameters(P='v').
        self._path = self.services.path("gi", self.etype.name, self.options.parameters)
        columns = [p.name for p in self.etype.properties]
        always = {*self.primary_keys, self.replication_key}
        keep = [c for c in columns if c in always or self._selected(c)]
        self._query = {"$select": ",".join(keep)} if len(keep) < len(columns) else {}
        strings = [p.name for p in self.etype.properties if p.edm == "Edm.String"]
        self._convert = record_converter(
            self.etype,
            self.settings.date_only_time_zone,
            selected=keep,
            trim=strings,  # every text column: keys and values equal REST's trimmed ones (§8)
            drift=self.drift,
        )

    def _check_options(self) -> None:
        """The options name columns of the GI; the replication key a date-time one."""
        where = f"{self.name}: odata_inquiry_options.{self.etype.name}"
        missing = [k for k in self.options.primary_keys if self.etype.property(k) is None]
        if missing:
            msg = f"{where}.primary_keys names {', '.join(missing)}, not columns of the GI"
            raise ConfigError(msg)
        key = self.replication_key
        prop = self.etype.property(key) if key else None
        if key and (prop is None or prop.edm not in DATETIME_TYPES):
            what = f"a {prop.edm} column" if prop else "not one of its columns"
            msg = (
                f"{where}.replication_key {key!r} is {what}; windows need a date-time column "
                "of the Generic Inquiry, e.g. the Last Modified On of its main table "
                "(docs/acumatica-api.md §8)"
            )
            raise ConfigError(msg)

    def _selected(self, name: str) -> bool:
        return bool(self.mask.get(("properties", name), True))

    @override
    def identity(self, record: dict[str, Any]) -> str:
        """A GI row has no ``id``: it is its key columns' values (else all its columns')."""
        return json.dumps([record.get(c) for c in self._identity], default=str)

    @override
    def get_starting_timestamp(self, context: Context | None) -> dt.datetime | None:
        """The bookmark, earlier by the hour clocks go back when that happens near it.

        docs/acumatica-api.md §8: GI date-times carry no offset, so the repeated hour's rows
        read as its first pass; one changed in the second pass after the last read has a
        clock time before that read's end and only a read starting that much earlier sees it.
        """
        start = super().get_starting_timestamp(context)
        resumed = self.get_context_state(context).get("replication_key_value") is not None
        if start is None or not resumed:
            return start
        back = clocks_back_ms(to_ms(start), self.settings.date_only_time_zone)
        return start - dt.timedelta(milliseconds=back) if back else start

    @override
    def fetch_all(self) -> Iterator[dict[str, Any]]:
        """Every row, in overlapping ``$top/$skip`` pages ordered on the keys (or all columns)."""
        base = {**self._query, "$orderby": ",".join(self._order)}
        yield from page_consistently(
            lambda skip, top: self._rows({**base, "$top": top, "$skip": skip or None}),
            page_size=self.settings.page_size,
            what=f"{self.name} rows",
            ident=self.identity,
        )

    @override
    def fetch_page(self, window: Window, skip: int, top: int) -> list[dict[str, Any]]:
        """One page of ``window``'s rows, ordered on the replication key then the keys (§8)."""
        key = self.replication_key
        assert key is not None
        if not self._checked:
            self._check_literals()
        order = [key, *(c for c in self._order if c != key)]
        params = {**self._query, "$filter": self.window_filter(window), "$orderby": ",".join(order)}
        return self._rows({**params, "$top": top, "$skip": skip or None})

    def window_filter(self, window: Window) -> str:
        """``<rk> ge <start> and <rk> lt <end>`` with literals the GI compares as its rows.

        docs/acumatica-api.md §8: GI date-times are the tenant's clock time without an offset,
        and the tap reads them in ``date_only_time_zone`` (``odata.values``). So each bound is
        written as the tenant's clock time of that instant (``odata.values.clock_literal``): v3 as
        ``datetime'…'`` (no offset), v4 with the tenant's offset at that instant. An instance
        that compares the literal's clock time and one that compares its instant then select
        the same rows, the ones whose values the tap turns into stamps inside the window.
        """
        key = self.replication_key
        zone = self.settings.date_only_time_zone
        low = clock_literal(window.start, zone, self._version)
        high = clock_literal(window.end, zone, self._version)
        return f"{key} ge {low} and {key} lt {high}"

    # -- requests ---------------------------------------------------------------------------

    def _rows(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One GET of the GI: its rows as records, each with its identity in ``id``."""
        self.check_running()
        if not self._path:
            self.prepare()
        client = self.connection.client
        # The body is read as bytes: a GI may answer 200 with no body at all (§8), which the
        # client's JSON path would take for a truncated answer and retry.
        body = client.get_bytes(self._path, params, stream=self.name)
        if not body.strip():
            raise AnswerShapeError(self._empty_answer(params))
        try:
            answer = _DECODER.decode(body)
        except msgspec.DecodeError:  # a broken body: the client's JSON path retries it
            answer = client.get_json(self._path, params, stream=self.name)
        rows = answer.get("value") if isinstance(answer, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            msg = (
                f"{self.name}: GET {self._path} answered {type(answer).__name__}, not an OData "
                "object whose 'value' is a list of rows (docs/acumatica-api.md §8); check that "
                "base_url is the instance and that the GI is exposed through OData"
            )
            raise AnswerShapeError(msg)
        return [self._convert(row) for row in rows]

    def _empty_answer(self, params: Mapping[str, Any]) -> str:
        """One line for a 200 answer without a body (docs/acumatica-api.md §8)."""
        gi = self.etype.name
        if "$filter" in params:
            return (
                f"{self.name}: Acumatica answered an empty body to a $filter on "
                f"{self.replication_key} of the Generic Inquiry {gi}: it cannot filter on that "
                "column (a formula column? docs/acumatica-api.md §8); choose another "
                f"replication_key in odata_inquiry_options.{gi}, or none to read it whole"
            )
        return (
            f"{self.name}: Acumatica answered an empty body to a read of the Generic Inquiry "
            f"{gi} ordered by {params.get('$orderby')} (docs/acumatica-api.md §8: an empty body "
            "means a query it cannot run, e.g. on a formula column); set primary_keys in "
            f"odata_inquiry_options.{gi} to columns it can sort on"
        )

    # -- the literals' meaning ---------------------------------------------------------------

    def _check_literals(self) -> None:
        """Once per sync: one row's window, written as the tap writes windows, returns it.

        docs/acumatica-api.md §8 leaves open what instant a GI compares a date-time literal
        with; an instance that read it another way would select shifted windows. The check
        runs before any window is emitted, so no bookmark depends on it.
        """
        with self._lock:
            if self._checked:
                return
            key = self.replication_key
            assert key is not None
            sample = self._rows({**self._query, "$filter": f"{key} ne null", "$top": 1})
            stamp = parse_ms(sample[0].get(key) or "") if sample else None
            if stamp is not None:
                start = tick_floor(stamp)
                window = Window(start, next_tick(start))
                size = self.settings.page_size
                where = self.window_filter(window)
                rows = self._rows({**self._query, "$filter": where, "$top": size})
                stamps = [parse_ms(r.get(key) or "") for r in rows]
                inside = all(s is not None and window.start <= s < window.end for s in stamps)
                mark = self.identity(sample[0])
                missed = all(self.identity(r) != mark for r in rows)
                # A full page of one tick (a burst) need not hold the sample: inside is enough.
                if not inside or (missed and len(rows) < size):
                    raise TimeSemanticsError(self._misread(sample[0], window))
            self._checked = True

    def _misread(self, sample: dict[str, Any], window: Window) -> str:
        key = self.replication_key or ""
        return (
            f"{self.name}: the Generic Inquiry {self.etype.name} did not return its own row "
            f"with {key}={sample.get(key)} for the filter {self.window_filter(window)}: it "
            "reads date-time literals in another time zone than date_only_time_zone "
            "(docs/acumatica-api.md §8); set date_only_time_zone to the tenant's time zone"
        )
