"""Fetch windows on worker threads and hand them back strictly in window order.

Up to ``workers`` windows are in flight at once (``max_concurrent_requests``; Acumatica's
licence caps concurrent API requests, API-FACTS §6). A window that comes back full is replaced in
place by its two halves, so the order of the range is kept; the caller emits each window's
records only when every earlier window is done, so a STATE written after a window covers the
completed prefix and nothing else.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from tap_acumatica.windows import PRECISION_MS, Window, WindowPlanner


@dataclass
class WindowResult:
    """What one window fetch returned."""

    window: Window
    records: list[dict[str, Any]] = field(default_factory=list)
    full: bool = False  # came back full: split and re-read
    requests: int = 1
    tie: int | None = None  # a full window's dominant stamp (ms): isolate it, don't bisect
    median: int | None = None  # a full window's median stamp (ms): cut there, not blind


class DaemonPool:
    """A minimal thread pool of daemon threads.

    Daemon threads let SIGTERM/SIGINT end the process at once: the SDK writes the last STATE
    and exits, and no in-flight request (up to ``request_timeout`` long) holds the exit back,
    as ThreadPoolExecutor's non-daemon workers would.
    """

    def __init__(self, workers: int, name: str) -> None:
        """Create the pool; threads start on first use."""
        self._workers = max(1, workers)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._pending: set[Future[Any]] = set()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on a worker; returns its future."""
        if not self._threads:
            for i in range(self._workers):
                thread = threading.Thread(target=self._run, name=f"{self._name}-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
        future: Future[Any] = Future()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        self._queue.put((future, fn))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel queued work and let the threads end after their current task."""
        for future in list(self._pending):
            future.cancel()
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []


@dataclass
class _Slot:
    """A window being fetched, or a region not yet cut into windows."""

    window: Window
    region: bool = False
    future: Future[WindowResult] | None = None
    observed: bool = False


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
    ahead = max_ahead or max(4, workers * 4)
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
                if result.tie is None:  # a burst explains the full page; density is unknown
                    planner.observe(slot.window, len(result.records), full=result.full)
                if result.full:
                    recut = _recut(slot.window, result.tie, result.median)
                    slots[index : index + 1] = recut
                    if result.tie is None and recut[0].window.end < slot.window.end:
                        planner.aim(recut[0].window.width)  # cut at the median: aim there
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


def _recut(window: Window, tie: int | None, median: int | None = None) -> list[_Slot]:
    """A full window becomes a region again; a dominant stamp gets a 1 ms window of its own.

    Bisecting down to a tie burst from a wide window would cost one full (wasted) request per
    halving, about 40 for a range of decades; the returned page shows the stamp directly.
    Without a tie, the region is cut at the page's median stamp: the page is a sample of the
    window in key order, not change order (API-FACTS §4), so about half of the window's
    records lie before it, wherever in a range of decades they are. Halving the *time* range
    instead would cost one wasted full page per halving until it reached the data.
    """
    if tie is None and median is not None and window.start < median < window.end:
        halves = (Window(window.start, median), Window(median, window.end))
        return [_Slot(half, region=True) for half in halves]
    if tie is None or not window.start <= tie < window.end or window.width <= PRECISION_MS:
        return [_Slot(window, region=True)]
    parts = [
        _Slot(Window(window.start, tie), region=True),
        _Slot(Window(tie, tie + PRECISION_MS)),
        _Slot(Window(tie + PRECISION_MS, window.end), region=True),
    ]
    return [p for p in parts if p.window.width > 0]


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
