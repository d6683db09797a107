"""Issue 12 (2) through the CLI: a record stamped where its window cannot hold it is never
dropped in silence. The sandbox answers SalesOrder list GETs with a scripted page (faults
``answers``) whose record's JSON stamp runs ahead of the filter that returned it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests._taprun import run_tap, tap_config
from tests.support import Sandbox

RID = "0c1d2e3f-4a5b-4c6d-8e7f-000000000042"


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [
        # After the sync end (now - safety lag) but not after the server's clock.
        (dt.timedelta(seconds=-60), "outside the window"),
        # Later than the server's own clock: its stamps and clock disagree.
        (dt.timedelta(hours=2), "later than the server's own clock"),
    ],
)
def test_a_stamp_ahead_of_its_window_stops_the_stream_before_its_state(
    sandbox_factory: Any, ahead: dt.timedelta, expected: str
) -> None:
    sbx: Sandbox = sandbox_factory("--seed", "4", "--records", "40", "--burst-size", "5")
    now = dt.datetime.fromisoformat(sbx.admin("GET", "clock")["now"].replace("Z", "+00:00"))
    tenant = dt.timezone(dt.timedelta(hours=-5))  # a stamp in the tenant's offset, as served
    stamp = (now + ahead).astimezone(tenant).isoformat(timespec="milliseconds")
    record = {"id": RID, "OrderNbr": {"value": "SO9"}, "LastModified": {"value": stamp}}
    sbx.admin("POST", "faults", {"answers": {"SalesOrder": [record]}})
    config = tap_config(
        sbx,
        entities=["Customer", "SalesOrder"],
        endpoint_version="24.200.001",
        safety_lag_seconds=600,
    )
    run = run_tap(config)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("tap-acumatica: ")]
    assert len(lines) == 1, run.stderr[-3000:]
    assert (
        f"SalesOrder stopped at its last consistent window: SalesOrder: record {RID}" in (lines[0])
    )
    assert expected in lines[0]
    # Nothing of it left, and no STATE moved SalesOrder's bookmark; Customer was read whole.
    assert not run.records.get("SalesOrder")
    marks = [(s.get("bookmarks") or {}).get("SalesOrder") or {} for s in run.states]
    assert not [m for m in marks if m.get("replication_key_value")]
    truth = sorted(r["id"] for r in sbx.ground_truth("Customer")["live"])
    assert sorted(r["id"] for r in run.records["Customer"]) == truth
