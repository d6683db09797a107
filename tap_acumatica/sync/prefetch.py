"""Overlap streams: the next streams' first windows are read while the current one is.

singer-sdk's ``Tap.sync_all`` is final and syncs the streams one after another, so a run of
many small streams (one window each) keeps one session busy and leaves the others idle. A
windowed stream's first window is its whole range ``[begin, end)``, and ``end`` lies in the
past (``Connection.sync_end_ms``): a closed range, so reading it earlier is as loss-free as
reading it later (a record that changes meanwhile gets a stamp at or after ``end`` and comes
in the next run). So once the current stream has started reading (after the run's time
probe), the first windows of the next few selected streams are fetched on the pool's other
workers; each waits in memory until its own stream starts and asks for exactly that window.
Records, and so STATE messages, still leave stream after stream, in the SDK's order.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_acumatica import sdk
from tap_acumatica.stamps import DEFAULT_START, iso_utc, parse_ms, tick_floor, to_ms
from tap_acumatica.sync.scheduler import WindowResult
from tap_acumatica.sync.windows import Window

if TYPE_CHECKING:
    from tap_acumatica.connection import Connection
    from tap_acumatica.sync.progress import Progress
    from tap_acumatica.sync.stream import WindowedStream  # imports this module

LOGGER = logging.getLogger("tap-acumatica")

#: A window fetch (``WindowedStream.fetch_window``), run on a worker thread.
Fetch = Callable[[Window], WindowResult]


@dataclass
class _Ahead:
    """One stream's first window, being read (or read) ahead of the stream."""

    window: Window
    future: Future[WindowResult]
    sent_before: int  # the stream's requests on the wire before it (its progress counts on)


class Prefetcher:
    """The first windows read ahead in one run: at most ``workers - 1`` waiting at a time."""

    def __init__(self) -> None:
        """Nothing read ahead yet."""
        self._lock = threading.Lock()
        self._ahead: dict[str, _Ahead] = {}  # stream name → its first window, not started yet
        self._claimed: dict[str, _Ahead] = {}  # started, its fetch wrapper not built yet
        self.wasted = 0  # requests read ahead for nothing, in this run

    def start(self, stream: WindowedStream, begin: int, end: int, progress: Progress) -> int:
        """``stream`` starts reading ``[begin, end)``: the end to read to. Reads ahead now.

        A first window read ahead is the stream's when it starts at ``begin``; the stream then
        reads to that window's end instead, so its first request is the one already made.
        That end is as safe: ``Connection.sync_end_ms`` at the time, and the window was read
        after it. (It may even lie a little after ``end``: the server clock is estimated from
        ``Date`` headers in whole seconds, always on the early side, so two estimates differ
        by up to a second, both before the server's clock.)
        """
        with self._lock:
            ahead = self._ahead.pop(stream.name, None)
        if ahead is not None:
            if ahead.window.start == begin < ahead.window.end:
                with self._lock:
                    self._claimed[stream.name] = ahead
                end = ahead.window.end
                progress.since(ahead.sent_before)
            else:
                self._drop(stream.name, ahead, f"the stream starts at {iso_utc(begin)}")
        if stream.settings.overlap_streams and _probe_done(stream):
            self._fill(stream)
        return end

    def fetcher(self, stream: WindowedStream, fetch: Fetch) -> Fetch:
        """``fetch``, answering the stream's first request from the window read ahead.

        Runs on the worker threads. The first window asked is the whole range (the planner's
        first width), so it is the one read ahead; the result, or the error (a 403 answer
        raises ``EntityUnavailableError`` here, in this stream), is the fetch's own.
        """
        with self._lock:
            ahead = self._claimed.pop(stream.name, None)
        if ahead is None:
            return fetch
        first = threading.Lock()

        def answer(window: Window) -> WindowResult:
            if first.acquire(blocking=False):
                if window == ahead.window:
                    return ahead.future.result()
                self._drop(stream.name, ahead, f"the stream asked {window} first")
            return fetch(window)

        return answer

    def _fill(self, current: WindowedStream) -> None:
        """Read ahead the first windows of the streams after ``current``, up to the bound."""
        order = _sync_order(current)
        names = [s.name for s in order]
        here = names.index(current.name) if current.name in names else len(names)
        with self._lock:
            passed = [n for n in self._ahead if n not in names[here + 1 :]]
            dropped = [(n, self._ahead.pop(n)) for n in passed]
        for name, ahead in dropped:  # a stream that ended before its first window
            self._drop(name, ahead, "the stream did not read it")
        with self._lock:
            room = _workers(current) - 1 - len(self._ahead)
        end: int | None = None
        for stream in order[here + 1 :]:
            if room <= 0:
                break
            if stream.name in self._ahead or not _eligible(stream):
                continue
            if end is None:  # the run's first request (the probe) was made: no I/O here
                end = tick_floor(
                    current.connection.sync_end_ms(current.settings.safety_lag_seconds)
                )
            begin = first_begin(stream)
            if begin is None or begin >= end:
                continue
            window = Window(begin, end)
            sent = current.connection.client.sent.of(stream.name)
            future = current.connection.pool.submit(_read_first(stream, window))
            with self._lock:
                self._ahead[stream.name] = _Ahead(window, future, sent)
            room -= 1

    def _drop(self, name: str, ahead: _Ahead, why: str) -> None:
        """An unused first window: cancelled if still queued, else its answer thrown away."""
        sent = not ahead.future.cancel()
        with self._lock:
            self.wasted += int(sent)
            wasted = self.wasted
        LOGGER.info(
            "%s: the first window read ahead, %s, was not used (%s)%s; %d request(s) read ahead "
            "wasted in this run",
            name,
            ahead.window,
            why,
            "" if sent else ", cancelled before it was sent",
            wasted,
        )


