"""Fetch windows on worker threads and hand them back strictly in window order.

Up to ``workers`` requests are in flight at once (``max_concurrent_requests``; Acumatica's
licence caps concurrent API requests, docs/acumatica-api.md §6). A window that comes back
full is read on in overlapping ``$skip`` pages (``sync.window_pages``), several at once on
different workers, when the dialect can fetch pages: a gap between two pages is bridged, a
window still full at the page cap is split by its stamps and its parts read on from the rows
already read (``windows.split_known``), and only a shift no bridge closes is re-read, split
where its stamps say (``windows.recut``). Dialects that cannot fetch pages re-cut every full
window. Replacements take the window's place, so the order of the range is kept. The caller
emits each window's records only when every earlier window is done, so a STATE written after
a window covers the completed prefix and nothing else.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from tap_acumatica.pool import DaemonPool
from tap_acumatica.stamps import parse_ms, tick_floor
from tap_acumatica.sync.window_pages import MAX_WINDOW_PAGES, UNCAPPED, PagedWindow, Rows
from tap_acumatica.sync.windows import PageStamps, Piece, Window, WindowPlanner, recut, split_known

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
    lookahead: int = 1  # pages in flight past a window's full ones, beyond what was expected
    workers: int = 1  # set by ``fetch_in_order``: a tie burst's pages in flight at once
    wasted: list[int] = field(default_factory=lambda: [0])  # speculative pages past an end
    bridges: list[int] = field(default_factory=lambda: [0])  # pages fetched to close a gap
    splits: list[int] = field(default_factory=lambda: [0])  # windows split at the page cap


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
    known: Rows | None = None  # a split parent's rows stamped here, lowest keys first


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
    full window is paged on (``paging``: split at the cap, re-cut at a shift) or, without
    paging, turns back into a region (re-cut narrower), in place. The pool's threads (and
    their keep-alive sessions) outlive the call; work still queued when it ends is cancelled.
    """
    slots: list[_Slot] = [_Slot(Window(start, end), region=True)] if end > start else []
    ahead = max_ahead or planned_ahead(planner, workers)
    if paging is not None:
        paging.workers = workers
    try:
        while slots:
            failed: Exception | None = None
            index = 0
            while index < len(slots):
                try:
                    pieces = _settle(slots[index], planner, paging)
                except Exception as exc:  # raised below, after the windows before it
                    failed = exc
                    break
                if pieces is not None:
                    slots[index : index + 1] = pieces
                    index += len(pieces)
                else:
                    index += 1
            # Only checked, complete results leave, strictly in order: the completed prefix
            # (also before a failed fetch: its bookmark is progress a retry keeps).
            while slots and slots[0].observed:
                done = slots.pop(0).result
                assert done is not None
                yield done
            if failed is not None:
                raise failed
            if slots:  # settled first: a finished fetch may change what to cut next
                _submit(slots, planner, pool, fetch, workers=workers, ahead=ahead, paging=paging)
                in_flight = _in_flight(slots)
                if in_flight and not _ready(slots):
                    wait(in_flight, return_when=FIRST_COMPLETED)
    finally:
        for slot in slots:
            for future in [slot.future, *(slot.paged.all_futures() if slot.paged else ())]:
                if future is not None:
                    future.cancel()


def _ready(slots: list[_Slot]) -> bool:
    """True when a fetch finished that :func:`_settle` has not taken in yet."""
    for slot in slots:
        if slot.observed:
            continue
        if slot.paged is not None:
            if any(f.done() for f in slot.paged.all_futures()):
                return True
        elif slot.future is not None and slot.future.done():
            return True
    return False


def _in_flight(slots: list[_Slot]) -> list[Future[Any]]:
    futures: list[Future[Any]] = []
    for slot in slots:
        if slot.paged is not None:
            futures.extend(slot.paged.in_flight())
        elif slot.future is not None and not slot.future.done():
            futures.append(slot.future)
    return futures


