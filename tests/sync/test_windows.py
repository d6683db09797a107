"""Window planning, splitting, ordered concurrent fetch and tie-burst paging (no network)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from urllib.parse import quote

import pytest

from tap_acumatica.contract.records import to_utc
from tap_acumatica.contract.stream import window_filter
from tap_acumatica.errors import AcumaticaAPIError
from tap_acumatica.http.client import encode_query
from tap_acumatica.pool import DaemonPool
from tap_acumatica.stamps import DAY_MS, iso_utc, next_tick, parse_ms, tick_floor
from tap_acumatica.sync.paging import page_consistently
from tap_acumatica.sync.scheduler import WindowResult, fetch_in_order
from tap_acumatica.sync.windows import PRECISION_MS, Window, WindowPlanner


def test_filter_literal_is_offset_qualified_and_encoded() -> None:
    window = Window(parse_ms("2024-07-15T10:31:28.402+03:00"), parse_ms("2024-07-15T08:00:00Z"))
    text = window_filter(window, "LastModified")
    assert text == (
        "LastModified ge datetimeoffset'2024-07-15T07:31:28.402+00:00' and "
        "LastModified lt datetimeoffset'2024-07-15T08:00:00.000+00:00'"
    )
    query = encode_query({"$filter": text, "$top": 5})
    assert query.startswith(
        "$filter=LastModified%20ge%20datetimeoffset'2024-07-15T07%3A31%3A28.402%2B00%3A00'"
    )
    assert query.endswith("&$top=5")
    assert "%24" not in query


def test_iso_utc_is_fixed_width_so_text_order_is_time_order() -> None:
    values = [0, 1, 999, 1000, 86_400_000 * 365 * 60 + 7]
    texts = [iso_utc(v) for v in values]
    assert texts == sorted(texts)
    assert len({len(t) for t in texts}) == 1


def test_utc_normalisation_of_offsets() -> None:
    assert to_utc("2024-08-15T16:03:27.513-04:00") == "2024-08-15T20:03:27.513000+00:00"
    assert to_utc("2024-03-10T01:30:00-05:00") == "2024-03-10T06:30:00.000000+00:00"
    assert to_utc("2024-08-15T00:00:00+00:00") == "2024-08-15T00:00:00.000000+00:00"
    assert to_utc("2021-09-12T11:55:51.25+03:00") == "2021-09-12T08:55:51.250000+00:00"
    assert to_utc("2021-09-12T11:55:51Z") == "2021-09-12T11:55:51.000000+00:00"
    assert to_utc("not a date") == "not a date"
    assert to_utc(None) is None


def test_one_tick_is_the_precision() -> None:
    # SQL Server datetime: 1/300 s ticks, shown as ms ending in 0, 3 or 7 (api.md §3).
    assert Window(7, 10).splittable is False
    assert Window(7, 13).splittable is True
    assert Window(10, 13).splittable is False
    assert Window(7, 10).width == 3


def test_planner_adapts_to_density() -> None:
    planner = WindowPlanner(page_size=100, initial_width=1000 * DAY_MS)
    assert planner.target == 75  # 75 + 2.5 * 1.15 * sqrt(75) <= 100
    first = planner.cut(0, 10_000 * DAY_MS)
    assert first.width == 1000 * DAY_MS
    assert not planner.measured  # the whole range: a guess
    planner.observe(first, 100, full=True)
    assert planner.width == 500 * DAY_MS
    planner.observe(Window(0, 500 * DAY_MS), 200, full=False)  # 0.4/day, target 75 → 187.5 d
    assert planner.width == 500 * DAY_MS * 75 // 200
    assert planner.measured
    # Pooled with the windows before it: 260 records in 600 days, not 60 in 100.
    planner.observe(Window(500 * DAY_MS, 600 * DAY_MS), 60, full=False)
    assert planner.width == 600 * DAY_MS * 75 // 260
    planner.observe(Window(0, 125 * DAY_MS), 0, full=False)  # empty: 8x wider, unmeasured
    assert planner.width == 600 * DAY_MS * 75 // 260 * 8
    assert not planner.measured
    planner.observe(Window(0, DAY_MS), 2, full=False)  # two records: grow at most 4x
    assert planner.width == 4 * DAY_MS
    planner.observe(Window(0, DAY_MS), 200, full=True)  # measured: a full window is noise
    assert planner.width == 4 * DAY_MS
    planner = WindowPlanner(page_size=100, initial_width=8)
    planner.observe(Window(0, 8), 100, full=True)
    planner.observe(Window(0, 2), 100, full=True)
    planner.observe(Window(0, 1), 100, full=True)
    assert planner.width == PRECISION_MS  # never below the precision: one tick (<= 4 ms)


def test_a_sliver_remainder_joins_the_window() -> None:
    planner = WindowPlanner(page_size=100, initial_width=100)
    assert planner.cut(0, 120) == Window(0, 120)  # 20 left < a quarter: one window
    assert planner.cut(0, 130) == Window(0, 100)


def _dataset(n: int, seed: int, span: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    stamps = [rng.randrange(span) for _ in range(n)]
    stamps += [span // 3] * (n // 2)  # a tie burst
    return [(f"r{i}", s) for i, s in enumerate(stamps)]


@pytest.mark.parametrize("workers", [1, 3])
def test_fetch_in_order_is_complete_and_ordered(workers: int) -> None:
    span = 10_000_000
    data = _dataset(2000, 5, span)
    page = 50
    lock = threading.Lock()
    requests = [0]

    def fetch(window: Window) -> WindowResult:
        time.sleep(random.random() / 2000)  # jitter: windows finish out of order
        with lock:
            requests[0] += 1
        rows = [{"id": i, "t": iso_utc(s)} for i, s in data if window.start <= s < window.end]
        if len(rows) >= page and window.splittable:
            return WindowResult(window, rows[:page], full=True, tie=None)
        return WindowResult(window, rows)

    planner = WindowPlanner(page_size=page, initial_width=span)
    results = list(
        fetch_in_order(planner, 0, span, fetch, pool=DaemonPool(workers, "t"), workers=workers)
    )
    windows = [r.window for r in results]
    assert windows[0].start == 0
    assert windows[-1].end == span
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))  # contiguous, in order
    got = [row["id"] for r in results for row in r.records]
    assert sorted(got) == sorted(i for i, _ in data)
    assert requests[0] < 400


def test_a_slow_head_window_does_not_stall_the_other_workers() -> None:
    # A tie burst paged page after page holds the head window for a long time; the other
    # workers must go on fetching the windows after it (their records wait in memory, up to
    # a bound in records), or a latency-bound backfill waits in series behind it.
    span = 10_000_000
    rng = random.Random(3)
    data = sorted(rng.randrange(span) for _ in range(3000))
    page = 50
    lock = threading.Lock()
    after_slow: list[Window] = []
    released = threading.Event()
    slow: list[Window] = []
    held_until_released: list[bool] = []

    def fetch(window: Window) -> WindowResult:
        rows = [{"id": f"r{i}"} for i, s in enumerate(data) if window.start <= s < window.end]
        with lock:
            if not slow and window.start >= span // 2 and window.width < span // 50:
                slow.append(window)
            elif slow and window.start > slow[0].start:
                after_slow.append(window)
                if len(after_slow) >= 20:
                    released.set()
        if slow and window is slow[0]:
            held_until_released.append(released.wait(timeout=5))
        if len(rows) >= page and window.splittable:
            stamps = tuple(sorted(s for s in data if window.start <= s < window.end)[:page])
            return WindowResult(window, full=True, sample=stamps)
        return WindowResult(window, rows)

    planner = WindowPlanner(page_size=page, initial_width=span)
    results = list(fetch_in_order(planner, 0, span, fetch, pool=DaemonPool(3, "t"), workers=3))
    assert held_until_released == [True]  # 20 later windows came back while it was held
    assert sum(len(r.records) for r in results) == len(data)


def test_tie_hint_isolates_the_burst() -> None:
    span = 2**40
    tie = span // 3
    data = [(f"b{i}", tie) for i in range(500)] + [(f"s{i}", i * 1000) for i in range(20)]
    page = 100
    seen: list[Window] = []

    def fetch(window: Window) -> WindowResult:
        seen.append(window)
        rows = [{"id": i} for i, s in data if window.start <= s < window.end]
        if len(rows) >= page and window.splittable:
            return WindowResult(window, full=True, tie=tie)
        return WindowResult(window, rows)

    planner = WindowPlanner(page_size=page, initial_width=span)
    results = list(fetch_in_order(planner, 0, span, fetch, pool=DaemonPool(2, "t"), workers=2))
    assert sum(len(r.records) for r in results) == 520
    assert len(seen) < 10  # not ~40 halvings down to one millisecond
    low = tick_floor(tie)  # the burst's one-tick window (api.md §3: 1/300 s)
    assert Window(low, next_tick(low)) in [r.window for r in results]


def test_full_window_without_tie_is_re_cut() -> None:
    data = list(range(0, 1000, 3))
    page = 10

    def fetch(window: Window) -> WindowResult:
        rows = [{"id": s} for s in data if window.start <= s < window.end]
        if len(rows) >= page:
            return WindowResult(window, rows[:page], full=True)
        return WindowResult(window, rows)

    planner = WindowPlanner(page_size=page, initial_width=1000)
    results = list(fetch_in_order(planner, 0, 1000, fetch, pool=DaemonPool(2, "t"), workers=2))
    assert [row["id"] for r in results for row in r.records] == data
    assert all(len(r.records) < page for r in results)


class ShrinkingList:
    """A tie burst whose members are deleted (or restamped) between page reads."""

    def __init__(self, n: int, seed: int, deletes_per_page: int) -> None:
        self.rows = [{"id": f"k{i:05d}"} for i in range(n)]
        self.rng = random.Random(seed)
        self.deletes_per_page = deletes_per_page
        self.deleted: set[str] = set()
        self.calls = 0

    def page(self, skip: int, top: int) -> list[dict[str, str]]:
        self.calls += 1
        result = self.rows[skip : skip + top]
        for _ in range(self.deletes_per_page):
            if len(self.rows) > 1:
                victim = self.rows.pop(self.rng.randrange(len(self.rows)))
                self.deleted.add(victim["id"])
        return list(result)


@pytest.mark.parametrize(("deletes", "seed"), [(0, 1), (3, 2), (8, 3), (25, 4)])
def test_page_consistently_never_loses_survivors(deletes: int, seed: int) -> None:
    source = ShrinkingList(3000, seed, deletes)
    everyone = {r["id"] for r in source.rows}
    got = list(page_consistently(source.page, page_size=200))
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids))
    survivors = everyone - source.deleted
    assert survivors <= set(ids)
    if deletes == 0:
        assert source.calls == 17  # 3000 rows, 200 a page, 20 overlap: no empty extra page


def test_naive_skip_paging_would_lose_rows() -> None:
    """The failure mode the overlap prevents (what peers do, PEERS.md)."""
    source = ShrinkingList(3000, 2, 3)
    everyone = {r["id"] for r in source.rows}
    got: set[str] = set()
    skip = 0
    while True:
        page = source.page(skip, 200)
        got |= {r["id"] for r in page}
        if len(page) < 200:
            break
        skip += 200
    assert everyone - source.deleted - got  # some surviving rows were skipped


def test_page_consistently_gives_up_loudly() -> None:
    source = ShrinkingList(3000, 9, 150)
    with pytest.raises(AcumaticaAPIError, match="kept shifting"):
        list(page_consistently(source.page, page_size=100, max_restarts=2))


def test_encode_query_keeps_dollar_and_commas() -> None:
    assert encode_query({"$select": "A,B/C", "$top": 10, "$skip": None}) == "$select=A,B/C&$top=10"
    assert quote(":") == "%3A"


@pytest.mark.parametrize("order", ["keys follow stamps", "keys random"])
def test_page_stamps_place_the_cut(order: str) -> None:
    # 3,000 records in the last 1/1000 of a range of decades. Lists come in key order: the
    # first page holds the lowest keys, which either follow the stamps (the usual case: keys
    # are given at creation, most records change soon after) or say nothing about them.
    span = 2**42
    rng = random.Random(11)
    stamps = sorted(span - 1 - rng.randrange(span // 1000) for _ in range(3000))
    if order == "keys random":
        rng.shuffle(stamps)
    data = [(f"r{i:05}", s) for i, s in enumerate(stamps)]
    page = 100

    def run(with_stamps: bool) -> tuple[int, int, list[str]]:
        counts = [0, 0]  # full (wasted) requests, all requests

        def fetch(window: Window) -> WindowResult:
            counts[1] += 1
            rows = [(i, s) for i, s in data if window.start <= s < window.end]
            if len(rows) >= page and window.splittable:
                counts[0] += 1
                sample = tuple(sorted(s for _, s in rows[:page])) if with_stamps else ()
                return WindowResult(window, full=True, sample=sample)
            return WindowResult(window, [{"id": i} for i, _ in rows])

        planner = WindowPlanner(page_size=page, initial_width=span)
        results = fetch_in_order(planner, 0, span, fetch, pool=DaemonPool(2, "t"), workers=2)
        ids = [row["id"] for r in results for row in r.records]
        return counts[0], counts[1], ids

    wasted, total, ids = run(with_stamps=True)
    blind_wasted, _, blind_ids = run(with_stamps=False)
    assert sorted(ids) == sorted(i for i, _ in data) == sorted(blind_ids)  # nothing lost
    assert wasted < blind_wasted / 3  # the page's stamps place the cut; halving time does not
    assert wasted <= 6
    assert total <= 3000 / 75 + 10  # windows aim at 75 records (a margin for noise)
