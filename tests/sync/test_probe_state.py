"""Issue 15: the time-semantics probe's verdict lives in STATE, so a run with no changes costs
one request per stream (docs/acumatica-api.md §13).

The first run probes (a ``$top=1`` sample, then its one-tick window written at +05:00/-05:00)
and keeps ``offsets_honoured_at`` in the probing stream's state; later runs skip the probe
while any stream's verdict is younger than ``PROBE_RECHECK_DAYS``. An instance that ignores
offsets (the sandbox's ``--time-semantics local``) still stops a run that probes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tap_acumatica.stamps import DAY_MS, iso_utc, parse_ms
from tap_acumatica.sync.report import PROBE_RECHECK_DAYS, VERDICT_KEY, RunReport
from tests._batch import batch_config
from tests._taprun import CORE, TapRun, run_tap, tap_config
from tests.support import Sandbox

SandboxFactory = Callable[..., Sandbox]


def _now_ms(sbx: Sandbox) -> int:
    value = parse_ms(sbx.admin("GET", "clock")["now"])
    assert value is not None
    return value


def _queries(sbx: Sandbox, before: int) -> dict[str, list[dict[str, str]]]:
    """Entity list GETs since query ``before``, by entity: their query parameters."""
    out: dict[str, list[dict[str, str]]] = {}
    for query in sbx.stats()["queries"][before:]:
        entity = query["path"].rsplit("/", 1)[-1]
        if entity in CORE:
            out.setdefault(entity, []).append(query["params"])
    return out


def _probes(queries: dict[str, list[dict[str, str]]]) -> list[str]:
    """The probe's requests: the unfiltered sample and the window written at offsets."""
    return [
        entity
        for entity, params in queries.items()
        for p in params
        if "$filter" not in p or "+05:00" in p["$filter"]
    ]


def _verdicts(state: dict[str, Any]) -> dict[str, str]:
    return {s: b[VERDICT_KEY] for s, b in state["bookmarks"].items() if VERDICT_KEY in b}


