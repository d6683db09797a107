"""Chaos, OData half: kill -9 at random points of a DAC and of a GI sync, then resume.

A chain of runs reads REST ``SalesOrder``, the DAC stream ``dac_SOLine`` (keyset pages) and the
GI stream ``gi_SalesOrders`` (windows on its ``LastModifiedOn`` column); each run is killed
with SIGKILL after a random number of RECORD lines of the OData streams and resumed from its
last STATE. Nothing the sandbox holds may be missing from the union of what the runs emitted.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.chaos.support import TapProcess, record_figure, size, tap_config
from tests.support import Sandbox

pytestmark = pytest.mark.chaos

SandboxFactory = Callable[..., Sandbox]
DAC, GI = "dac_SOLine", "gi_SalesOrders"
GI_KEYS = ("OrderType", "OrderNbr")


class ODataTapProcess(TapProcess):
    """Counts only RECORD lines of the OData streams toward the kill point."""

    def counts(self, line: bytes) -> bool:
        """A RECORD of ``dac_SOLine`` or ``gi_SalesOrders``."""
        head = line[:80]
        if head.startswith(b'{"type":"RECORD"') and (DAC.encode() in head or GI.encode() in head):
            self.records += 1
            return True
        return False


def _gi_truth(box: Sandbox) -> set[tuple[str, ...]]:
    """Every row key of the GI, read straight from the sandbox's GI service (basic auth)."""
    creds = box.credentials()
    url = f"{box.url}/t/{creds['tenant']}/api/odata/gi/SalesOrders"
    params = {"$select": ",".join(GI_KEYS), "$orderby": ",".join(GI_KEYS)}
    answer = requests.get(
        url, params=params, auth=(creds["username"], creds["password"]), timeout=60
    )
    answer.raise_for_status()
    return {tuple(str(row[k]).strip() for k in GI_KEYS) for row in answer.json()["value"]}


def _delivered(run: TapProcess, into: dict[str, set[Any]]) -> None:
    for msg in run.messages():
        if msg.get("type") != "RECORD":
            continue
        record = msg["record"]
        if msg["stream"] == GI:
            into.setdefault(GI, set()).add(tuple(str(record[k]).strip() for k in GI_KEYS))
        else:
            into.setdefault(msg["stream"], set()).add(record["id"])


def test_kill9_in_dac_and_gi_syncs_then_resume_loses_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    kills = size(6, 20)
    box = sandbox_factory(
        "--seed", "13", "--records", str(size(300, 900)), "--burst-size", "120",
        "--api-seats", str(2 * kills + 4),
    )  # fmt: skip
    config = tap_config(
        box,
        ["SalesOrder"],
        page_size=100,
        # GI date-times are tenant clock times (docs/acumatica-api.md §8): the sandbox's zone
        date_only_time_zone="America/New_York",
        odata_dacs=["SOLine"],
        odata_inquiries=["SalesOrders"],
        odata_inquiry_options={"SalesOrders": {"replication_key": "LastModifiedOn"}},
    )
    truth: dict[str, set[Any]] = {
        "SalesOrder": {r["id"] for r in box.ground_truth("SalesOrder")["live"]},
        DAC: {r["id"] for r in box.ground_truth("dac/SOLine")["live"]},
        GI: _gi_truth(box),
    }
    odata_total = len(truth[DAC]) + len(truth[GI])
    rng = random.Random(20261202)
    union: dict[str, set[Any]] = {}
    state = None
    points: list[int] = []
    emitted = 0
    for i in range(kills + 1):
        last = i == kills
        point = None if last else rng.randint(1, max(2, 2 * odata_total // kills))
        run = ODataTapProcess(box, config, tmp_path, state=state, name=f"run{i}")
        run.read(kill_after=point)
        run.check_secrets("kill -9 in OData syncs")
        _delivered(run, union)
        emitted += run.records
        if run.signalled is not None:
            points.append(run.records)
            assert run.returncode < 0, run.stderr[-2000:]
        else:
            assert run.returncode == 0, run.stderr[-2000:]
        state = run.last_state() or state
        if run.signalled is None and not last:
            break  # finished before the kill point: the chain is complete
    assert run.returncode == 0, "the chain must end with a complete run"
    lost = {s: len(truth[s] - union.get(s, set())) for s in truth}
    record_figure(
        "kill9_odata",
        {
            "kill_points": len(points),
            "odata_records_at_kill": points,
            "records_truth": {s: len(v) for s, v in truth.items()},
            "odata_records_emitted": emitted,
            "lost": sum(lost.values()),
            "lost_by_stream": lost,
        },
    )
    assert len(points) >= min(kills, 3), "the kills landed inside the OData syncs"
    assert lost == dict.fromkeys(truth, 0)
