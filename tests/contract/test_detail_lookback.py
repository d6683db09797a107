"""``expand_lookback_days`` (issue 11, tap item 4): the documented way to catch detail-only edits.

On a real instance an edit to an order line does not move the order's change stamp
(docs/acumatica-api.md §3), so an incremental ``SalesOrder`` with ``Details`` misses it. The
sandbox models that with ``--detail-touches-header 0``; the test shows the miss without the
setting and the edit arriving with it, from the same STATE.
"""

from __future__ import annotations

import math
from typing import Any

from tap_acumatica.stamps import parse_ms
from tests._taprun import run_tap, tap_config

EXPAND = {"SalesOrder": ["Details"]}


def _detail_edit(sbx: Any, rid: str) -> dict[str, Any]:
    sbx.admin("POST", "clock", {"advance_seconds": 1})  # the edit gets a later stamp
    body = {"entity": "SalesOrder", "op": "detail", "ids": [rid], "member": "Details", "line": 0}
    out: dict[str, Any] = sbx.admin("POST", "mutate", body)
    return out


def _order(run: Any, rid: str) -> dict[str, Any] | None:
    return next((r for r in run.records.get("SalesOrder", []) if r["id"] == rid), None)


def test_expand_lookback_days_catches_a_detail_only_edit(sandbox_factory: Any) -> None:
    sbx = sandbox_factory(
        "--seed", "9", "--records", "40", "--burst-size", "0", "--detail-touches-header", "0"
    )
    config = tap_config(sbx, entities=["SalesOrder"], expand=EXPAND, page_size=100)
    first = run_tap(config)
    assert first.returncode == 0, first.stderr[-3000:]
    state = first.last_state
    assert state is not None
    orders = [r for r in first.records["SalesOrder"] if r["Details"]]
    newest = max(orders, key=lambda r: parse_ms(r["LastModifiedDateTime"]) or 0)
    rid = newest["id"]
    out = _detail_edit(sbx, rid)
    # past the safety lag, so the edit lies before the next run's sync end
    sbx.admin("POST", "clock", {"advance_seconds": 3600})
    assert out["header_changed"] == [
        next(r["changed"] for r in sbx.ground_truth("SalesOrder")["live"] if r["id"] == rid)
    ]

    missed = run_tap(config, state=state)
    assert missed.returncode == 0, missed.stderr[-3000:]
    assert _order(missed, rid) is None  # the header stamp did not move: the edit is missed
    assert "set expand_lookback_days" in missed.stderr

    now = parse_ms(sbx.admin("GET", "clock")["now"]) or 0
    age_days = (now - (parse_ms(newest["LastModifiedDateTime"]) or 0)) / 86_400_000
    days = math.ceil(age_days) + 1
    caught = run_tap({**config, "expand_lookback_days": days}, state=state)
    assert caught.returncode == 0, caught.stderr[-3000:]
    order = _order(caught, rid)
    assert order is not None, "the re-read must bring the order back"
    assert order["Details"][0] != newest["Details"][0]  # with the edited line
    assert order["Details"][1:] == newest["Details"][1:]
    assert f"re-reading {days:g} days before the bookmark" in caught.stderr
    # the bookmark never moves back because of the re-read
    bookmark = caught.last_state
    assert bookmark is not None
    before = state["bookmarks"]["SalesOrder"]["replication_key_value"]
    after = bookmark["bookmarks"]["SalesOrder"]["replication_key_value"]
    assert (parse_ms(after) or 0) >= (parse_ms(before) or 0)