def _settle(slot: _Slot, planner: WindowPlanner, paging: Paging | None) -> list[_Slot] | None:
    """Take in what finished for ``slot``: None, or the slots that replace it (a re-cut)."""
    if slot.observed:
        return None
    if slot.paged is not None:
        return _settle_pages(slot, planner, paging)
    if slot.future is None or not slot.future.done():
        return None
    result = slot.future.result()
    if result.full and paging is not None:
        # Issue 15: a full window is read on in overlapping pages; its first page is page 0.
        # One tick (a tie burst) cannot be cut: read whole, its pages on several sessions.
        slot.paged = _paged(slot, planner, paging, result.records, known=False)
        return None
    # A burst explains its full page, and a hinted window's width is not a density
    # (it may start decades before its first record): neither says how wide to cut.
    if result.tie is None and not (slot.hinted and not result.full):
        planner.observe(slot.window, len(result.records), full=result.full)
    elif slot.hinted and paging is not None and result.records:
        _observe_from_first(slot.window, result.records, planner, paging.key)
    if result.full:
        return _recut(slot, PageStamps(result.tie, result.sample), planner)
    slot.observed, slot.result = True, result
    return None


def _observe_from_first(window: Window, rows: Rows, planner: WindowPlanner, key: str) -> None:
    """A hinted window counts from its first record on: its width is not a density."""
    first = min(PageStamps.of(rows, key).sample, default=None)
    if first is not None and window.start <= first < window.end:
        planner.observe(Window(tick_floor(first), window.end), len(rows), full=False)


def _paged(
    slot: _Slot, planner: WindowPlanner, paging: Paging, first: Rows, *, known: bool
) -> PagedWindow:
    """``slot``'s pages: ``first`` is its page 0, fetched, or the rows known before (split)."""
    cut = slot.window.splittable
    held = len(first) // paging.page_size if known else 0
    # A tie burst, or a window from a guess read from its start (the first one of a
    # backfill): nothing says how many pages; keep every worker busy. A part read on from
    # known rows often ends in its first page or two: one more page at a time.
    if not cut or not (known or planner.measured):
        lookahead = max(paging.lookahead, paging.workers)
    else:
        lookahead = max(paging.lookahead, 2) if known and not planner.measured else paging.lookahead
    cap = max(2, paging.cap - held) if cut else UNCAPPED
    if cut and not known and not planner.measured:
        # Page 0 came alone; the cap ends on a whole round of every worker, not with some idle.
        cap = 1 + math.ceil((cap - 1) / max(1, paging.workers)) * max(1, paging.workers)
    return PagedWindow(
        paging.page_size,
        cap,
        slot.expect,
        {0: first},
        lookahead=lookahead,
        known=known,
    )


def _settle_pages(slot: _Slot, planner: WindowPlanner, paging: Paging | None) -> list[_Slot] | None:
    paged = slot.paged
    assert paged is not None
    assert paging is not None
    paged.collect()
    outcome = paged.outcome(paging.ident)
    if outcome == "pending":
        return None
    paging.wasted[0] += paged.wasted
    paging.bridges[0] += len(paged.bridges)
    if isinstance(outcome, list):
        if slot.hinted:
            _observe_from_first(slot.window, outcome, planner, paging.key)
        else:
            planner.observe(slot.window, len(outcome), full=False)
        slot.observed, slot.result = True, WindowResult(slot.window, outcome)
        return None
    if outcome == "cap":
        # Still full at the cap: split by stamps, each part read on from the rows read.
        paging.splits[0] += 1
        LOGGER.info("window %s: still full after %d rows; reading on in parts", slot.window,
                    len(paged.capped))  # fmt: skip
        parts = split_known(slot.window, paged.capped, paging.key, planner)
        return _with_known(parts, paged.capped, paging.key)
    if not slot.window.splittable:  # a tie burst whose pages shifted: read it again whole
        LOGGER.info("window %s: its pages shifted while being read; reading it again", slot.window)
        return [_Slot(slot.window)]
    LOGGER.info("window %s: its pages shifted while being read; reading it again, split",
                slot.window)  # fmt: skip
    return _recut(slot, PageStamps.of(paged.rows(), paging.key), planner)


