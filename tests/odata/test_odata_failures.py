"""A DAC or GI the API user may not read (HTTP 403) is skipped like a REST entity (§9)."""

from __future__ import annotations

from typing import Any

from tests._taprun import run_tap, tap_config


def test_a_forbidden_dac_and_gi_are_skipped_and_the_others_finish(sandbox_factory: Any) -> None:
    # The sandbox answers 403 to every request on SalesOrder's data, the DAC SOLine and the
    # GI SalesOrders included (tests/sandbox/failing.py).
    sbx = sandbox_factory("--seed", "3", "--records", "60", "--forbidden", "SalesOrder")
    config = tap_config(
        sbx,
        entities=["Customer"],
        odata_dacs=["SOLine", "InventoryItem"],
        odata_inquiries=["SalesOrders"],
        date_only_time_zone="America/New_York",
    )
    run = run_tap(config)
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(run.records["Customer"]) == len(sbx.ground_truth("Customer")["live"])
    assert len(run.records["dac_InventoryItem"]) == len(
        sbx.ground_truth("dac/InventoryItem")["live"]
    )
    assert not run.records.get("dac_SOLine")
    assert not run.records.get("gi_SalesOrders")
    final = [line for line in run.stderr.splitlines() if line.startswith("tap-acumatica: stream")]
    assert len(final) == 2, run.stderr[-3000:]
    assert any("dac_SOLine was not read: HTTP 403" in line for line in final)
    assert any("gi_SalesOrders was not read: HTTP 403" in line for line in final)
    assert "Traceback" not in run.stderr
    assert "unexpected error" not in run.stderr


def test_cookie_sign_in_reads_odata_in_the_rest_sessions_and_signs_them_out(
    sandbox_factory: Any,
) -> None:
    """§8: with cookie sign-in the OData requests ride on the REST sessions' cookies.

    Basic auth would open a session per call (a conventional-user licence each); the tap never
    sends it, so the sessions opened are the REST logins, and every one is signed out.
    """
    sbx = sandbox_factory("--seed", "4", "--records", "40")
    config = tap_config(
        sbx,
        entities=["Customer"],
        odata_dacs=["SOLine"],
        odata_inquiries=["SalesOrders"],
        track_deletions=True,
        max_concurrent_requests=2,
        date_only_time_zone="America/New_York",
    )
    run = run_tap(config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.records["dac_SOLine"]
    assert run.records["gi_SalesOrders"]
    stats = sbx.stats()
    assert stats["logins"] == stats["sessions_opened"] <= 2, stats
    assert stats["basic_calls"] == 0
    assert stats["active_sessions"] == 0
