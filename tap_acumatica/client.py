"""The one base stream: an Acumatica contract-based entity read in change-stamp windows."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import msgspec
from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_acumatica.errors import AcumaticaAPIError
from tap_acumatica.extract import WindowResult, fetch_in_order
from tap_acumatica.progress import Progress
from tap_acumatica.records import (
    Converter,
    Plan,
    build_plan,
    page_decoder,
    parse_ms,
    transform,
)
from tap_acumatica.windows import (
    Window,
    WindowPlanner,
    iso_utc,
    page_consistently,
    to_ms,
)

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_acumatica.tap import TapAcumatica

#: Start of time when neither a bookmark nor start_date exists (SQL Server datetime allows
#: 1753, but no Acumatica record predates this).
DEFAULT_START = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
_SYSTEM = frozenset({"id", "note", "custom", "files"})


class AcumaticaStream(Stream):
    """Records of one top-level entity, e.g. ``SalesOrder``.

    Incremental streams read ``[bookmark - lookback, sync start - safety lag)`` as windows on the
    change field (see :mod:`tap_acumatica.windows` for why windows make the read loss-free) and
    commit ``bookmark = window end`` in a STATE message after every completed window.
    Entities without a change field are read whole, with :func:`page_consistently`.
    """

    # records.transform already builds records that match the schema exactly (unknown members
    # dropped, values typed), so the SDK's per-record conformance pass would only cost time.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(
        self,
        tap: TapAcumatica,
        *,
        name: str,
        schema: dict[str, Any],
        replication_key: str | None,
        natural_keys: Iterable[str] = (),
    ) -> None:
        """A stream for entity ``name``; no network I/O here."""
        super().__init__(tap=tap, schema=schema, name=name)
        self.acumatica = tap
        self.primary_keys = ["id"]
        self.replication_key = replication_key
        self.natural_keys = tuple(natural_keys)
        self._plan: Plan | None = None
        self._stop = threading.Event()
        self._warned = False

    # -- SDK hooks -------------------------------------------------------------------------

    @property
    @override
    def is_sorted(self) -> bool:
        """Records leave in change-stamp order, window by window, so a STATE is resumable.

        The SDK treats unsorted streams as non-resumable: it keeps progress in
        ``progress_markers``, only promotes it when the stream ends, and on an interrupt
        writes no usable bookmark (SINGER-SDK notes §3). Acumatica lists are not sorted
        (API-FACTS §4, no ``$orderby``), but windows are emitted strictly in order and each
        window's records are sorted by stamp before they leave, so the emitted stream *is*
        sorted and every STATE (the SDK's own, or ours at each window end) is safe to resume.
        """
        return True

    @property
    @override
    def check_sorted(self) -> bool:
        """Off: a record stamped before its window (a server rounding quirk) may step back.

        Stepping the bookmark back only re-reads more on resume; it can never skip a record.
        """
        return False

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: the bookmark is the committed window end, set in :meth:`_commit`."""
        return

    @override
    def get_records(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """Read the entity: windows on the change field, or the whole set for FULL_TABLE."""
        self._stop.clear()
        try:
            if self.replication_key:
                yield from self._incremental(context)
            else:
                yield from self._full_table()
        finally:
            self._stop.set()  # an interrupted sync: worker threads stop requesting

    # -- request building ------------------------------------------------------------------

    @property
    def path(self) -> str:
        """Instance path of the entity list, e.g. ``/entity/Default/24.200.001/SalesOrder``."""
        return f"{self.acumatica.endpoint_path}/{self.name}"

    @property
    def plan(self) -> Plan:
        """Transform plan compiled from the (catalog) schema."""
        if self._plan is None:
            self._plan = build_plan(self.schema)
        return self._plan

    def query_options(self) -> dict[str, str]:
        """``$select`` (selected fields + keys), ``$expand`` and ``$custom`` for list GETs.

        Built from the catalog schema and selection, so a deselected field is never downloaded
        and a ``--catalog`` run needs no document download (API-FACTS §4).
        """
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        always = {self.replication_key, *self.natural_keys}
        select: list[str] = []
        expand: list[str] = []
        for name, prop in props.items():
            if name in _SYSTEM:
                if name == "files" and self._selected(name):
                    expand.append("files")
                continue
            if _is_member(prop):
                if self._selected(name):
                    expand.extend(_expand_paths(name, prop))
                continue
            if name in always or self._selected(name):
                select.append(name)
        params = {"$select": ",".join(select)} if select else {}
        if expand:
            params["$expand"] = ",".join(expand)
        custom = [
            f"{view}.{field}"
            for view, vprop in ((props.get("custom") or {}).get("properties") or {}).items()
            for field in (vprop.get("properties") or {})
        ]
        if custom and self._selected("custom"):
            params["$custom"] = ",".join(custom)
        return params

    def _selected(self, name: str) -> bool:
        return bool(self.mask.get(("properties", name), True))

    # -- reading ---------------------------------------------------------------------------

    @cached_property
    def _page_decoder(self) -> tuple[msgspec.json.Decoder[Any], Converter]:
        return page_decoder(self.plan, self.name)

    def _records(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One list GET, as Singer records (decoded straight into typed structs)."""
        if self._stop.is_set():
            msg = f"{self.name}: sync interrupted"
            raise AcumaticaAPIError(msg)
        decoder, convert = self._page_decoder
        rows = self.acumatica.client.get_json(self.path, params, stream=self.name, decoder=decoder)
        if not isinstance(rows, list):
            msg = f"{self.name}: GET {self.path} returned {type(rows).__name__}, not a JSON array"
            raise AcumaticaAPIError(msg)
        if rows and not isinstance(rows[0], msgspec.Struct):  # another shape: plain JSON
            plan = self.plan
            return [transform(row, plan) for row in rows]
        return [convert(row) for row in rows]

    def _full_table(self) -> Iterator[dict[str, Any]]:
        base = self.query_options()
        size = self.acumatica.page_size
        yield from page_consistently(
            lambda skip, top: self._records({**base, "$top": top, "$skip": skip or None}),
            page_size=size,
            what=f"{self.name} records",
        )

    def _incremental(self, context: Context | None) -> Iterator[dict[str, Any]]:
        assert self.replication_key is not None
        config = self.config
        start = self.get_starting_timestamp(context) or DEFAULT_START
        state = self.get_context_state(context)
        previous = state.get("replication_key_value")
        begin = to_ms(_minus_lookback(start, float(config.get("lookback_minutes") or 0)))
        end = self.acumatica.sync_end_ms()
        if end <= begin:
            self.logger.info("%s: nothing to read before %s", self.name, iso_utc(end))
            return
        page_size = self.acumatica.page_size
        _ = self._page_decoder  # compiled once here, before worker threads use it
        planner = WindowPlanner(page_size=page_size, initial_width=end - begin)
        progress = Progress(
            self.logger,
            self.name,
            start=begin,
            end=end,
            interval=float(self.acumatica.setting("progress_interval_seconds", 30)),
        )
        self.logger.info(
            "%s: reading %s changed in [%s, %s)",
            self.name,
            self.replication_key,
            iso_utc(begin),
            iso_utc(end),
        )
        yield from self._emit_windows(
            context, planner, (begin, end), self.query_options(), progress
        )
        before = parse_ms(previous) if isinstance(previous, str) else None
        # Never leave the bookmark behind where the previous run had already got to.
        self._commit(context, max(end, before or end))
        progress.log(final=True)

    def _emit_windows(
        self,
        context: Context | None,
        planner: WindowPlanner,
        span: tuple[int, int],
        base: Mapping[str, Any],
        progress: Progress,
    ) -> Iterator[dict[str, Any]]:
        key = self.replication_key or ""
        sync_end = iso_utc(span[1])
        # Records stamped past the window that returned them, held until their window.
        later: dict[str, tuple[dict[str, Any], Window]] = {}
        for result in fetch_in_order(
            planner,
            *span,
            lambda window: self._fetch_window(window, base),
            pool=self.acumatica.pool,
            workers=self.acumatica.max_concurrent_requests,
        ):
            lower, upper = iso_utc(result.window.start), iso_utc(result.window.end)
            batch: dict[str, dict[str, Any]] = {}
            for record in result.records:
                stamp = record.get(key) or ""
                if stamp >= sync_end:
                    # Restamped after the server matched it, i.e. changed after the sync
                    # started: the next run reads it (the bookmark never passes sync_end).
                    continue
                if stamp >= upper:
                    # Emitting it now could carry a resumed bookmark past unread records.
                    later[record["id"]] = (record, result.window)
                    continue
                if stamp and stamp < lower:
                    self._out_of_window(record, result.window)
                batch[record["id"]] = record
            for rid in [rid for rid, (r, _) in later.items() if (r.get(key) or "") < upper]:
                record, returned_by = later.pop(rid)
                self._out_of_window(record, returned_by)
                batch.setdefault(rid, record)
            records = sorted(batch.values(), key=lambda r: r.get(key) or "")
            yield from records
            self._commit(context, result.window.end)
            progress.advance(
                covered=result.window.end, records=len(records), requests=result.requests
            )

    def _out_of_window(self, record: Mapping[str, Any], window: Window) -> None:
        if not self._warned:
            self._warned = True
            self.logger.warning(
                "%s: record %s has %s=%s, outside the window %s that returned it; it is still "
                "emitted, in stamp order. If this repeats, the instance may "
                "compare datetimeoffset literals in another time zone (API-FACTS §3, §13).",
                self.name,
                record.get("id"),
                self.replication_key,
                record.get(self.replication_key or ""),
                window,
            )

    def _fetch_window(self, window: Window, base: Mapping[str, Any]) -> WindowResult:
        """Runs on a worker thread: one request, or a full re-read of a tie burst."""
        assert self.replication_key is not None
        size = self.acumatica.page_size
        params = {**base, "$filter": window.filter(self.replication_key), "$top": size}
        rows = self._records(params)
        requests = 1
        if len(rows) >= size:
            if window.splittable:
                tie, sample = _page_stamps(rows, self.replication_key)
                return WindowResult(window, full=True, tie=tie, sample=sample)
            # A tie burst: more than a page of records share one stamp, nothing can split it.
            self.logger.info(
                "%s: more than %d records changed at %s; paging them", self.name, size, window
            )
            counter = [0]

            def page(skip: int, top: int) -> list[dict[str, Any]]:
                counter[0] += 1
                return self._records({**params, "$top": top, "$skip": skip or None})

            rows = list(
                page_consistently(
                    page, page_size=size, first_page=rows, what=f"{self.name} records at {window}"
                )
            )
            requests += counter[0]
        return WindowResult(window, rows, requests=requests)

    def _commit(self, context: Context | None, end_ms: int) -> None:
        """Bookmark = window end, then a STATE message: the completed prefix is durable."""
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = iso_utc(end_ms)
        self.acumatica.state_writer.write_state(self.tap_state)


def _minus_lookback(start: dt.datetime, minutes: float) -> dt.datetime:
    """``start - lookback``, never before :data:`DEFAULT_START` because of the look-back."""
    floor = min(start, DEFAULT_START)
    try:
        return max(start - dt.timedelta(minutes=max(0.0, minutes)), floor)
    except OverflowError:  # a look-back of millennia: read from the beginning
        return floor


def _page_stamps(rows: list[dict[str, Any]], key: str) -> tuple[int | None, tuple[int, ...]]:
    """A full page's tie (the stamp, in ms, shared by half of it, if any) and sorted stamps."""
    stamps: list[int] = []
    for row in rows:
        value = row.get(key)  # a record's value: unwrapped, in UTC
        ms = parse_ms(value) if isinstance(value, str) else None
        if ms is not None:
            stamps.append(ms)
    if not stamps:
        return None, ()
    stamp, count = Counter(stamps).most_common(1)[0]
    stamps.sort()
    return (stamp if count * 2 >= len(rows) else None), tuple(stamps)


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