def _with_known(parts: list[Piece], rows: Rows, key: str) -> list[_Slot]:
    """Slots for ``parts``, each with the rows stamped in it (in their order: key order)."""
    shares: list[Rows] = [[] for _ in parts]
    for row in rows:
        value = row.get(key)
        ms = parse_ms(value) if isinstance(value, str) else None
        at = next((i for i, p in enumerate(parts) if ms is not None and ms < p.window.end), 0)
        shares[at].append(row)  # a row without a stamp stays first: the checks stop it there
    return [
        _Slot(p.window, region=p.region, hinted=p.hinted, known=share)
        for p, share in zip(parts, shares, strict=True)
    ]


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
            if running and not planner.measured and paging is None:
                # A width guessed from a full page, not measured yet: a second window cut from
                # it would likely come back full too, a wasted page. Wait for the first result.
                # (Paged windows waste nothing when full: they are read on or split.)
                break
            slots[index : index + 1] = _cut(slot, planner, paging)
            planned += 1
            slot = slots[index]
        if slot.paged is None and slot.future is None:
            if slot.known and paging is not None:
                slot.paged = _paged(slot, planner, paging, slot.known, known=True)
                slot.known = None  # held by its pages now
            else:
                slot.future = pool.submit(_bind(fetch, slot.window))
                running += 1
        if slot.paged is not None and paging is not None:
            running += _submit_pages(slot, pool, paging, workers - running)
        index += 1


def _cut(region: _Slot, planner: WindowPlanner, paging: Paging | None) -> list[_Slot]:
    """The next window of ``region`` (and the rest, still a region), each with its known rows."""
    measured = planner.measured
    window = planner.cut(region.window.start, region.window.end)
    rest = Window(window.end, region.window.end)
    parts = [Piece(window), Piece(rest, region=True)] if rest.width > 0 else [Piece(window)]
    if region.known is not None:
        slots = _with_known(parts, region.known, paging.key if paging else "")
    else:
        slots = [_Slot(p.window, region=p.region) for p in parts]
    slot = slots[0]
    if paging is not None and measured and window.splittable:
        # Pages the planner expects here (its width aims at ``target`` records), past the
        # rows already known, fetched at once; the last one only once the one before is
        # full: the count is an estimate, and a page past the end is a request billed.
        records = planner.target * window.width / max(1, planner.width)
        known = len(slot.known or ())
        unknown = math.ceil(max(0.0, records - known) / max(1, paging.page_size - 1))
        slot.expect = unknown if known else max(1, unknown - 1)
    return slots


def _submit_pages(slot: _Slot, pool: DaemonPool, paging: Paging, room: int) -> int:
    """Start up to ``room`` page fetches of a paged window; how many were started."""
    paged = slot.paged
    assert paged is not None
    started = 0
    while paged.gaps and started < room:  # a gap first: the window waits for it
        gap = paged.gaps.pop(0)
        paged.bridging[gap] = pool.submit(
            _bind_page(paging.fetch, slot.window, paged.bridge(gap), paging.page_size)
        )
        started += 1
    while started < room:
        index = paged.wanted()
        if index is None:
            break
        paged.futures[index] = pool.submit(
            _bind_page(paging.fetch, slot.window, paged.skip(index), paging.page_size)
        )
        paged.next = index + 1
        started += 1
    return started


def _bind(fetch: Callable[[Window], WindowResult], window: Window) -> Callable[[], WindowResult]:
    return lambda: fetch(window)


def _bind_page(fetch: FetchPage, window: Window, skip: int, top: int) -> Callable[[], Rows]:
    return lambda: fetch(window, skip, top)