def _run(sbx: Sandbox, state: dict[str, Any] | None = None, **extra: Any) -> TapRun:
    run = run_tap(tap_config(sbx, page_size=500, **extra), state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.parametrize("mode", ["records", "batch"])
def test_the_verdict_in_state_spares_the_next_run_the_probe(
    sandbox_factory: SandboxFactory, tmp_path: Path, mode: str
) -> None:
    sbx = sandbox_factory("--seed", "5", "--records", "60")
    extra = {"batch_config": batch_config(tmp_path, 50)} if mode == "batch" else {}
    before, clock = len(sbx.stats()["queries"]), _now_ms(sbx)
    first = _run(sbx, **extra)
    # (1) The first run probes once: two requests, on its first incremental stream.
    assert _probes(_queries(sbx, before)) == ["Customer", "Customer"]
    assert "honours the offset" in first.stderr
    state = first.last_state
    assert state is not None
    verdicts = _verdicts(state)
    assert list(verdicts) == ["Customer"]  # a stream that never probed keeps no verdict
    at = parse_ms(verdicts["Customer"])
    assert at is not None
    assert clock - 2000 <= at <= _now_ms(sbx) + 1000  # the server's clock (whole-second Date)
    if mode == "records":  # every STATE from the first commit on carries it
        assert all(_verdicts(s) == verdicts for s in first.states)

    # (2) The next run, nothing changed: one list GET per stream, no probe; the verdict stays.
    sbx.admin("POST", "clock", {"advance_seconds": 2})
    before = len(sbx.stats()["queries"])
    second = _run(sbx, state=state, **extra)
    queries = _queries(sbx, before)
    assert {e: len(q) for e, q in queries.items()} == dict.fromkeys(CORE, 1)
    assert _probes(queries) == []
    assert "honours the offset" not in second.stderr
    assert second.last_state is not None
    assert _verdicts(second.last_state) == verdicts


@pytest.mark.parametrize(
    ("age_days", "probed"),
    [(PROBE_RECHECK_DAYS - 1, False), (PROBE_RECHECK_DAYS + 1, True)],
)
def test_a_verdict_older_than_the_period_is_checked_again(
    sandbox_factory: SandboxFactory, age_days: int, probed: bool
) -> None:
    sbx = sandbox_factory("--seed", "5", "--records", "60")
    first = _run(sbx)
    assert first.last_state is not None
    # Any stream's verdict counts: move it to the stream read last.
    state = copy.deepcopy(first.last_state)
    del state["bookmarks"]["Customer"][VERDICT_KEY]
    old = iso_utc(_now_ms(sbx) - age_days * DAY_MS)
    state["bookmarks"]["StockItem"][VERDICT_KEY] = old
    sbx.admin("POST", "clock", {"advance_seconds": 2})
    before, clock = len(sbx.stats()["queries"]), _now_ms(sbx)
    second = _run(sbx, state=state)
    assert second.last_state is not None
    verdicts = _verdicts(second.last_state)
    if not probed:
        assert _probes(_queries(sbx, before)) == []
        assert verdicts == {"StockItem": old}
        return
    assert _probes(_queries(sbx, before)) == ["Customer", "Customer"]
    assert verdicts["StockItem"] == old
    fresh = parse_ms(verdicts["Customer"])
    assert fresh is not None
    assert clock - 2000 <= fresh <= _now_ms(sbx) + 1000


@pytest.mark.parametrize("stale", [False, True])
def test_ignored_offsets_stop_a_run_that_probes(
    sandbox_factory: SandboxFactory, *, stale: bool
) -> None:
    sbx = sandbox_factory("--seed", "3", "--records", "60", "--time-semantics", "local")
    state = None
    if stale:  # a verdict from before an upgrade that changed how literals are read
        old = iso_utc(_now_ms(sbx) - (PROBE_RECHECK_DAYS + 1) * DAY_MS)
        state = {"bookmarks": {"SalesOrder": {VERDICT_KEY: old}}}
    run = run_tap(tap_config(sbx, entities=["Customer", "SalesOrder"]), state=state)
    assert run.returncode == 1
    assert run.records == {}
    assert all(s == (state or {}) for s in run.states)  # no bookmark, no verdict
    lines = [line for line in run.stderr.splitlines() if "tap-acumatica:" in line]
    assert len(lines) == 1, run.stderr[-3000:]
    assert "ignores the offset of $filter date-time literals" in lines[0]
    assert "Traceback" not in run.stderr


# -- the run-wide decision, offline ----------------------------------------------------------

NOW = parse_ms("2026-06-01T12:00:00+00:00") or 0


def _state(**verdicts: Any) -> dict[str, Any]:
    return {"bookmarks": {s: {VERDICT_KEY: v} for s, v in verdicts.items()}}


@pytest.mark.parametrize(
    ("state", "needed"),
    [
        ({}, True),
        ({"bookmarks": {"A": {"replication_key_value": iso_utc(NOW)}}}, True),
        (_state(A=iso_utc(NOW - DAY_MS)), False),
        (_state(A=iso_utc(NOW - 8 * DAY_MS), B=iso_utc(NOW - 2 * DAY_MS)), False),
        (_state(A=iso_utc(NOW - PROBE_RECHECK_DAYS * DAY_MS)), True),  # exactly the period
        (_state(A=iso_utc(NOW + DAY_MS)), True),  # from the future: another clock
        (_state(A="yesterday", B=None, C=17), True),  # not a date-time: no verdict
        ({"bookmarks": {"A": {"partitions": [{VERDICT_KEY: iso_utc(NOW)}]}}}, False),
        ({"bookmarks": ["A"]}, True),
    ],
)
def test_needs_probe_reads_every_streams_verdict(state: dict[str, Any], needed: bool) -> None:
    report = RunReport()
    assert report.needs_probe(state, NOW) is needed
    assert report.needs_probe({}, NOW) is needed  # decided once for the run


def test_a_passed_probe_is_kept_in_the_streams_state_and_holds_for_the_run() -> None:
    report, stream_state = RunReport(), {"replication_key_value": iso_utc(NOW)}
    assert report.needs_probe({}, NOW)
    report.probed(stream_state, NOW)
    assert stream_state[VERDICT_KEY] == iso_utc(NOW)
    assert not report.needs_probe({}, NOW)
    bare = RunReport()
    bare.probed()  # marked without a state (tests that skip the probe): nothing stored
    assert not bare.needs_probe({}, NOW)
