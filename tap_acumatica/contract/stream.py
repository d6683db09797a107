"""The contract-based REST API dialect: one stream per top-level entity (e.g. ``SalesOrder``).

Reads ``GET /entity/{endpoint}/{version}/{Entity}`` with ``$select``/``$expand``/``$custom``
built from the catalog, windows as ``$filter`` ranges with date-time literals, in the syntax of
the endpoint's contract (``contract.query``), and list pages decoded straight into typed structs
(``contract.records``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from tap_acumatica.contract import ids, registry
from tap_acumatica.contract.query import list_options, odata_literal
from tap_acumatica.contract.records import (
    Converter,
    Plan,
    build_plan,
    derived_fields,
    page_decoder,
    transform,
)
from tap_acumatica.contract.values import Drift, check_ids, check_rows, unknown_members
from tap_acumatica.errors import AcumaticaAPIError, AnswerShapeError, OptimizationError
from tap_acumatica.sync.paging import page_consistently
from tap_acumatica.sync.stream import WindowedStream, minus_lookback
from tap_acumatica.sync.windows import Window

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    import datetime as dt

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_acumatica.connection import Connection
    from tap_acumatica.contract.endpoint import Endpoint
    from tap_acumatica.settings import Settings

# _sdc_deleted_at: a tombstone column (sync.deleted), never a field of the entity
_SYSTEM = frozenset({"id", "note", "custom", "files", "_sdc_deleted_at"})


def window_filter(window: Window, field: str, contract: str = "4") -> str:
    """The ``$filter`` expression selecting ``window`` on ``field``, in ``contract``'s syntax."""
    low, high = odata_literal(window.start, contract), odata_literal(window.end, contract)
    return f"{field} ge {low} and {field} lt {high}"


