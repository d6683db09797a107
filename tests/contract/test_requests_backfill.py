"""Requests of a REST backfill (issue 15): full windows are paged on, not re-read split."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from typing import Any

from tap_acumatica.stamps import parse_ms
from tests._taprun import run_tap, tap_config
from tests.chaos.support import bookmarks, must_have
from tests.support import Sandbox

SandboxFactory = Callable[..., Sandbox]


def _customer_queries(sbx: Sandbox, before: int) -> list[dict[str, str]]:
    """The params of every list GET of Customer since ``before`` (the data requests)."""
    queries = sbx.stats()["queries"][before:]
    return [q["params"] for q in queries if q["path"].endswith("/Customer")]


def _bounds(text: str) -> tuple[int, int]:
    stamps = re.findall(r"\b(?:ge|lt) (?:datetimeoffset')?([0-9][0-9T:.+\-Z]+)", text)
    low, high = (parse_ms(s) for s in stamps)
    assert low is not None
    assert high is not None
    return low, high


def test_customer_backfill_costs_about_one_request_per_page(
    sandbox_factory: SandboxFactory,
) -> None:
    n, page = 100_000, 250
    sbx = sandbox_factory(
        "--seed", "3", "--records", "100", "--big-entity", "Customer", "--big-records", str(n),
        "--burst-size", "50",
    )  # fmt: skip
    truth = {r["id"] for r in sbx.ground_truth("Customer")["live"]}
    assert len(truth) == n
    before = len(sbx.stats()["queries"])
    config = tap_config(sbx, entities=["Customer"], page_size=page, max_concurrent_requests=2)
    run = run_tap(config)
    assert run.returncode == 0, run.stderr[-3000:]
    got = [r["id"] for r in run.records["Customer"]]
    assert len(got) == len(set(got)) == n
    assert set(got) == truth
    queries = _customer_queries(sbx, before)
    # Everything counts: the time probe's two requests, the first (full) page of decades,
    # the windows' pages (one row of overlap), the quiet tail up to the sync end.
    assert len(queries) <= 1.05 * math.ceil(n / page), len(queries)
    paged = [q for q in queries if "$skip" in q]
    assert len(paged) > len(queries) // 2  # full windows were paged on, not re-read
    asked = [(q["$filter"], q.get("$skip")) for q in queries if "$top" in q and q["$top"] != "1"]
    assert len(asked) == len(set(asked))  # no page asked twice
    for query in paged:
        low, high = _bounds(query["$filter"])
        assert high - low > 4  # wider than a tick: not a tie burst
    assert "pages shifted" not in run.stderr  # nothing moved: no window was re-read


def test_paged_windows_under_writers_lose_nothing(sandbox_factory: SandboxFactory) -> None:
    """``--writers`` plus a writer aimed at Customer: deletes and changes between pages."""
    sbx = sandbox_factory(
        "--seed", "8", "--records", "100", "--big-entity", "Customer", "--big-records", "6000",
        "--burst-size", "50", "--writers", "60", "--latency-ms", "20",
    )  # fmt: skip
    config = tap_config(sbx, entities=["Customer"], page_size=100, max_concurrent_requests=3)
    stop = threading.Event()

    def customer_writer() -> None:
        ops = ("delete", "update")
        i = 0
        while not stop.wait(0.01):
            sbx.admin("POST", "mutate", {"entity": "Customer", "op": ops[i % 2], "count": 1})
            i += 1

    union: set[str] = set()
    state: dict[str, Any] | None = None
    lost = 0
    paged = 0
    thread = threading.Thread(target=customer_writer, daemon=True)
    thread.start()
    try:
        for _ in range(2):
            before = len(sbx.stats()["queries"])
            run = run_tap(config, state=state)
            assert run.returncode == 0, run.stderr[-3000:]
            union.update(r["id"] for r in run.records["Customer"])
            paged += sum("$skip" in q for q in _customer_queries(sbx, before))
            state = run.last_state
            mark = bookmarks(state).get("Customer")
            assert mark is not None
            lost = len(must_have(sbx, "Customer", mark) - union)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert paged > 10  # the windows were read in $skip pages while the writers wrote
    assert lost == 0
    assert len(sbx.ground_truth("Customer")["deleted"]) > 0  # the writers ran
