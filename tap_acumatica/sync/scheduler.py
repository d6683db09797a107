"""Fetch windows on worker threads and hand them back strictly in window order.

Up to ``workers`` requests are in flight at once (``max_concurrent_requests``; Acumatica's
licence caps concurrent API requests, docs/acumatica-api.md §6). A window that comes back
full is read on in overlapping ``$skip`` pages (``sync.window_pages``), several at once on
different workers, when the dialect can fetch pages and the window was cut from a measured
density; a shift in those pages, a window past the page cap, or a full window cut from a
guess is replaced in place by narrower windows cut where its stamps say (``windows.recut``),
so the order of the range is kept. The caller emits each window's records only when every
earlier window is done, so a STATE written after a window covers the completed prefix and
nothing else.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from tap_acumatica.pool import DaemonPool
from tap_acumatica.stamps import tick_floor
from tap_acumatica.sync.window_pages import (
    MAX_WINDOW_PAGES,
    PagedWindow,
    Rows,
    page_skip,
)
from tap_acumatica.sync.windows import PageStamps, Window, WindowPlanner, recut

LOGGER = logging.getLogger("tap-acumatica")

#: ``(window, skip, top) -> rows``: one list page of a window, on a worker thread.
FetchPage = Callable[[Window, int, int], Rows]


@dataclass
class WindowResult:
    """What one window fetch returned."""

    window: Window
    records: list[dict[str, Any]] = field(default_factory=list)
    full: bool = False  # came back full: page it on, or split and re-read
    tie: int | None = None  # a full window's dominant stamp (ms): isolate it, don't bisect
    sample: tuple[int, ...] = ()  # a full window's page stamps (ms), sorted: where to cut


@dataclass
class Paging:
    """How full windows are read on: pages of ``page_size`` from ``fetch``."""

    fetch: FetchPage
    page_size: int
    key: str  # the change field, for the stamps of a re-cut
    ident: Callable[[dict[str, Any]], str]
    cap: int = MAX_WINDOW_PAGES
    wasted: list[int] = field(default_factory=lambda: [0])  # speculative pages past an end


@dataclass
class _Slot:
    """A window being fetched, or a region not yet cut into windows."""

    window: Window
    region: bool = False
    future: Future[WindowResult] | None = None
    observed: bool = False
    hinted: bool = False  # cut where a full page's stamps put ``target`` records
    expect: int = 0  # pages the planner expects; 0: cut from a guess, never paged on
    paged: PagedWindow | None = None
    result: WindowResult | None = None


#: Records each worker may have planned ahead of the head window (fetched or held).
AHEAD_RECORDS_PER_WORKER = 4000


def planned_ahead(planner: WindowPlanner, workers: int) -> int:
    """How many windows may be planned at once: a bound on records held, not on windows.

    While the head window is slow (a tie burst paged page after page, a retried request),
    the other workers go on fetching the windows after it, until this many are planned; their
    records wait in memory. Counting records keeps that memory the same for any page size
    (four pages per worker at 1,000) and keeps small pages from stalling the workers.
    """
    floor = 4 if planner.pages == 1 else 2
    return max(floor, workers * AHEAD_RECORDS_PER_WORKER // max(1, planner.target))


def fetch_in_order(
    planner: WindowPlanner,
    start: int,
    end: int,
    fetch: Callable[[Window], WindowResult],
    *,
    pool: DaemonPool,
    workers: int,
    max_ahead: int | None = None,
    paging: Paging | None = None,
) -> Iterator[WindowResult]:
    """Yield complete window results over ``[start, end)`` in order, fetching concurrently.

    The range starts as one region; regions are cut into windows of the planner's current
    width just before they are fetched, so every window uses the latest density estimate. A
    full window is paged on (``paging``) or turns back into a region (re-cut narrower), in
    place. The pool's threads (and their keep-alive sessions) outlive the call; work still
    queued when it ends is cancelled.
    """
    slots: list[_Slot] = [_Slot(Window(start, end), region=True)] if end > start else []
    ahead = max_ahead or planned_ahead(planner, workers)
    try:
        while slots:
            index = 0
            while index < len(slots):
                pieces = _settle(slots[index], planner, paging)
                if pieces is not None:
                    slots[index : index + 1] = pieces
                    index += len(pieces)
                else:
                    index += 1
            # Only checked, complete results leave, strictly in order: the completed prefix.
            while slots and slots[0].observed:
                done = slots.pop(0).result
                assert done is not None
                yield done
            if slots:  # settled first: a finished fetch may change what to cut next
                _submit(slots, planner, pool, fetch, workers=workers, ahead=ahead, paging=paging)
                in_flight = _in_flight(slots)
                if in_flight and not _ready(slots):
                    wait(in_flight, return_when=FIRST_COMPLETED)
    finally:
        for slot in slots:
            for future in [slot.future, *(slot.paged.futures.values() if slot.paged else ())]:
                if future is not None:
                    future.cancel()


def _ready(slots: list[_Slot]) -> bool:
    """True when a fetch finished that :func:`_settle` has not taken in yet."""
    for slot in slots:
        if slot.observed or slot.future is None or not slot.future.done():
            continue
        if slot.paged is None or any(f.done() for f in slot.paged.futures.values()):
            return True
    return False


def _in_flight(slots: list[_Slot]) -> list[Future[Any]]:
    futures: list[Future[Any]] = [s.future for s in slots if s.future and not s.future.done()]
    for slot in slots:
        if slot.paged is not None:
            futures.extend(slot.paged.in_flight())
    return futures


def _settle(slot: _Slot, planner: WindowPlanner, paging: Paging | None) -> list[_Slot] | None:
    """Take in what finished for ``slot``: None, or the slots that replace it (a re-cut)."""
    if slot.observed or slot.future is None or not slot.future.done():
        return None
    if slot.paged is not None:
        return _settle_pages(slot, planner, paging)
    result = slot.future.result()
    if result.full and paging is not None and slot.expect and result.window.splittable:
        # Issue 15: a full window is read on in overlapping pages; its first page is page 0.
        slot.paged = PagedWindow(paging.page_size, paging.cap, slot.expect, {0: result.records})
        return None
    # A burst explains its full page, and a hinted window's width is not a density
    # (it may start decades before its first record): neither says how wide to cut.
    if result.tie is None and not (slot.hinted and not result.full):
        planner.observe(slot.window, len(result.records), full=result.full)
    elif slot.hinted and paging is not None and result.records:
        # From its first record on, it is one: windows may then aim at several pages.
        first = min(PageStamps.of(result.records, paging.key).sample, default=None)
        if first is not None and slot.window.start <= first < slot.window.end:
            seen = Window(tick_floor(first), slot.window.end)
            planner.observe(seen, len(result.records), full=False)
    if result.full:
        return _recut(slot, PageStamps(result.tie, result.sample), planner)
    slot.observed, slot.result = True, result
    return None


def _settle_pages(slot: _Slot, planner: WindowPlanner, paging: Paging | None) -> list[_Slot] | None:
    assert slot.paged is not None
    assert paging is not None
    slot.paged.collect()
    outcome = slot.paged.outcome(paging.ident)
    if outcome == "pending":
        return None
    paging.wasted[0] += slot.paged.wasted
    if isinstance(outcome, list):
        planner.observe(slot.window, len(outcome), full=False)
        slot.observed, slot.result = True, WindowResult(slot.window, outcome)
        return None
    LOGGER.info(
        "window %s: %s; reading it again, split",
        slot.window,
        "its pages shifted while being read" if outcome == "shift" else "more pages than the cap",
    )
    stamps = PageStamps.of(slot.paged.rows(), paging.key)
    if outcome == "cap":
        planner.observe(slot.window, len(slot.paged.rows()), full=True)
    return _recut(slot, stamps, planner)


def _recut(slot: _Slot, stamps: PageStamps, planner: WindowPlanner) -> list[_Slot]:
    pieces = recut(slot.window, stamps, planner, hinted=slot.hinted)
    # A piece cut over a measured density may be paged on too (no speculation: 1 page).
    expect = 1 if slot.expect and planner.measured else 0
    return [
        _Slot(p.window, region=p.region, hinted=p.hinted, expect=0 if p.hinted else expect)
        for p in pieces
    ]


def _submit(
    slots: list[_Slot],
    planner: WindowPlanner,
    pool: DaemonPool,
    fetch: Callable[[Window], WindowResult],
    *,
    workers: int,
    ahead: int,
    paging: Paging | None,
) -> None:
    """Start fetches, earliest first, up to ``workers`` in flight and ``ahead`` planned."""
    running = len(_in_flight(slots))
    planned = sum(1 for s in slots if not s.region)
    index = 0
    while index < len(slots) and running < workers:
        slot = slots[index]
        if slot.region:
            if planned >= ahead and index > 0:  # the head is always cut: no stall
                break
            if running and not planner.measured:
                # A width guessed from a full page, not measured yet: a second window cut from
                # it would likely come back full too, a wasted page. Wait for the first result.
                break
            slots[index : index + 1] = _cut(slot.window, planner, paging)
            planned += 1
            slot = slots[index]
        if slot.future is None:
            slot.future = pool.submit(_bind(fetch, slot.window))
            running += 1
        elif slot.paged is not None and paging is not None:
            running += _submit_pages(slot, pool, paging, workers - running)
        index += 1


def _cut(region: Window, planner: WindowPlanner, paging: Paging | None) -> list[_Slot]:
    """The next window of ``region`` (and the rest, still a region)."""
    measured = planner.measured
    window = planner.cut(region.start, region.end)
    slot = _Slot(window)
    if paging is not None and measured and window.splittable:
        # Pages the planner expects here (its width aims at ``target`` records).
        records = planner.target * window.width / max(1, planner.width)
        slot.expect = max(2, math.ceil(records / max(1, paging.page_size - 1)))
    rest = Window(window.end, region.end)
    return [slot, _Slot(rest, region=True)] if rest.width > 0 else [slot]


def _submit_pages(slot: _Slot, pool: DaemonPool, paging: Paging, room: int) -> int:
    """Start up to ``room`` page fetches of a paged window; how many were started."""
    paged = slot.paged
    assert paged is not None
    started = 0
    while started < room:
        index = paged.wanted()
        if index is None:
            break
        skip = page_skip(index, paging.page_size)
        paged.futures[index] = pool.submit(
            _bind_page(paging.fetch, slot.window, skip, paging.page_size)
        )
        paged.next = index + 1
        started += 1
    return started


def _bind(fetch: Callable[[Window], WindowResult], window: Window) -> Callable[[], WindowResult]:
    return lambda: fetch(window)


def _bind_page(fetch: FetchPage, window: Window, skip: int, top: int) -> Callable[[], Rows]:
    return lambda: fetch(window, skip, top)