class ContractStream(WindowedStream):
    """Records of one top-level entity of a contract-based endpoint."""

    def __init__(
        self,
        tap: Tap,
        *,
        connection: Connection,
        settings: Settings,
        endpoint: Endpoint,
        name: str,
        schema: dict[str, Any],
        replication_key: str | None,
        natural_keys: tuple[str, ...] = (),
    ) -> None:
        """A stream for entity ``name``; no network I/O here."""
        super().__init__(
            tap,
            connection=connection,
            settings=settings,
            name=name,
            schema=schema,
            replication_key=replication_key,
        )
        self.endpoint = endpoint
        self.natural_keys = natural_keys
        self._plan: Plan | None = None
        #: Values and members unlike the endpoint document, told once per field (§3).
        self.drift = Drift(name, self.logger.log)
        self._scanned = False  # a page was read as plain JSON to name unknown members
        self._decoder: tuple[msgspec.json.Decoder[Any], Converter] | None = None
        self._query: dict[str, str] = {}
        self._contract = "4"
        self._keep: frozenset[str] | None = None  # set once $select is dropped (§4)
        self._expand_warned = False
        self._lock = threading.Lock()

    @property
    def plan(self) -> Plan:
        """Transform plan compiled from the (catalog) schema."""
        if self._plan is None:
            zone = self.settings.date_only_time_zone
            self._plan = build_plan(self.schema, zone, self.drift, stamp=self.replication_key)
        return self._plan

    def query_options(self, contract: str = "4") -> dict[str, str]:
        """``$select`` (selected fields + keys), ``$expand`` and custom fields for list GETs.

        Built from the catalog schema and selection, so a deselected field is never downloaded
        and a ``--catalog`` run needs no document download (docs/acumatica-api.md §4); in the
        syntax of ``contract`` (docs/acumatica-api.md §1.1).
        """
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        always = {self.replication_key, *self.natural_keys}
        codes = derived_fields(self.plan)  # Status_id is read through Status
        always.update(base for code, base in codes.items() if self._selected(code))
        select: list[str] = []
        expand: list[str] = []
        for name, prop in props.items():
            if name in _SYSTEM or name in codes:
                if name == "files" and self._selected(name):
                    expand.append("files")
                continue
            if _is_member(prop):
                if self._selected(name):
                    expand.extend(_expand_paths(name, prop))
                continue
            if name in always or self._selected(name):
                select.append(name)
        custom = [
            f"{view}.{field}"
            for view, vprop in ((props.get("custom") or {}).get("properties") or {}).items()
            for field in (vprop.get("properties") or {})
        ]
        wanted = custom if self._selected("custom") else []
        return list_options(select, expand, wanted, contract)

    def _selected(self, name: str) -> bool:
        return bool(self.mask.get(("properties", name), True))

    # -- the dialect protocol ---------------------------------------------------------------

    @override
    def prepare(self) -> None:
        """Query options and the page decoder, built once before the worker threads start."""
        self._contract = self.endpoint.contract()
        self._query = self.query_options(self._contract)
        if self._keep is not None:  # $select already failed in this run (§4)
            self._query.pop("$select", None)
        self._decoder = page_decoder(self.plan, self.name)
        self._warn_detail_freshness()

    @override
    def fetch_all(self) -> Iterator[dict[str, Any]]:
        """Every record, with overlapping ``$top/$skip`` pages (no change field to window on)."""
        base = self._query
        yield from page_consistently(
            lambda skip, top: self._records({**base, "$top": top, "$skip": skip or None}),
            page_size=self.settings.page_size,
            what=f"{self.name} records",
        )

    def first_page(self) -> list[dict[str, Any]]:
        """The first list page (``$top`` = page size, no filter); thread-safe."""
        return self._records({**self._query, "$top": self.settings.page_size})

    @override
    def fetch_page(self, window: Window, skip: int, top: int) -> list[dict[str, Any]]:
        """One list page of ``window``: ``$filter`` on the change field, ``$top``/``$skip``.

        ``$skip`` relies on a stable list order; the tap never sends ``$orderby`` here
        (docs/acumatica-api.md §4: lists come in key order), and the engine checks each
        page's overlap with the one before (``sync.window_pages``).
        """
        assert self.replication_key is not None
        where = window_filter(window, self.replication_key, self._contract)
        return self._records({**self._query, "$filter": where, "$top": top, "$skip": skip or None})

    def _records(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One list GET, as Singer records (decoded straight into typed structs)."""
        self.check_running()
        if self._decoder is None:
            self.prepare()
        assert self._decoder is not None
        decoder, convert = self._decoder
        # Until a page has been seen as plain JSON, read as such: the typed decoder skips
        # members the document does not know, and those are named once (version drift, §3).
        use = decoder if self._scanned else None
        path = f"{self.endpoint.path()}/{self.name}"
        try:
            rows = self.connection.client.get_json(path, params, stream=self.name, decoder=use)
        except AcumaticaAPIError as exc:
            if not self._drop_select(exc, params):
                raise
            params = {k: v for k, v in params.items() if k != "$select"}
            rows = self.connection.client.get_json(path, params, stream=self.name, decoder=use)
        where = f"{self.name}: GET {path}"
        if not isinstance(rows, list):
            msg = f"{where} returned {type(rows).__name__}, not a JSON array"
            raise AnswerShapeError(msg)
        if rows and not isinstance(rows[0], msgspec.Struct):  # another shape: plain JSON
            check_rows(rows, where)
            plan = self.plan
            if not self._scanned:
                self._scanned = True
                self.drift.unknown(unknown_members(rows, plan))
            records = [transform(row, plan) for row in rows]
        else:
            records = [convert(row) for row in rows]
        check_ids(records, where)
        keep = self._keep
        if keep is not None and "$select" not in params:  # the tap does $select's work
            return [{k: v for k, v in r.items() if k in keep} for r in records]
        return records

    # -- contract versions, optimizer errors, detail freshness (docs/acumatica-api.md §1.1) --

    def _drop_select(self, exc: AcumaticaAPIError, params: Mapping[str, Any]) -> bool:
        """On "Optimization cannot be performed" for a ``$select``: read without it from now on.

        docs/acumatica-api.md §4: a plain ``$select`` can cause it; the same GET without one
        works. The stream then drops unselected fields itself, for the rest of the run. Not on
        contract 5 with custom fields, which only ``$select`` can name (§1.1).
        """
        if not isinstance(exc, OptimizationError) or "$select" not in params:
            return False
        if self._contract == "5" and self._selected("custom") and "." in params["$select"]:
            return False
        with self._lock:
            if self._keep is None:
                props = self.schema.get("properties") or {}
                always = {"id", self.replication_key, *self.natural_keys}
                self._keep = frozenset(n for n in props if n in always or self._selected(n))
                # Rebound, not changed in place: worker threads copy it concurrently.
                self._query = {k: v for k, v in self._query.items() if k != "$select"}
                self.logger.info(
                    "%s: Acumatica cannot optimize this list query with $select "
                    "(docs/acumatica-api.md §4); reading without $select for the rest of the "
                    "run and dropping unselected fields here",
                    self.name,
                )
        return True

    def _expanded_members(self) -> list[str]:
        """The selected detail/linked members this stream reads with ``$expand``."""
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        return [
            n for n, p in props.items() if n not in _SYSTEM and _is_member(p) and self._selected(n)
        ]

    def _warn_detail_freshness(self) -> None:
        """Once per run: an incremental stream with ``expand`` misses detail-only edits (§3)."""
        if self._expand_warned or not self.replication_key:
            return
        members = ", ".join(self._expanded_members())
        if not members:
            return
        self._expand_warned = True
        days = self.settings.expand_lookback_days
        cover = (
            f"re-reading {days:g} days before the bookmark (expand_lookback_days) catches such "
            "an edit only while the record's own change is that recent"
            if days
            else "set expand_lookback_days to re-read recent records on every run"
        )
        self.logger.warning(
            "%s: incremental on %s with expand %s: an edit to only an expanded detail line, "
            "linked entity, contact or address does not move %s (docs/acumatica-api.md §3), so "
            "the changed %s arrive only when the record itself next changes or on a full "
            "refresh of the stream; %s",
            self.name,
            self.replication_key,
            members,
            self.replication_key,
            members,
            cover,
        )

    @override
    def get_starting_timestamp(self, context: Context | None) -> dt.datetime | None:
        """The bookmark, ``expand_lookback_days`` earlier for a stream with ``expand``.

        Why: a detail-only edit leaves the header's stamp alone (docs/acumatica-api.md §3), so
        re-reading recent headers is the only way this dialect can see it. Only a resumed sync
        moves back; the first one starts at ``start_date`` as configured.
        """
        start = super().get_starting_timestamp(context)
        days = self.settings.expand_lookback_days
        resumed = self.get_context_state(context).get("replication_key_value") is not None
        if start is None or not days or not resumed or not self._expanded_members():
            return start
        return minus_lookback(start, days * 24 * 60)

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """Before the SDK reads the bookmark: adopt one written under a renamed change field.

        The SDK ignores a bookmark whose ``replication_key`` differs from the stream's. A
        SalesOrder state written on 24.200.001 (``LastModified``) holds the same stamp that
        26.200.001 calls ``LastModifiedDateTime`` (docs/acumatica-api.md §1.1, §2.1).
        It is also the SDK's last hook before the SCHEMA message: a FULL_TABLE stream's ids
        are checked for stability there, and its key set (``contract.ids``).
        """
        if not self.replication_key and self.selected:
            self.prepare()  # the query and decoder the check's reads need
            ids.settle_key(self)
        state = self.get_context_state(context)
        old = state.get("replication_key")
        new = self.replication_key
        renamed = registry.RENAMED_REPLICATION_KEYS.get(str(old))
        if new and old != new and renamed == new and state.get("replication_key_value"):
            state["replication_key"] = new
            self.logger.info(
                "%s: resuming the bookmark %s of %s under %s, its name on this endpoint",
                self.name,
                state["replication_key_value"],
                old,
                new,
            )
        return super().get_replication_key_signpost(context)

    # -- the time-semantics probe (docs/acumatica-api.md §3, §13) ---------------------------

    @override
    def fetch_sample(self) -> dict[str, Any] | None:
        """One record of the entity (``$top=1``, no filter) with its change stamp."""
        if self._decoder is None:
            self.prepare()
        rows = self._records({**self._query, "$top": 1})
        return rows[0] if rows else None

    @override
    def fetch_offset_window(self, window: Window, offsets: tuple[int, int]) -> list[dict[str, Any]]:
        """``window`` read with its bounds written at ``offsets`` (minutes east of UTC)."""
        assert self.replication_key is not None
        key = self.replication_key
        low = self.offset_literal(window.start, offsets[0])
        high = self.offset_literal(window.end, offsets[1])
        where = f"{key} ge {low} and {key} lt {high}"
        return self._records({**self._query, "$filter": where, "$top": self.settings.page_size})

    def offset_literal(self, ms: int, minutes: int) -> str:
        """A date-time literal for ``ms`` written at an offset of ``minutes``, same instant."""
        import datetime as dt  # noqa: PLC0415 - only for the once-per-run probe

        from tap_acumatica.stamps import from_ms  # noqa: PLC0415

        zone = dt.timezone(dt.timedelta(minutes=minutes))
        text = from_ms(ms).astimezone(zone).isoformat(timespec="milliseconds")
        return text if self._contract == "5" else f"datetimeoffset'{text}'"


def _is_member(prop: Mapping[str, Any]) -> bool:
    """A linked (object) or detail (array of objects) member rather than a value field."""
    types = prop.get("type")
    types = set(types) if isinstance(types, list) else {types}
    if "object" in types and "properties" in prop:
        return True
    items = prop.get("items") or {}
    return "array" in types and "properties" in items


def _expand_paths(name: str, prop: Mapping[str, Any]) -> list[str]:
    """``$expand`` paths for a member and the members nested in its schema."""
    paths = [name]
    inner = prop.get("items") if "properties" in (prop.get("items") or {}) else prop
    for sub, sprop in ((inner or {}).get("properties") or {}).items():
        if sub == "files":
            paths.append(f"{name}/files")
        elif _is_member(sprop):
            paths.extend(f"{name}/{p}" for p in _expand_paths(sub, sprop))
    return paths
