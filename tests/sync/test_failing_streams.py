"""Issue 11 (3, 6) against the sandbox: failing streams are skipped, stamps must agree."""

from __future__ import annotations

from typing import Any

from tests._taprun import run_tap, tap_config

FAILING = ("--forbidden", "Employee", "--not-set-up", "Project")
ENTITIES = ["Customer", "Employee", "Project", "SalesOrder"]


def _lines(stderr: str, *needles: str) -> list[str]:
    return [line for line in stderr.splitlines() if all(n in line for n in needles)]


def test_one_failing_stream_does_not_stop_the_others(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "3", "--records", "120", *FAILING)
    run = run_tap(tap_config(sbx, entities=ENTITIES, page_size=200))
    assert run.returncode != 0
    for entity in ("Customer", "SalesOrder"):  # every record of the readable streams
        truth = sorted(r["id"] for r in sbx.ground_truth(entity)["live"])
        assert sorted(r["id"] for r in run.records[entity]) == truth
    assert not run.records.get("Employee")
    assert not run.records.get("Project")
    state = run.last_state
    assert state is not None
    for entity in ("Customer", "SalesOrder"):
        assert state["bookmarks"][entity]["replication_key_value"].endswith("+00:00")
    assert not state["bookmarks"].get("Employee")
    assert not state["bookmarks"].get("Project")
    # One warning per failed stream, naming it and the fix, then one line each at the end.
    final = _lines(run.stderr, "tap-acumatica: stream ")
    assert len(final) == 2, run.stderr[-3000:]
    assert "Employee was not read: HTTP 403" in final[0] + final[1]
    assert "Projects Preferences form" in final[0] + final[1]
    for entity, fix in (("Employee", "Access Rights by Screen"), ("Project", "Preferences")):
        assert len(_lines(run.stderr, "WARNING", f"{entity} was not read", fix)) == 1
        assert len(_lines(run.stderr, "tap-acumatica: stream", entity)) == 1
    # Nothing else speaks of the failures: no retry lines, no error log, no traceback.
    assert len(_lines(run.stderr, "Employee", "403")) == 2
    assert len(_lines(run.stderr, "Project", "not set up")) == 2
    assert "ERROR" not in run.stderr
    assert "Traceback" not in run.stderr
    assert "unexpected error" not in run.stderr
    assert "outside the window" not in run.stderr
    assert "honours the offset" in run.stderr  # the run's one time-semantics probe passed


def test_offsets_ignored_stop_the_run_before_any_state(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "3", "--records", "120", "--time-semantics", "local")
    run = run_tap(tap_config(sbx, entities=["Customer", "SalesOrder"], page_size=200))
    assert run.returncode == 1
    assert run.states == []
    assert run.records == {}
    lines = _lines(run.stderr, "tap-acumatica:")
    assert len(lines) == 1, run.stderr[-3000:]
    assert "ignores the offset of $filter date-time literals" in lines[0]
    assert "Traceback" not in run.stderr
