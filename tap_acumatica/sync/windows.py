"""Time windows over a change field: every decision on how wide a window is and where it is cut.

Why windows and not ``$skip`` paging (docs/acumatica-api.md §4): the contract-based API has no
``$orderby``,
list order is not change order, and ``$skip`` counts positions in a list that moves when records
are deleted or modified during the read, so a plain ``$top/$skip`` walk silently skips rows.
A window ``[A, B)`` on the change field is a *value* range: a record whose stamp is in it is
returned by that one request no matter what happens to other records, so deletes elsewhere can
never make it go missing. A window that comes back full is read on in ``$skip`` pages that
overlap by one row and are checked for any shift (``sync.window_pages``, issue 15); when it was
cut from a guess, its pages shifted or it passed the page cap, it is discarded and its range
re-cut into narrower windows (or, when the page shows one dominant stamp, that stamp gets a
window of its own), then re-read. A window one tick wide (the field's precision, 1/300 s) that
is still full, i.e. a burst of records sharing one stamp, is paged with overlapping pages too.
Every window bound is a tick boundary (``stamps.tick_floor``): the server
rounds ``$filter`` literals to ticks (docs/acumatica-api.md §3), so only such bounds select on
the server exactly the records a millisecond comparison puts in the window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from tap_acumatica.stamps import iso_utc, next_tick, parse_ms, tick_floor

#: Resolution of Acumatica stamps: SQL Server ``datetime`` ticks of 1/300 s, so a window is never
#: narrower than one tick, at most 4 ms (docs/acumatica-api.md §3).
PRECISION_MS = 4


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
        """False when the window is one tick wide (a single possible stamp)."""
        return next_tick(self.start) < self.end

    def __str__(self) -> str:
        """Readable form for logs."""
        return f"[{iso_utc(self.start)}, {iso_utc(self.end)})"


#: Margin, in standard deviations, between a window's expected records and a full page.
MARGIN_SIGMAS = 2.5
#: The same margin for windows paged on (issue 15), where a miss costs one small page.
PAGED_MARGIN_SIGMAS = 1.5


def target_records(page_size: int, pages: int = 1) -> int:
    """Records to aim a window at: as many as fit, with a margin for counting noise.

    A window read in ``pages`` overlapping pages (``sync.window_pages``, one row of overlap)
    holds ``pages * (page_size - 1) + 1`` records in that many requests; the aim leaves
    ``PAGED_MARGIN_SIGMAS`` below it: there a miss costs one more, small page, not a re-read,
    so a narrow margin (a fuller last page) is the cheaper side.

    The records in a window of a given width vary like a Poisson count (sigma = sqrt(n)), and
    the width comes from an estimate as noisy, so the aim ``t`` leaves ``MARGIN_SIGMAS`` of
    that noise below a full page: ``t + k * sqrt(t) <= page_size`` (913 of 1,000, 75 of 100).
    A full window costs its page plus two re-reads, so the margin is cheaper than the misses.
    """
    k = MARGIN_SIGMAS * 1.15  # Poisson noise and the estimate's, pooled over ~3 windows
    if pages > 1:
        fits = pages * (page_size - 1) + 1
        return max(page_size, fits - int(PAGED_MARGIN_SIGMAS * math.sqrt(fits)))
    root = (-k + math.sqrt(k * k + 4 * page_size)) / 2
    return max(1, min(page_size - 1, int(root * root)))


class WindowPlanner:
    """Sizes windows from the observed density of change stamps.

    The aim is ``target`` records per window (:func:`target_records`), so most windows cost
    one request and few come back full. The first window is the whole range, so a small
    entity costs a single request. The width is ``target`` over the density of the last few
    windows (their records over their widths, so one window's noise does not swing it); an
    empty window makes it 8x wider, a handful of records at most 4x. A full window is re-cut
    where its page's stamps say (:func:`recut`), which then :meth:`aim` s the width.
    """

    #: How many recent windows the density estimate pools.
    HISTORY = 3

    def __init__(self, *, page_size: int, initial_width: int, pages: int = 1) -> None:
        """Plan for ``pages`` pages of ``page_size`` records a window (more than one: full
        windows are paged on, ``sync.window_pages``), starting ``initial_width`` ms wide."""
        self.pages = max(1, pages)
        self.target = target_records(page_size, self.pages)
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
        stop = max(next_tick(start), tick_floor(start + self.width))
        if end - stop < self.width // 4:
            stop = end
        return Window(start, min(stop, end))

    def aim(self, width: int) -> None:
        """Use ``width`` ms next: a full page's stamps showed how dense its records are."""
        self.width = max(PRECISION_MS, width)
        self._seen.clear()

    def observe(self, window: Window, count: int, *, full: bool) -> None:
        """Adapt the width to a window's result (a tie burst says nothing about density)."""
        if not window.splittable and (full or count >= self.target):
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
            # (8x when windows are paged on: a window larger than aimed costs a page, not
            # a re-read; the page cap is twice the aim.)
            estimate = min(estimate, window.width * (8 if self.pages > 1 else 4))
        self.width = max(PRECISION_MS, estimate)


@dataclass(frozen=True)
class PageStamps:
    """What a full page says about its window: a dominant stamp, and every stamp, sorted (ms)."""

    tie: int | None = None
    sample: tuple[int, ...] = ()

    @classmethod
    def of(cls, rows: Iterable[dict[str, object]], key: str) -> PageStamps:
        """Read the change stamps (unwrapped UTC strings) of a full page's records.

        The tie is the tick shared by at least half the page, if any: a tie burst.
        """
        stamps: list[int] = []
        count = 0
        for row in rows:
            count += 1
            value = row.get(key)
            ms = parse_ms(value) if isinstance(value, str) else None
            if ms is not None:
                stamps.append(ms)
        if not stamps:
            return cls()
        stamp, most = Counter(map(tick_floor, stamps)).most_common(1)[0]
        stamps.sort()
        return cls(stamp if most * 2 >= count else None, tuple(stamps))


@dataclass(frozen=True)
class Piece:
    """A part of a re-cut window: a window to fetch, or a region still to be cut."""

    window: Window
    region: bool = False
    hinted: bool = False  # cut where a full page's stamps put ``target`` records


def recut(
    window: Window,
    page: PageStamps,
    planner: WindowPlanner,
    *,
    hinted: bool,
) -> list[Piece]:
    """Cut a full window again where its page's stamps say, so no re-read is blind.

    The page is a sample of the window in key order, not change order (docs/acumatica-api.md §4):
    - a dominant stamp (a tie burst) gets a one-tick window of its own; bisecting down to it from
      a wide window would cost one wasted full page per halving, about 40 for decades;
    - over a measured density a full window is noise or a busy spell: cut at the page's
      median stamp, which halves its records whatever their order;
    - while the density is unknown (the first window spans decades), the next window ends at
      the page's ``target/2``-th stamp and is followed by windows as wide as the page's stamps
      are dense. Keys follow creation and most records change soon after, so the lowest keys
      hold the oldest stamps, wherever in the range they lie;
    - if that hinted window is full too, the keys say little about the stamps: cut at an
      eighth of its page, which divides the records by about eight per wasted page.
    """
    tied = _isolate_tie(window, page.tie)
    if tied:
        return tied
    inside = [tick_floor(s) for s in page.sample if window.start <= s < window.end]
    if planner.measured and len(inside) > 1:
        # Over a measured density, a full window is noise or a busy spell: halve its records.
        median = inside[len(inside) // 2]
        if window.start < median < window.end:
            return [Piece(Window(window.start, median)), Piece(Window(median, window.end))]
    # First the page's target/2-th stamp; once that failed, an eighth of the page per cut.
    rank = len(inside) // 8 if hinted else min(planner.target, len(inside)) // 2
    if 0 < rank < len(inside) and window.start < inside[rank] < window.end:
        cut = inside[rank]
        planner.aim(cut - (window.start if hinted else inside[0]))
        first = Piece(Window(window.start, cut), hinted=True)
        return [first, Piece(Window(cut, window.end), region=True)]
    # No usable stamps on the page: halve the time range (always progress: more than a tick).
    middle = max(next_tick(window.start), tick_floor(window.start + window.width // 2))
    return [
        Piece(Window(window.start, middle), region=True),
        Piece(Window(middle, window.end), region=True),
    ]


def split_known(
    window: Window, rows: Iterable[dict[str, object]], key: str, planner: WindowPlanner
) -> list[Piece]:
    """Where to cut a window still full at its page cap, whose rows so far are kept.

    The rows are the lowest keys of the window's list (``sync.window_pages``), so nothing is
    re-read: each part is read on from its share of them. A tie burst that holds half of them
    gets its own one-tick window; else the first part ends at the ``target``-th stamp, so it
    holds about a window of records (keys follow creation, and most records change soon
    after: the lowest keys hold the oldest stamps), and the rest stays a region. While the
    density is a guess, the width from the first stamp to that cut is the next guess.
    """
    page = PageStamps.of(rows, key)
    tied = _isolate_tie(window, page.tie)
    if tied:
        return tied
    inside = [tick_floor(s) for s in page.sample if window.start <= s < window.end]
    rank = min(planner.target, len(inside) // 2)
    if 0 < rank < len(inside) and window.start < inside[rank] < window.end:
        cut, guess = inside[rank], not planner.measured
        if guess:
            planner.aim(cut - inside[0])
        return [
            Piece(Window(window.start, cut), hinted=guess),
            Piece(Window(cut, window.end), region=True),
        ]
    middle = max(next_tick(window.start), tick_floor(window.start + window.width // 2))
    return [
        Piece(Window(window.start, middle), region=True),
        Piece(Window(middle, window.end), region=True),
    ]


def _isolate_tie(window: Window, tie: int | None) -> list[Piece]:
    """A dominant stamp's own one-tick window between two regions; none if there is none."""
    if tie is None or not window.start <= tie < window.end or not window.splittable:
        return []
    tie = max(window.start, tick_floor(tie))
    after = min(next_tick(tie), window.end)
    parts = [
        Piece(Window(window.start, tie), region=True),
        Piece(Window(tie, after)),
        Piece(Window(after, window.end), region=True),
    ]
    return [p for p in parts if p.window.width > 0]
