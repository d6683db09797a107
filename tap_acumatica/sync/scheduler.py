"""Fetch windows on worker threads and hand them back strictly in window order.

Up to ``workers`` windows are in flight at once (``max_concurrent_requests``; Acumatica's
licence caps concurrent API requests, docs/acumatica-api.md §6). A window that comes back full is
replaced in
place by narrower windows cut where its page's stamps say (``windows.recut``), so the order of the
range is kept; the caller emits each window's
records only when every earlier window is done, so a STATE written after a window covers the
completed prefix and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from tap_acumatica.pool import DaemonPool
from tap_acumatica.sync.windows import PageStamps, Window, WindowPlanner, recut


@dataclass
class WindowResult:
    """What one window fetch returned."""

    window: Window
    records: list[dict[str, Any]] = field(default_factory=list)
    full: bool = False  # came back full: split and re-read
    tie: int | None = None  # a full window's dominant stamp (ms): isolate it, don't bisect
    sample: tuple[int, ...] = ()  # a full window's page stamps (ms), sorted: where to cut


@dataclass
class _Slot:
    """A window being fetched, or a region not yet cut into windows."""

    window: Window
    region: bool = False
    future: Future[WindowResult] | None = None
    observed: bool = False
    hinted: bool = False  # cut where a full page's stamps put ``target`` records


#: Records each worker may have planned ahead of the head window (fetched or held).
AHEAD_RECORDS_PER_WORKER = 4000


def planned_ahead(planner: WindowPlanner, workers: int) -> int:
    """How many windows may be planned at once: a bound on records held, not on windows.

    While the head window is slow (a tie burst paged page after page, a retried request),
    the other workers go on fetching the windows after it, until this many are planned; their
    records wait in memory. Counting records keeps that memory the same for any page size
    (four pages per worker at 1,000) and keeps small pages from stalling the workers.
    """
    return max(4, workers * AHEAD_RECORDS_PER_WORKER // max(1, planner.target))


def fetch_in_order(
    planner: WindowPlanner,
    start: int,
    end: int,
    fetch: Callable[[Window], WindowResult],
    *,
    pool: DaemonPool,
    workers: int,
    max_ahead: int | None = None,
) -> Iterator[WindowResult]:
    """Yield complete window results over ``[start, end)`` in order, fetching concurrently.

    The range starts as one region; regions are cut into windows of the planner's current
    width just before they are fetched, so every window uses the latest density estimate. A
    full window turns back into a region (re-cut narrower), in place. The pool's threads (and
    their keep-alive sessions) outlive the call; work still queued when it ends is cancelled.
    """
    slots: list[_Slot] = [_Slot(Window(start, end), region=True)] if end > start else []
    ahead = max_ahead or planned_ahead(planner, workers)
    try:
        while slots:
            _submit(slots, planner, pool, fetch, workers=workers, ahead=ahead)
            head = slots[0].future
            if head is None or not head.done():
                in_flight = [s.future for s in slots if s.future and not s.future.done()]
                wait(in_flight, return_when=FIRST_COMPLETED)
            for index, slot in enumerate(slots):
                if slot.future is None or slot.observed or not slot.future.done():
                    continue
                result = slot.future.result()
                # A burst explains its full page, and a hinted window's width is not a density
                # (it may start decades before its first record): neither says how wide to cut.
                if result.tie is None and not (slot.hinted and not result.full):
                    planner.observe(slot.window, len(result.records), full=result.full)
                if result.full:
                    pieces = recut(
                        slot.window,
                        PageStamps(result.tie, result.sample),
                        planner,
                        hinted=slot.hinted,
                    )
                    slots[index : index + 1] = [
                        _Slot(p.window, region=p.region, hinted=p.hinted) for p in pieces
                    ]
                else:
                    slot.observed = True
            # Only checked, non-full results leave, strictly in order: the completed prefix.
            while slots and slots[0].observed:
                done = slots.pop(0)
                assert done.future is not None
                yield done.future.result()
    finally:
        for slot in slots:
            if slot.future is not None:
                slot.future.cancel()


def _submit(
    slots: list[_Slot],
    planner: WindowPlanner,
    pool: DaemonPool,
    fetch: Callable[[Window], WindowResult],
    *,
    workers: int,
    ahead: int,
) -> None:
    """Start fetches, earliest first, up to ``workers`` in flight and ``ahead`` planned."""
    running = sum(1 for s in slots if s.future is not None and not s.future.done())
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
            window = planner.cut(slot.window.start, slot.window.end)
            rest = Window(window.end, slot.window.end)
            slots[index] = _Slot(window)
            if rest.width > 0:
                slots.insert(index + 1, _Slot(rest, region=True))
            planned += 1
            slot = slots[index]
        if slot.future is None:
            slot.future = pool.submit(_bind(fetch, slot.window))
            running += 1
        index += 1


def _bind(fetch: Callable[[Window], WindowResult], window: Window) -> Callable[[], WindowResult]:
    return lambda: fetch(window)
