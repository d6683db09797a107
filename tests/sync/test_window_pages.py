"""Full windows read in one-row-overlap ``$skip`` pages (issue 15), with fakes (no network)."""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tap_acumatica.pool import DaemonPool
from tap_acumatica.stamps import iso_utc
from tap_acumatica.sync.scheduler import Paging, WindowResult, fetch_in_order
from tap_acumatica.sync.window_pages import PagedWindow, chain, page_skip
from tap_acumatica.sync.windows import PageStamps, Window, WindowPlanner

SPAN = 10_000_000
Row = dict[str, Any]


class Source:
    """A table listed in key order (docs/acumatica-api.md §4), windowed on stamp ``t``.

    ``between`` runs after every page request (a writer acting between the pages).
    """

    def __init__(self, n: int, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.rows: dict[str, int] = {f"k{i:06d}": rng.randrange(SPAN) for i in range(n)}
        self.lock = threading.Lock()
        self.pages = 0  # page requests (skip > 0)
        self.requests = 0
        self.threads: set[str] = set()
        self.active = 0
        self.peak = 0
        self.delay = 0.0
        self.between: Callable[[Source], None] | None = None

    def page(self, window: Window, skip: int, top: int) -> list[Row]:
        with self.lock:
            self.requests += 1
            self.pages += skip > 0
            self.threads.add(threading.current_thread().name)
            self.active += 1
            self.peak = max(self.peak, self.active)
            inside = sorted(k for k, t in self.rows.items() if window.start <= t < window.end)
            rows = [{"id": k, "t": iso_utc(self.rows[k])} for k in inside[skip : skip + top]]
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
            if self.between is not None:
                self.between(self)
        return rows

    def window(self, page_size: int) -> Callable[[Window], WindowResult]:
        def fetch(window: Window) -> WindowResult:
            rows = self.page(window, 0, page_size)
            if len(rows) < page_size or not window.splittable:
                return WindowResult(window, rows)
            stamps = PageStamps.of(rows, "t")
            return WindowResult(window, rows, full=True, tie=stamps.tie, sample=stamps.sample)

        return fetch


def _measured(page: int, records: int) -> WindowPlanner:
    """A planner that has measured ``records`` over the whole span: one window, paged."""
    planner = WindowPlanner(page_size=page, initial_width=SPAN, pages=8)
    planner.observe(Window(0, SPAN), records, full=False)
    return planner


def _read(
    source: Source,
    planner: WindowPlanner,
    page: int,
    workers: int,
    paging: Paging | None = None,
) -> list[WindowResult]:
    paging = paging or Paging(source.page, page, "t", lambda r: str(r["id"]))
    return list(
        fetch_in_order(
            planner,
            0,
            SPAN,
            source.window(page),
            pool=DaemonPool(workers, "pages"),
            workers=workers,
            paging=paging,
        )
    )


def _ids(results: list[WindowResult]) -> list[str]:
    return [str(r["id"]) for result in results for r in result.records]


@pytest.mark.parametrize("workers", [1, 3])
def test_a_full_window_is_read_in_overlapping_pages_not_discarded(workers: int) -> None:
    source = Source(700)
    results = _read(source, _measured(100, 700), 100, workers)
    assert [r.window for r in results] == [Window(0, SPAN)]  # one window, never re-cut
    assert sorted(_ids(results)) == sorted(source.rows)  # every record, each once
    # Pages overlap by one row: ceil((n - 1) / (page - 1)), the first page included.
    assert source.requests == math.ceil((700 - 1) / 99) == 8
    assert page_skip(3, 100) == 297


def test_pages_are_fetched_on_several_workers_at_once() -> None:
    source = Source(1500, seed=2)
    source.delay = 0.02
    results = _read(source, _measured(100, 1500), 100, 4)
    assert sorted(_ids(results)) == sorted(source.rows)
    assert len(source.threads) >= 3
    assert source.peak >= 3  # speculative pages of one window in flight together
    assert source.requests <= math.ceil(1499 / 99) + 3  # a few speculative pages at most


def _paging(source: Source, page: int) -> Paging:
    return Paging(source.page, page, "t", lambda r: str(r["id"]))


def test_a_deleted_row_before_a_boundary_is_bridged_by_one_page() -> None:
    source = Source(700, seed=3)
    everyone = set(source.rows)
    deleted: list[str] = []

    def delete_once(src: Source) -> None:
        if src.pages == 2 and not deleted:  # between pages: a row of page 0 goes away
            victim = sorted(src.rows)[5]
            deleted.append(victim)
            del src.rows[victim]

    source.between = delete_once
    paging = _paging(source, 100)
    results = _read(source, _measured(100, 700), 100, 1, paging)
    got = _ids(results)
    assert deleted
    assert len(got) == len(set(got))  # no duplicate
    assert everyone - set(deleted) <= set(got)  # 0 lost
    # The gap after the deleted row is closed by one page over it, not by a re-read.
    assert [r.window for r in results] == [Window(0, SPAN)]
    assert paging.bridges[0] == 1
    assert source.requests == math.ceil(699 / 99) + 1


def test_a_shift_wider_than_half_a_page_is_re_read_split() -> None:
    source = Source(700, seed=6)
    everyone = set(source.rows)
    deleted: list[str] = []

    def delete_many(src: Source) -> None:
        if src.pages == 2 and not deleted:  # 60 rows of page 0 go: no bridge can hold both
            for victim in sorted(src.rows)[:60]:
                deleted.append(victim)
                del src.rows[victim]

    source.between = delete_many
    paging = _paging(source, 100)
    results = _read(source, _measured(100, 700), 100, 1, paging)
    got = _ids(results)
    assert len(got) == len(set(got))
    assert everyone - set(deleted) <= set(got)  # 0 lost
    assert len(results) > 1  # detected, and the window re-read split


def test_a_late_commit_before_a_boundary_is_kept_once() -> None:
    source = Source(700, seed=4)
    everyone = set(source.rows)

    def insert_once(src: Source) -> None:
        if src.pages == 3 and "k000002a" not in src.rows:  # sorts before most of the window
            src.rows["k000002a"] = SPAN // 2

    source.between = insert_once
    paging = _paging(source, 100)
    results = _read(source, _measured(100, 700), 100, 1, paging)
    got = _ids(results)
    assert len(got) == len(set(got))
    assert everyone <= set(got)
    # The list grew: two rows shared at the boundaries after it, still a chain.
    assert [r.window for r in results] == [Window(0, SPAN)]
    assert paging.bridges[0] == 0


def test_chain_links_pages_that_share_a_row_and_asks_for_bridges() -> None:
    def ident(row: Row) -> str:
        return str(row["id"])

    def rows(*keys: str) -> list[Row]:
        return [{"id": k} for k in keys]

    def linked(pages: list[list[Row]], bridges: dict[int, list[Row]] | None = None) -> Any:
        return chain(dict(enumerate(pages)), len(pages) - 1, bridges or {}, ident, 3)

    assert linked([rows("a", "b", "c"), rows("c", "d")]) == rows("a", "b", "c", "d")
    assert linked([rows("a", "b", "c"), rows("b", "c", "d"), rows("d")]) == rows(
        "a", "b", "c", "d"
    )  # a row twice (the list grew): kept once
    assert linked([rows("a", "b", "c"), rows("e", "f")]) == 1  # a gap: a bridge before page 1
    assert linked([rows("a", "b", "c"), []]) == 1  # the set shrank past the end
    bridged = linked([rows("a", "b", "c"), rows("e", "f")], {1: rows("c", "d", "e")})
    assert bridged == rows("a", "b", "c", "d", "e", "f")
    assert linked([rows("a", "b", "c"), rows("e", "f")], {1: rows("x", "y", "z")}) is None
    assert linked([rows("a", "b", "c"), rows("g")], {1: rows("c", "d", "e")}) is None
    # A short bridge is the list's end: the pages after it add nothing it must link to.
    assert linked([rows("a", "b", "c"), []], {1: rows("c", "d")}) == rows("a", "b", "c", "d")
    paged = PagedWindow(3, cap=8, expect=3, pages={0: rows("a", "b", "c")})
    assert (paged.skip(4), paged.bridge(4), paged.bridge(1)) == (8, 7, 1)
    paged.pages[1] = rows("e", "f")  # short: the end, but nothing links it to page 0
    assert paged.outcome(ident) == "pending"
    assert paged.gaps == [1]
    paged.gaps.clear()
    paged.bridges[1] = rows("c", "d", "e")
    assert paged.outcome(ident) == rows("a", "b", "c", "d", "e", "f")
    paged.bridges[1] = rows("q", "r", "s")
    assert paged.outcome(ident) == "shift"


def test_a_window_past_the_page_cap_is_split_and_read_on_not_re_read() -> None:
    source = Source(3000, seed=5)
    planner = _measured(50, 300)  # expects ~6 pages; the span holds ~61
    paging = _paging(source, 50)
    results = _read(source, planner, 50, 2, paging)
    got = _ids(results)
    assert sorted(got) == sorted(source.rows)
    assert len(got) == len(set(got))
    assert len(results) > 1
    assert paging.splits[0] >= 1
    for result in results:
        assert len(result.records) <= 16 * 49 + 1  # no window held more than the cap
    # Nothing read twice but the overlap rows: each part goes on from the rows read before
    # it, at most one page more per window than its records fill.
    assert source.requests <= math.ceil(2999 / 49) + len(results) + paging.wasted[0]


def test_a_first_window_from_a_guess_is_paged_on_several_workers_at_once() -> None:
    source = Source(3000, seed=7)
    source.delay = 0.01
    planner = WindowPlanner(page_size=50, initial_width=SPAN, pages=8)  # nothing measured
    paging = _paging(source, 50)
    results = _read(source, planner, 50, 4, paging)
    got = _ids(results)
    assert sorted(got) == sorted(source.rows)
    assert len(got) == len(set(got))
    assert source.peak >= 3  # the whole range's pages in flight together from the start
    assert source.requests <= math.ceil(2999 / 49) + len(results) + paging.wasted[0]
    assert paging.wasted[0] <= 3 * len(results)  # speculation: < one round per window


@pytest.mark.parametrize("seed", range(8))
def test_writers_during_split_and_guessed_windows_lose_nothing(seed: int) -> None:
    """Deletes and restamps between pages while windows are guessed, bridged and split."""
    source = Source(3000, seed=seed + 100)
    rng = random.Random(seed)
    original = dict(source.rows)
    touched: set[str] = set()

    def writer(src: Source) -> None:
        for _ in range(rng.randrange(4)):
            key = rng.choice(sorted(src.rows))
            if rng.random() < 0.5:
                del src.rows[key]
            else:
                src.rows[key] = SPAN + 5  # changed now: out of the range
            touched.add(key)

    source.between = writer
    planner = WindowPlanner(page_size=40, initial_width=SPAN, pages=8)
    paging = _paging(source, 40)
    results = _read(source, planner, 40, 3, paging)
    got = _ids(results)
    assert len(got) == len(set(got))
    assert {k for k in original if k not in touched} <= set(got)  # 0 lost
    windows = [r.window for r in results]
    assert windows[0].start == 0
    assert windows[-1].end == SPAN
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert paging.splits[0] >= 1
    assert paging.bridges[0] >= 1


@pytest.mark.parametrize("seed", range(6))
def test_writers_between_concurrent_pages_lose_nothing(seed: int) -> None:
    """Deletes, restamps (a change: stamped after the range) and late commits at random."""
    source = Source(2500, seed=seed)
    rng = random.Random(seed)
    original = dict(source.rows)
    touched: set[str] = set()

    def writer(src: Source) -> None:
        for _ in range(rng.randrange(8)):
            op = rng.random()
            key = rng.choice(sorted(src.rows))
            if op < 0.4:
                del src.rows[key]
                touched.add(key)
            elif op < 0.8:
                src.rows[key] = SPAN + 5  # changed now: after the window, out of the range
                touched.add(key)
            else:
                late = f"{key}~late{rng.randrange(10**6)}"
                src.rows[late] = rng.randrange(SPAN)  # committed late with an older stamp
                touched.add(late)

    source.between = writer
    planner = _measured(100, 2500)  # windows of about 7 pages
    results = _read(source, planner, 100, 3)
    got = _ids(results)
    assert len(got) == len(set(got))  # no duplicate across pages or windows
    survivors = {k for k in original if k not in touched}
    assert survivors <= set(got)  # 0 lost
    windows = [r.window for r in results]
    assert windows[0].start == 0
    assert windows[-1].end == SPAN
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
