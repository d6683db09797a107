"""Incremental sync against the sandbox: loss-free windows, resume, writers, ties, sessions."""

from __future__ import annotations

import json
import re
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tap_acumatica.stamps import parse_ms
from tests._taprun import (
    discover,
    parse_messages,
    read_until,
    run_tap,
    select_fields,
    start_tap,
    tap_config,
    write_json,
)
from tests.support import Sandbox


def _now_ms(sbx: Sandbox) -> int:
    value = parse_ms(sbx.admin("GET", "clock")["now"])
    assert value is not None
    return value


def _must_have(sbx: Sandbox, entity: str, before_ms: int) -> set[str]:
    """Live records whose change stamp is before ``before_ms``: the loss-free promise."""
    truth = sbx.ground_truth(entity)["live"]
    return {r["id"] for r in truth if r["changed"] and (parse_ms(r["changed"]) or 0) < before_ms}


def _ids(records: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in records}


def test_first_run_complete_then_second_run_only_changes(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "11", "--records", "200")
    config = tap_config(sbx, page_size=150)
    first = run_tap(config)
    assert first.returncode == 0, first.stderr[-3000:]
    for entity in ("Customer", "SalesOrder", "StockItem"):
        truth = {r["id"] for r in sbx.ground_truth(entity)["live"]}
        got = [r["id"] for r in first.records[entity]]
        assert set(got) == truth
        assert len(got) == len(truth)  # ties paged without duplicates
    state = first.last_state
    assert state is not None
    bookmark = state["bookmarks"]["Customer"]["replication_key_value"]
    assert bookmark.endswith("+00:00")

    time.sleep(0.01)  # the changes below get stamps later than the first run's end
    updated = sbx.admin("POST", "mutate", {"entity": "Customer", "op": "update", "count": 4})
    inserted = sbx.admin("POST", "mutate", {"entity": "SalesOrder", "op": "insert", "count": 3})
    # The server's Date header has whole seconds and the tap never reads past the server's
    # clock: let the next run start later, as a scheduled one would, not in the same second.
    sbx.admin("POST", "clock", {"advance_seconds": 2})
    second = run_tap(config, state=state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _ids(second.records["Customer"]) == set(updated["ids"])
    assert _ids(second.records["SalesOrder"]) == set(inserted["ids"])
    assert second.records.get("StockItem", []) == []
    # The records carry the new stamps, normalised to UTC.
    stamps = {r["id"]: r["LastModifiedDateTime"] for r in second.records["Customer"]}
    for rid, changed in zip(updated["ids"], updated["changed"], strict=True):
        assert parse_ms(stamps[rid]) == parse_ms(changed)
        assert stamps[rid].endswith("+00:00")


def test_utc_normalisation_and_select(sandbox: Sandbox) -> None:
    config = tap_config(sandbox, entities=["Customer"], page_size=300)
    catalog = discover(config)
    keep = {"CustomerID", "CustomerName", "CreditLimit"}
    select_fields(catalog, "Customer", keep)
    before = len(sandbox.stats()["queries"])
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    records = run.records["Customer"]
    assert records
    # Deselected fields are not in the records and were never requested ($select).
    assert set(records[0]) <= {"id", "note", *keep, "LastModifiedDateTime"}
    queries = [q for q in sandbox.stats()["queries"][before:] if q["path"].endswith("/Customer")]
    assert queries
    # The run's one time-semantics probe samples a record without a filter ($top=1).
    assert [q["params"].get("$top") for q in queries if "$filter" not in q["params"]] == ["1"]
    for query in queries:
        assert set(query["params"]["$select"].split(",")) == {*keep, "LastModifiedDateTime"}
        if query["params"].get("$top") != "1":
            # The default sandbox is 2026 R2: contract 5's bare literals (api.md §1.1).
            assert re.search(r"LastModifiedDateTime ge \d{4}-", query["params"]["$filter"])
            assert "datetimeoffset" not in query["params"]["$filter"]
    # The sandbox serves America/New_York offsets; records carry the same instant in UTC.
    truth = {r["id"]: r["changed"] for r in sandbox.ground_truth("Customer")["live"]}
    for record in records:
        stamp = record["LastModifiedDateTime"]
        assert stamp.endswith("+00:00")
        assert parse_ms(stamp) == parse_ms(truth[record["id"]])


def test_tie_burst_larger_than_page_size(sandbox: Sandbox) -> None:
    config = tap_config(sandbox, entities=["SalesOrder"], page_size=400)
    before = len(sandbox.stats()["queries"])
    run = run_tap(config)
    assert run.returncode == 0, run.stderr[-3000:]
    truth = sandbox.ground_truth("SalesOrder")["live"]
    got = [r["id"] for r in run.records["SalesOrder"]]
    assert sorted(got) == sorted(r["id"] for r in truth)
    stamps: dict[str, int] = {}
    for r in truth:
        stamps[r["changed"]] = stamps.get(r["changed"], 0) + 1
    assert max(stamps.values()) > 400  # the sandbox's burst really is larger than a page
    queries = [q for q in sandbox.stats()["queries"][before:] if q["path"].endswith("/SalesOrder")]
    paged = [q for q in queries if "$skip" in q["params"]]
    assert paged
    # $skip only in closed windows, their bounds on 1/300 s ticks (api.md §3), none past the
    # run's final bookmark (the sync end): issue 15's rule for paging a window.
    final = parse_ms(run.states[-1]["bookmarks"]["SalesOrder"]["replication_key_value"])
    assert final is not None
    for query in paged:
        lo, hi = _window(query["params"]["$filter"])
        assert lo % 10 in {0, 3, 7}
        assert hi % 10 in {0, 3, 7} or hi == final
        assert hi <= final
    # Every window was a page, but the run's one time-semantics probe: $top=1, then its window.
    assert sorted(int(q["params"]["$top"]) for q in queries)[:2] == [1, 400]
    assert sum(int(q["params"]["$top"]) != 400 for q in queries) == 1
    # Tick-aligned windows: no record came back outside the window that returned it.
    assert "outside the window" not in run.stderr


def _window(text: str) -> tuple[int, int]:
    """The bounds of ``F ge A and F lt B`` with contract 4's or contract 5's literals."""
    stamps = re.findall(r"\b(?:ge|lt) (?:datetimeoffset')?([0-9][0-9T:.+\-Z]+)", text)
    assert len(stamps) == 2, text
    lo, hi = parse_ms(stamps[0]), parse_ms(stamps[1])
    assert lo is not None
    assert hi is not None
    return lo, hi


def test_writers_and_deleters_lose_nothing(sandbox_factory: Any) -> None:
    sbx = sandbox_factory(
        "--seed", "5", "--records", "400", "--writers", "40", "--latency-ms", "15"
    )
    config = tap_config(sbx, page_size=120, max_concurrent_requests=3)
    # A deleter that targets the tie burst while it is being paged with $skip.
    burst = {}
    for entity in ("SalesOrder", "Customer", "StockItem"):
        counts: dict[str, list[str]] = {}
        for r in sbx.ground_truth(entity)["live"]:
            counts.setdefault(r["changed"], []).append(r["id"])
        burst[entity] = max(counts.values(), key=len)
    stop = threading.Event()

    def deleter() -> None:
        i = 0
        while not stop.wait(0.02):
            for entity, ids in burst.items():
                if i < len(ids):
                    sbx.admin("POST", "mutate", {"entity": entity, "op": "delete", "ids": [ids[i]]})
            i += 7

    start = _now_ms(sbx)
    thread = threading.Thread(target=deleter, daemon=True)
    thread.start()
    try:
        run = run_tap(config)
    finally:
        stop.set()
        thread.join()
    assert run.returncode == 0, run.stderr[-3000:]
    for entity in ("Customer", "SalesOrder", "StockItem"):
        missing = _must_have(sbx, entity, start) - _ids(run.records[entity])
        assert not missing, f"{entity}: {len(missing)} records lost"
    assert sbx.stats()["active_sessions"] == 0


def test_kill_mid_sync_and_resume_loses_nothing(sandbox_factory: Any) -> None:
    sbx = sandbox_factory(
        "--seed",
        "9",
        "--records",
        "100",
        "--big-entity",
        "SalesOrder",
        "--big-records",
        "24000",  # more than one window (issue 15: windows of up to 16,000 records)
        "--latency-ms",
        "20",
        # The killed run's sessions (one per worker) keep their seats until they idle out.
        "--api-seats",
        "4",
    )
    config = tap_config(sbx, entities=["SalesOrder"], page_size=200)
    start = _now_ms(sbx)
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_tap(write_json(config, Path(tmp), "c.json"))
        assert proc.stdout is not None
        lines: list[str] = []
        records = 0
        for line in proc.stdout:
            lines.append(line)
            records += '"type":"RECORD"' in line.replace(" ", "")
            if records > 2000 and '"type":"STATE"' in line.replace(" ", ""):
                proc.kill()  # kill -9 mid-sync: no chance to flush anything
                break
        proc.wait(timeout=30)
        lines.extend(proc.stdout.read().splitlines())
    first = parse_messages("\n".join(lines))
    states_seen = [m["value"] for m in first if m["type"] == "STATE"]
    assert states_seen
    got = {m["record"]["id"] for m in first if m["type"] == "RECORD"}
    resume = run_tap(config, state=states_seen[-1])
    assert resume.returncode == 0, resume.stderr[-3000:]
    again = _ids(resume.records["SalesOrder"])
    total = _must_have(sbx, "SalesOrder", start)
    assert len(got) < len(total)  # really interrupted
    assert len(again) < len(total)  # really resumed, not restarted
    assert total <= got | again


def test_sigterm_writes_state_and_signs_out(sandbox_factory: Any) -> None:
    sbx = sandbox_factory(
        "--seed",
        "4",
        "--records",
        "100",
        "--big-entity",
        "SalesOrder",
        "--big-records",
        "5000",
        "--latency-ms",
        "30",
    )
    config = tap_config(sbx, entities=["SalesOrder"], page_size=250)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as errfile:
        proc = start_tap(write_json(config, Path(tmp), "c.json"), stderr=errfile)
        assert proc.stdout is not None
        seen = read_until(proc, '"RECORD"')
        assert seen[-1], "the tap ended before emitting a record"
        proc.send_signal(signal.SIGTERM)
        out = "".join(seen) + proc.stdout.read()
        proc.wait(timeout=30)
        errfile.seek(0)
        err = errfile.read()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]  # not "complete"
    assert "Gracefully shutting down" in err
    states = [m["value"] for m in parse_messages(out) if m["type"] == "STATE"]
    assert "SalesOrder" in states[-1]["bookmarks"]
    stats = sbx.stats()
    assert stats["active_sessions"] == 0, err[-2000:]
    assert stats["logouts"] >= 1


