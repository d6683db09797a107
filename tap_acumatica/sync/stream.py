"""``WindowedStream``: windows, emission order, commits and progress for any API dialect.

A dialect (``contract.stream``; later ``odata``) subclasses it and answers three questions:
:meth:`~WindowedStream.prepare` (compile what the worker threads share),
:meth:`~WindowedStream.fetch_window` (the records whose change stamp lies in one window, or a
full page that says where to cut) and :meth:`~WindowedStream.fetch_all` (every record, for
entities without a change field). A dialect whose source sorts sets ``keyset`` and yields
sorted pages from :meth:`~WindowedStream.read_pages` instead (``sync.keyset``). A stream with a
``deletions`` feed emits tombstones after its records (``sync.deleted``). Everything else, and
every guarantee, lives here.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_acumatica import sdk
from tap_acumatica.errors import (
    EntityUnavailableError,
    ShuttingDownError,
    StampInconsistencyError,
)
from tap_acumatica.stamps import DEFAULT_START, iso_utc, parse_ms, tick_floor, to_ms
from tap_acumatica.sync import consistency, deleted, prefetch
from tap_acumatica.sync.keyset import KeysetPage, PageChecker
from tap_acumatica.sync.paging import page_consistently
from tap_acumatica.sync.progress import Progress
from tap_acumatica.sync.report import RunReport
from tap_acumatica.sync.scheduler import Paging, WindowResult, fetch_in_order
from tap_acumatica.sync.window_pages import pages_per_window
from tap_acumatica.sync.windows import PageStamps, Window, WindowPlanner

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_acumatica.connection import Connection
    from tap_acumatica.settings import Settings
    from tap_acumatica.sync.deleted import DeletedSource


class WindowedStream(Stream):
    """Records of one source table, read ``[bookmark - lookback, sync start - safety lag)``.

    The range is read as windows on the change field (see ``sync.windows`` for why windows
    make the read loss-free); ``bookmark = window end`` is committed in a STATE message after
    every completed window, or in BATCH mode after the file that holds it (:meth:`_commit`).
    Streams without a change field are read whole (``fetch_all``).
    """

    # The dialects build records that match the schema exactly (unknown members dropped,
    # values typed), so the SDK's per-record conformance pass would only cost time.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: True: the dialect reads sorted pages (:meth:`read_pages`), not windows.
    keyset = False
    #: Where this stream's deleted records come from (set by the catalog), if anywhere.
    deletions: DeletedSource | None = None

    def __init__(
        self,
        tap: Tap,
        *,
        connection: Connection,
        settings: Settings,
        name: str,
        schema: dict[str, Any],
        replication_key: str | None,
    ) -> None:
        """A stream over ``connection``; no network I/O here."""
        super().__init__(tap=tap, schema=schema, name=name)
        self.connection = connection
        self.settings = settings
        self.primary_keys = ["id"]
        self.replication_key = replication_key
        self._stop = threading.Event()
        report = getattr(tap, "run_report", None)
        self.report = report if isinstance(report, RunReport) else RunReport()

    # -- what a dialect provides ----------------------------------------------------------

    def prepare(self) -> None:
        """Compile what the worker threads share, once per sync, before they start."""

    def fetch_page(self, window: Window, skip: int, top: int) -> list[dict[str, Any]]:
        """Runs on a worker thread: one list page of the records stamped in ``window``,
        ``top`` of them from position ``skip``, in a list order that is the same for every
        page (REST: key order, no ``$orderby``, docs/acumatica-api.md §4)."""
        raise NotImplementedError

    def fetch_window(self, window: Window) -> WindowResult:
        """Runs on a worker thread: the records stamped in ``window``, or a full first page.

        A full window is paged on by the scheduler (``sync.window_pages``: a tie burst, one
        tick wide, on several sessions at once) or re-cut; without scheduler paging a tie
        burst is paged whole here, page after page.
        """
        size = self.settings.page_size
        key = self.replication_key or ""
        rows = self.fetch_page(window, 0, size)
        if len(rows) < size:
            return WindowResult(window, rows)
        if window.splittable or self._pages_on():
            stamps = PageStamps.of(rows, key)
            return WindowResult(window, rows, full=True, tie=stamps.tie, sample=stamps.sample)
        self.logger.info(
            "%s: more than %d records changed at %s; paging them", self.name, size, window
        )
        rows = list(
            page_consistently(
                lambda skip, top: self.fetch_page(window, skip, top),
                page_size=size,
                first_page=rows,
                what=f"{self.name} records at {window}",
                ident=self.identity,
            )
        )
        return WindowResult(window, rows)

    @abstractmethod
    def fetch_all(self) -> Iterator[dict[str, Any]]:
        """Every record of a stream without a change field, each ``id`` once."""

    def read_pages(self, begin_ms: int, end_ms: int) -> Iterator[KeysetPage]:
        """Keyset dialects: the records stamped in ``[begin_ms, end_ms)``, page by page,
        in stamp order (see ``sync.keyset``)."""
        raise NotImplementedError

    def fetch_sample(self) -> dict[str, Any] | None:
        """One record with its change stamp (a one-record list GET), for the time probe.

        None (the default) when the dialect has no such probe or the entity has no record.
        """
        return None

    def fetch_offset_window(self, window: Window, offsets: tuple[int, int]) -> list[dict[str, Any]]:
        """The records of ``window``, its start and end literals written with ``offsets``.

        ``offsets`` are minutes east of UTC: the same instants, far from UTC, so an instance
        that ignores a literal's offset selects another range. Needed with ``fetch_sample``.
        """
        raise NotImplementedError

    def identity(self, record: dict[str, Any]) -> str:
        """What makes a record unique within a window or a paged set: its ``id``."""
        return str(record.get("id"))

    def check_running(self) -> None:
        """Raise once the sync is interrupted, so worker threads stop requesting."""
        if self._stop.is_set():
            msg = f"{self.name}: sync interrupted"
            raise ShuttingDownError(msg)

    # -- SDK hooks -------------------------------------------------------------------------

    @property
    @override
    def is_sorted(self) -> bool:
        """Records leave in change-stamp order, window by window, so a STATE is resumable.

        The SDK treats unsorted streams as non-resumable: it keeps progress in
        ``progress_markers``, only promotes it when the stream ends, and on an interrupt
        writes no usable bookmark. Acumatica lists are not sorted (docs/acumatica-api.md §4,
        no ``$orderby``), but windows are emitted strictly in order and each window's records
        are sorted by stamp before they leave, so the emitted stream *is* sorted and every
        STATE (the SDK's own, or ours at each window end) is safe to resume.
        """
        return True

    @property
    @override
    def check_sorted(self) -> bool:
        """Off: order is checked here, window by window, before records leave.

        Every record must lie in the window that returned it (``sync.consistency``), so the
        emitted stream is sorted by construction; the SDK's check would only cost time.
        """
        return False

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: the bookmark is the committed window end, set in :meth:`_commit`."""
        return

    @override
    def get_records(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """Read the stream: windows on the change field, or the whole set for FULL_TABLE."""
        self._stop.clear()
        try:
            self.prepare()
            if self.replication_key:
                yield from self._incremental(context)
            else:
                yield from self.fetch_all()
        except (EntityUnavailableError, StampInconsistencyError) as exc:
            # One stream's failure must not stop the others (docs/acumatica-api.md §9): the
            # SDK finishes this stream with its last committed bookmark; the CLI reports it.
            self._stopped(exc)
        finally:
            self._stop.set()  # an interrupted sync: worker threads stop requesting

    def _stopped(self, exc: EntityUnavailableError | StampInconsistencyError) -> None:
        """One warning now, and one line for the end of the run."""
        if isinstance(exc, EntityUnavailableError):
            line = f"{self.name} was not read: {exc.reason}; to fix: {exc.fix}"
        else:
            line = f"{self.name} stopped at its last consistent window: {exc}"
        self.logger.warning("%s", line)
        self.report.failed(self.name, line)

    # -- incremental reading ---------------------------------------------------------------

    def _incremental(self, context: Context | None) -> Iterator[dict[str, Any]]:
        start = self.get_starting_timestamp(context) or DEFAULT_START
        previous = self.get_context_state(context).get("replication_key_value")
        # Window bounds lie on 1/300 s ticks (docs/acumatica-api.md §3): rounded down, so the
        # read starts no later and the bookmark never passes the sync end.
        begin = tick_floor(to_ms(minus_lookback(start, self.settings.lookback_minutes)))
        end = tick_floor(self.connection.sync_end_ms(self.settings.safety_lag_seconds))
        if end <= begin:
            self.logger.info("%s: nothing to read before %s", self.name, iso_utc(end))
            return
        progress = Progress(
            self.logger,
            self.name,
            start=begin,
            end=end,
            interval=self.settings.progress_interval_seconds,
            sent=lambda: self.connection.client.sent.of(self.name),
            unit="pages" if self.keyset else "windows",
        )
        self.logger.info(
            "%s: reading %s changed in [%s, %s)",
            self.name,
            self.replication_key,
            iso_utc(begin),
            iso_utc(end),
        )
        if self.report.needs_probe(self.tap_state, self._server_now_us() // 1000):
            self._probe_time_semantics(context)
        since, resumed = deleted.since(self.get_context_state(context), begin)
        # Its first window may have been read ahead (issue 15), the next streams' are now.
        end = progress.end = prefetch.start(self, begin, end, progress)
        if self.keyset:
            yield from self._emit_pages(context, (begin, end), progress)
        else:
            pages = pages_per_window(self.settings.page_size)[0] if self._pages_on() else 1
            planner = WindowPlanner(
                page_size=self.settings.page_size, initial_width=end - begin, pages=pages
            )
            yield from self._emit_windows(context, planner, (begin, end), progress)
        yield from self._emit_deletions(context, (since, end, resumed))
        before = parse_ms(previous) if isinstance(previous, str) else None
        # Never leave the bookmark behind where the previous run had already got to.
        self._commit(context, max(end, before or end))
        progress.log(final=True)

    def _emit_windows(
        self,
        context: Context | None,
        planner: WindowPlanner,
        span: tuple[int, int],
        progress: Progress,
    ) -> Iterator[dict[str, Any]]:
        key = self.replication_key or ""
        size, paging = self.settings.page_size, None
        if self._pages_on():
            paging = Paging(self.fetch_page, size, key, self.identity, pages_per_window(size)[1])
        workers, pool = self.settings.max_concurrent_requests, self.connection.pool
        fetch = prefetch.fetcher(self, self.fetch_window)  # the first window read ahead, if any
        for result in fetch_in_order(
            planner, *span, fetch, pool=pool, workers=workers, paging=paging
        ):
            # The whole window is checked before any of it leaves: an inconsistent window
            # emits nothing, and the bookmark stays at the end of the one before.
            records = consistency.checked_window(
                self.name,
                key,
                result.window,
                result.records,
                self._server_now_us(),
                log=self.logger.info,
                ident=self.identity,
            )
            yield from records
            self._commit(context, result.window.end)
            progress.advance(covered=result.window.end, records=len(records))
        if paging is not None and paging.wasted[0]:
            self.logger.info("%s: %d page(s) read past a window's end", self.name, *paging.wasted)

    def _pages_on(self) -> bool:
        """Full windows are paged on when the dialect fetches pages (and pages hold 2+)."""
        own = type(self).fetch_page is not WindowedStream.fetch_page
        return own and self.settings.page_size >= 2

    def _emit_pages(
        self, context: Context | None, span: tuple[int, int], progress: Progress
    ) -> Iterator[dict[str, Any]]:
        """Keyset pages in order; each is checked whole before any of it leaves, then committed.

        An inconsistent page emits nothing, and the bookmark stays at the page before.
        """
        checker = PageChecker(self.name, self.replication_key or "", Window(*span))
        for page in self.read_pages(*span):
            checker.check(page, self._server_now_us())
            yield from page.records
            self._commit(context, page.covered_ms)
            progress.advance(covered=page.covered_ms, records=len(page.records))

    def _emit_deletions(
        self, context: Context | None, span: tuple[int, int, bool]
    ) -> Iterator[dict[str, Any]]:
        """Tombstones of the rows deleted since the last run (``sync.deleted``), if tracked."""
        if self.deletions is None:
            return
        state = self.get_context_state(context)
        emitted = 0
        for record in deleted.tombstones(
            self.deletions,
            state,
            stream=self.name,
            replication_key=self.replication_key or "",
            span=span,
            now_ms=self._server_now_us() // 1000,
            keep_days=self.settings.deleted_records_keep_days,
            warn=self.logger.warning,
        ):
            emitted += 1
            yield record
        if emitted:
            self.logger.info("%s: %d deleted record(s) since the last run", self.name, emitted)

    def _server_now_us(self) -> int:
        """The server's clock now: local time plus the skew seen in its ``Date`` headers."""
        skew = self.connection.client.server_skew or 0.0
        return int((time.time() + skew) * 1_000_000)

    def _probe_time_semantics(self, context: Context | None) -> None:
        """Does the instance honour a ``$filter`` literal's offset? (``consistency.probe``, §13).

        Ignored offsets stop the run before any bookmark. A pass is kept in this stream's state
        (``RunReport.probed``): later runs skip the probe while it is fresh. No sample record:
        the next stream tries.
        """
        key, size = self.replication_key or "", self.settings.page_size
        if consistency.probe(
            self.name, key, self.fetch_sample, self.fetch_offset_window, page_size=size
        ):
            self.report.probed(self.get_context_state(context), self._server_now_us() // 1000)
            self.logger.info("%s: the instance honours the offset of date-time literals", self.name)

    def _commit(self, context: Context | None, end_ms: int) -> None:
        """Bookmark = window end; a STATE message at once, unless records wait for a file.

        A STATE must follow the messages that deliver what it covers. Without
        ``batch_config`` every record of the window has left as a RECORD message, so the
        STATE written now makes the completed prefix durable. With it, the SDK gathers
        records into a file and writes the BATCH message only once the file is full (or the
        stream ends), then a STATE: one written from here would run ahead of the file that
        holds the window's last records, and a crash between the two would lose them. So in
        batch mode the bookmark is only set, and the SDK's STATE after each BATCH message
        carries it. That STATE holds this bookmark, or the stamp of the file's last record
        (records leave sorted: see :attr:`is_sorted`); either way only delivered records lie
        before it. Files cut at window ends would need a batcher of our own, for no gain.
        """
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = iso_utc(end_ms)
        if self.get_batch_config(self.config) is None:
            sdk.emit_state(self)


def minus_lookback(start: dt.datetime, minutes: float) -> dt.datetime:
    """``start - lookback``, never before :data:`DEFAULT_START` because of the look-back."""
    floor = min(start, DEFAULT_START)
    try:
        return max(start - dt.timedelta(minutes=max(0.0, minutes)), floor)
    except OverflowError:  # a look-back of millennia: read from the beginning
        return floor
