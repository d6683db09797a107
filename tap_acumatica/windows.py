"""Time windows over a change field: planning, adaptive width, splitting, tie-burst paging.

Why windows and not ``$skip`` paging (API-FACTS §4): the contract-based API has no ``$orderby``,
list order is not change order, and ``$skip`` counts positions in a list that moves when records
are deleted or modified during the read, so a plain ``$top/$skip`` walk silently skips rows.
A window ``[A, B)`` on the change field is a *value* range: a record whose stamp is in it is
returned by that one request no matter what happens to other records, so deletes elsewhere can
never make it go missing. A window that comes back full is discarded and its range re-cut into
narrower windows (or, when the page shows one dominant stamp, that stamp gets a window of its
own), then re-read; only a window one millisecond wide (the field's precision) that is still
full, i.e. a burst of records sharing one stamp, is paged, and then with overlapping pages
that detect any shift.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tap_acumatica.errors import AcumaticaAPIError

#: Resolution of Acumatica date-times: up to 3 fractional digits (API-FACTS §3).
PRECISION_MS = 1
DAY_MS = 86_400_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch (aware datetimes; naive ones are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> dt.datetime:
    """The aware UTC datetime of ``ms`` milliseconds since the epoch."""
    return EPOCH + dt.timedelta(milliseconds=ms)


def iso_utc(ms: int) -> str:
    """Bookmark/record format: fixed-width UTC ISO-8601, so text order is time order."""
    return from_ms(ms).isoformat(timespec="microseconds")


def odata_literal(ms: int) -> str:
    """``datetimeoffset'…'`` literal, offset-qualified (API-FACTS §4: never offset-less)."""
    return f"datetimeoffset'{from_ms(ms).isoformat(timespec='milliseconds')}'"


@dataclass(frozen=True, order=True)
class Window:
    """A half-open range ``[start, end)`` of change stamps, in epoch milliseconds."""

    start: int
    end: int

    @property
    def width(self) -> int:
        """Width in milliseconds."""
        return self.end - self.start

    @property
    def splittable(self) -> bool:
        """False when the window is one precision step wide (a single possible stamp)."""
        return self.width > PRECISION_MS

    def filter(self, field: str) -> str:
        """The ``$filter`` expression selecting this window on ``field``."""
        return f"{field} ge {odata_literal(self.start)} and {field} lt {odata_literal(self.end)}"

    def __str__(self) -> str:
        """Readable form for logs."""
        return f"[{iso_utc(self.start)}, {iso_utc(self.end)})"


#: Margin, in standard deviations, between a window's expected records and a full page.
MARGIN_SIGMAS = 2.5


def target_records(page_size: int) -> int:
    """Records to aim a window at: as many as fit, with a margin for counting noise.

    The records in a window of a given width vary like a Poisson count (sigma = sqrt(n)), and
    the width comes from an estimate as noisy, so the aim ``t`` leaves ``MARGIN_SIGMAS`` of
    that noise below a full page: ``t + k * sqrt(t) <= page_size`` (913 of 1,000, 75 of 100).
    A full window costs its page plus two re-reads, so the margin is cheaper than the misses.
    """
    k = MARGIN_SIGMAS * 1.15  # Poisson noise and the estimate's, pooled over ~3 windows
    root = (-k + math.sqrt(k * k + 4 * page_size)) / 2
    return max(1, min(page_size - 1, int(root * root)))


class WindowPlanner:
    """Sizes windows from the observed density of change stamps.

    The aim is ``target`` records per window (:func:`target_records`), so most windows cost
    one request and few come back full. The first window is the whole range, so a small
    entity costs a single request. The width is ``target`` over the density of the last few
    windows (their records over their widths, so one window's noise does not swing it); an
    empty window makes it 8x wider, a handful of records at most 4x. A full window is re-cut
    where its page's stamps say (``extract._recut``), which then :meth:`aim` s the width.
    """

    #: How many recent windows the density estimate pools.
    HISTORY = 3

    def __init__(self, *, page_size: int, initial_width: int) -> None:
        """Plan for pages of ``page_size`` records, starting ``initial_width`` ms wide."""
        self.target = target_records(page_size)
        self.width = max(PRECISION_MS, initial_width)
        self._seen: list[tuple[int, int]] = []  # (records, width) of recent windows

    @property
    def measured(self) -> bool:
        """True when the width comes from records counted in windows, not from a guess."""
        return bool(self._seen)

    def cut(self, start: int, end: int) -> Window:
        """The next window at the start of the region ``[start, end)``.

        A remainder narrower than a quarter of the width joins this window: a sliver of its
        own would cost one more request for a handful of records.
        """
        stop = start + self.width
        if end - stop < self.width // 4:
            stop = end
        return Window(start, stop)

    def aim(self, width: int) -> None:
        """Use ``width`` ms next: a full page's stamps showed how dense its records are."""
        self.width = max(PRECISION_MS, width)
        self._seen.clear()

    def observe(self, window: Window, count: int, *, full: bool) -> None:
        """Adapt the width to a window's result (a tie burst says nothing about density)."""
        if window.width <= PRECISION_MS and (full or count >= self.target):
            return
        if full:
            if not self._seen:  # a guess was wrong; a measured density stays (noise)
                self.width = max(PRECISION_MS, min(self.width, window.width // 2))
            return
        if count == 0:
            # Quiet time (often the tail up to the sync start): 8x wider each time, one at a
            # time (unmeasured), so a quiet year costs two or three empty requests, not ten.
            self.width = max(PRECISION_MS, self.width, window.width) * 8
            self._seen.clear()
            return
        self._seen = [*self._seen[-(self.HISTORY - 1) :], (count, window.width)]
        records = sum(c for c, _ in self._seen)
        width = sum(w for _, w in self._seen)
        estimate = width * self.target // records
        if records < self.target // 4:  # too few records to trust: grow at most 4x
            estimate = min(estimate, window.width * 4)
        self.width = max(PRECISION_MS, estimate)


def page_consistently(
    fetch_page: Callable[[int, int], Sequence[dict[str, Any]]],
    *,
    page_size: int,
    first_page: Sequence[dict[str, Any]] | None = None,
    max_restarts: int = 10,
    what: str = "records",
) -> Iterator[dict[str, Any]]:
    """Read a whole result set with ``$top/$skip`` and overlapping pages; never lose a row.

    Used only where no value range can split the set further: a tie burst (one stamp) or an
    entity with no change field. Pages overlap by ``overlap`` rows. The set can only shrink
    while it is read (a record leaves a tie burst when it is modified or deleted; inserts get a
    new stamp), and the server lists it in a stable key order, so a page whose first row was
    also in the previous page continues it without a gap; if it was not, rows before the page
    boundary vanished and the read restarts from the top. Rows are yielded as they arrive,
    each ``id`` once.
    """
    overlap = max(1, min(page_size // 10, 200))
    if page_size <= overlap:
        msg = f"page_size {page_size} is too small to page {what} safely (need at least 2)"
        raise AcumaticaAPIError(msg)
    seen: set[str] = set()
    restarts = 0
    skip = 0
    prev_ids: set[str] | None = None
    page = list(first_page) if first_page is not None else None
    while True:
        if page is None:
            page = list(fetch_page(skip, page_size))
        if prev_ids is not None and (not page or _row_id(page[0]) not in prev_ids):
            restarts += 1
            if restarts > max_restarts:
                msg = (
                    f"{what} kept shifting while being paged ({restarts} restarts); "
                    "retry when the instance is quieter or lower max_concurrent_requests"
                )
                raise AcumaticaAPIError(msg)
            skip, prev_ids, page = 0, None, None
            continue
        for row in page:
            rid = _row_id(row)
            if rid not in seen:
                seen.add(rid)
                yield row
        if len(page) < page_size:
            return
        prev_ids = {_row_id(r) for r in page[-overlap:]}
        skip += page_size - overlap
        page = None


def _row_id(row: dict[str, Any]) -> str:
    return str(row.get("id"))