_RUNS: weakref.WeakKeyDictionary[Connection, Prefetcher] = weakref.WeakKeyDictionary()
_RUNS_LOCK = threading.Lock()


def of(connection: Connection) -> Prefetcher:
    """The run's one prefetcher: one per ``Connection`` (a tap's run), made on first use."""
    with _RUNS_LOCK:
        found = _RUNS.get(connection)
        if found is None:
            found = _RUNS[connection] = Prefetcher()
        return found


def start(stream: WindowedStream, begin: int, end: int, progress: Progress) -> int:
    """:meth:`Prefetcher.start` of the stream's run."""
    return of(stream.connection).start(stream, begin, end, progress)


def fetcher(stream: WindowedStream, fetch: Fetch) -> Fetch:
    """:meth:`Prefetcher.fetcher` of the stream's run."""
    return of(stream.connection).fetcher(stream, fetch)


def first_begin(stream: WindowedStream) -> int | None:
    """Where ``stream`` will start reading (``WindowedStream._incremental``), or None.

    singer-sdk's starting value is the bookmark or ``start_date``, the later
    (``write_starting_replication_value``, written when ``Stream.sync`` starts, so not yet
    readable here); then the look-back, on a tick. None where that is not certain: a
    bookmark under another replication key (renamed: adopted or ignored as the stream
    starts), an ``expand_lookback_days`` re-read, dates that do not parse. A dialect that
    moves its start otherwise is caught when the stream starts (:meth:`Prefetcher.start`).
    """
    bookmarks = stream.tap_state.get("bookmarks") or {}
    state: dict[str, Any] = bookmarks.get(stream.name) or {}  # read only: never created here
    bookmark = state.get("replication_key_value")
    if state.get("partitions") or (
        bookmark and state.get("replication_key") != stream.replication_key
    ):
        return None
    if bookmark and stream.settings.expand_lookback_days:
        return None
    values = [parse_ms(str(v)) for v in (bookmark, stream.config.get("start_date")) if v]
    if any(v is None for v in values):
        return None
    start = max((v for v in values if v is not None), default=to_ms(DEFAULT_START))
    lookback = int(max(0.0, stream.settings.lookback_minutes) * 60_000)
    # WindowedStream's minus_lookback: never before DEFAULT_START because of the look-back.
    return tick_floor(max(start - lookback, min(start, to_ms(DEFAULT_START))))


def _eligible(stream: WindowedStream) -> bool:
    """A selected, windowed, incremental stream (keyset streams read no first window)."""
    return (
        stream.selected
        and bool(stream.replication_key)
        and not stream.keyset
        and stream.replication_method == "INCREMENTAL"
    )


def _probe_done(stream: WindowedStream) -> bool:
    """True once no stream needs the time probe any more (passed, or a fresh verdict)."""
    skew = stream.connection.client.server_skew or 0.0
    now_ms = int((time.time() + skew) * 1000)
    return not stream.report.needs_probe(stream.tap_state, now_ms)


def _workers(stream: WindowedStream) -> int:
    """The pool's workers (``Connection.pool``): requests that can be in flight at once."""
    connection = stream.connection
    return min(stream.settings.max_concurrent_requests, connection.authenticator.lanes.size)


def _sync_order(stream: WindowedStream) -> list[WindowedStream]:
    """The tap's windowed streams in the order ``Tap.sync_all`` syncs them (``sdk.py``)."""
    streams: list[Any] = sdk.sync_order(stream)
    return [s for s in streams if hasattr(s, "fetch_window")]


def _read_first(stream: WindowedStream, window: Window) -> Callable[[], WindowResult]:
    """The first window's fetch, on a worker: compiled first (``prepare``), as at its start."""

    def read() -> WindowResult:
        stream.prepare()
        return stream.fetch_window(window)

    return read
