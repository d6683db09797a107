"""STATE follows the RECORD or BATCH messages that hold its data, in every mode (issue 12).

In BATCH mode the SDK collects records into a file and writes the BATCH message once the file
is full; a STATE written while records still wait for their file would promise data a crash
loses. Each test reads the tap's stdout in order and opens the BATCH files.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests._batch import (
    batch_config,
    delivered,
    early_states,
    records_by_stream,
    truth_stamps,
)
from tests._taprun import (
    CORE,
    parse_messages,
    read_until,
    run_tap,
    start_tap,
    tap_config,
    write_json,
)
from tests.support import Sandbox

SandboxFactory = Callable[..., Sandbox]


def _live(box: Sandbox) -> dict[str, set[str]]:
    return {e: {r["id"] for r in box.ground_truth(e)["live"]} for e in CORE}


@pytest.mark.parametrize("mode", ["records", "batch"])
def test_every_state_follows_the_data_it_covers(
    sandbox_factory: SandboxFactory, tmp_path: Path, mode: str
) -> None:
    box = sandbox_factory(
        "--seed", "12", "--records", "400", "--burst-size", "60",
        "--big-entity", "SalesOrder", "--big-records", "20000",
    )  # fmt: skip
    # 70 records a file against pages of 100 and windows of thousands (a window aims at
    # 8,000 records, issue 15): files end inside windows, and windows end inside files.
    extra = {"batch_config": batch_config(tmp_path, 70)} if mode == "batch" else {}
    run = run_tap(tap_config(box, page_size=100, **extra))
    assert run.returncode == 0, run.stderr[-3000:]
    kinds = [m["type"] for m in run.messages]
    if mode == "batch":
        assert "RECORD" not in kinds
        assert kinds.count("BATCH") >= 3 * len(CORE), "several files per stream"
    assert records_by_stream(run.messages) == _live(box)
    assert kinds.count("STATE") > kinds.count("SCHEMA") + 3, "a STATE per window or file"
    assert early_states(run.messages, truth_stamps(box, CORE)) == []


def test_sigterm_in_batch_mode_writes_no_state_ahead_of_its_file(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The STATE written on SIGTERM must not cover records still waiting for their file."""
    box = sandbox_factory("--seed", "13", "--records", "600", "--latency-ms", "40")
    # Files of 250 records, windows of up to 100: when the first file is written, the next
    # one is partly filled and the stream is waiting for more windows.
    config = tap_config(
        box,
        page_size=100,
        max_concurrent_requests=1,
        batch_config=batch_config(tmp_path / "files", 250),
    )
    proc = start_tap(write_json(config, tmp_path, "config.json"))
    head = read_until(proc, '"type":"BATCH"', '"type":"STATE"')
    assert '"type":"STATE"' in head[-1], "the run ended before its first file"
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    messages: list[dict[str, Any]] = parse_messages("".join(head) + rest)
    assert proc.returncode == 128 + signal.SIGTERM
    assert sum(len(delivered(m)) for m in messages) < sum(len(v) for v in _live(box).values())
    assert early_states(messages, truth_stamps(box, CORE)) == []