def test_fatal_error_signs_out_and_names_the_request(sandbox_factory: Any) -> None:
    faults = {"optimization": {"Customer": ["MainContact"]}}
    sbx = sandbox_factory("--seed", "2", "--records", "50", "--faults", json.dumps(faults))
    config = tap_config(
        sbx,
        entities=["Customer"],
        expand={"Customer": ["MainContact"]},
        endpoint_version="24.200.001",  # the fault schedule speaks contract 4's $expand
    )
    run = run_tap(config)
    assert run.returncode == 1
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("tap-acumatica: Customer: GET /entity/Default/24.200.001/Customer?")
    assert "$expand=MainContact" in line
    assert "Optimization cannot be performed" in line
    assert "`expand`" in line
    assert sbx.stats()["active_sessions"] == 0


def test_sign_out_after_a_normal_run(sandbox: Sandbox) -> None:
    before = sandbox.stats()["logouts"]
    run = run_tap(tap_config(sandbox, entities=["Subaccount"]))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.records["Subaccount"]
    stats = sandbox.stats()
    assert stats["logouts"] > before
    assert stats["active_sessions"] == 0


def test_catalog_run_does_not_download_the_document(sandbox: Sandbox) -> None:
    config = tap_config(sandbox, entities=["Customer"])
    catalog = discover(config)
    before = _count(sandbox, "/swagger.json")
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0
    assert _count(sandbox, "/swagger.json") == before


def _count(sbx: Sandbox, suffix: str) -> int:
    return sum(r["count"] for r in sbx.stats()["requests"] if r["path"].endswith(suffix))
