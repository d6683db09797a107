"""Chaos for one response: trickling answers, decompression bombs, a Retry-After of days.

These faults are adversarial, not realism (tests/sandbox/README.md "Faults"): they check the
tap's own bounds. Each run must end (no hang), with exit 1 and one ``tap-acumatica:`` line
naming the request and the bound, and nothing secret printed. The figures say how long the
tap took against its deadline and how much memory it used against a bomb.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests._taprun import write_json
from tests.chaos.support import (
    FULL,
    TAP,
    assert_clean,
    child_env,
    record_figure,
    size,
    tap_config,
)
from tests.sandbox.faults import gzip_bomb
from tests.support import REPO, Sandbox, wait_with_peak_mib

pytestmark = pytest.mark.chaos

SandboxFactory = Callable[..., Sandbox]
ENTITIES = ["Customer", "SalesOrder", "StockItem"]


def _run(box: Sandbox, config: dict[str, Any], directory: Path, name: str) -> dict[str, Any]:
    """Run the tap to its end: exit code, seconds, peak memory (MiB) and stderr's last line."""
    err_path = directory / f"{name}.stderr"
    began = time.monotonic()
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            [*TAP, "--config", write_json(config, directory, f"{name}.json")],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=child_env(),
        )
    peak_mib = wait_with_peak_mib(proc, timeout=300)
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    assert_clean(stderr, box, f"chaos http {name}")
    lines = stderr.splitlines()
    return {
        "exit": proc.returncode,
        "seconds": round(time.monotonic() - began, 2),
        "peak_mib": peak_mib,
        "last": lines[-1] if lines else "",
        "error_lines": sum(1 for line in lines if line.startswith("tap-acumatica:")),
    }


def _assert_one_line(run: dict[str, Any], *needles: str) -> None:
    assert run["exit"] == 1, run
    assert run["error_lines"] == 1, run
    assert run["last"].startswith("tap-acumatica: "), run
    assert "unexpected error" not in run["last"], run
    for needle in needles:
        assert needle in run["last"], run


def test_trickling_answers_end_at_the_deadline(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Each entity in turn trickles (one byte per 200 ms); each run ends near its deadline."""
    deadlines = [2, 5, 10, 30] if FULL else [2, 5]
    calm = sandbox_factory("--records", "120")
    normal = _run(calm, tap_config(calm, ENTITIES), tmp_path, "calm")
    assert normal["exit"] == 0, normal
    runs = []
    for deadline in deadlines:
        for entity in ENTITIES[: size(1, 3)]:
            faults = {"trickle": 100, "trickle_ms": 200, "entities": [entity]}
            box = sandbox_factory("--records", "120", "--faults", json.dumps(faults))
            config = tap_config(box, ENTITIES, response_deadline_seconds=deadline, max_tries=3)
            run = _run(box, config, tmp_path, f"trickle-{deadline}-{entity}")
            _assert_one_line(run, f"{entity}: GET ", f"not complete after {deadline}s")
            runs.append({"deadline_seconds": deadline, "entity": entity, **run})
    record_figure(
        "trickle",
        {
            "trickle_ms": 200,
            "runs": len(runs),
            "ended": sum(1 for r in runs if r["exit"] == 1),
            "one_line": sum(1 for r in runs if r["error_lines"] == 1),
            # Whole runs: start-up, sign-in and discovery included (a calm run's seconds).
            "calm_run_seconds": normal["seconds"],
            "max_seconds_past_deadline": round(
                max(r["seconds"] - r["deadline_seconds"] for r in runs), 2
            ),
            "by_run": [
                {k: r[k] for k in ("deadline_seconds", "entity", "seconds", "exit")} for r in runs
            ],
        },
    )


def test_decompression_bombs_are_refused_with_bounded_memory(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A Customer answer inflating to up to a few GiB: one line, memory near a normal run's."""
    normal_box = sandbox_factory("--records", "300")
    normal = _run(normal_box, tap_config(normal_box, ENTITIES, page_size=100), tmp_path, "normal")
    assert normal["exit"] == 0, normal
    bombs = []
    for megabytes in [256, 1024, 4096] if FULL else [256, 1024]:
        faults = {"gzip_bomb": 100, "bomb_mb": megabytes, "entities": ["Customer"]}
        box = sandbox_factory("--records", "300", "--faults", json.dumps(faults))
        run = _run(box, tap_config(box, ENTITIES, page_size=100), tmp_path, f"bomb-{megabytes}")
        _assert_one_line(run, "Customer: GET ", "grew past 64 MiB after gzip decoding")
        assert run["peak_mib"] < normal["peak_mib"] + 3 * 64, (run, normal)
        assert box.stats()["faults"] == {"gzip_bomb": 1}, "a bomb is refused once, not retried"
        wire, _ = gzip_bomb(megabytes)
        bombs.append({"inflated_mib": megabytes, "wire_bytes": wire, **run})
    record_figure(
        "decompression_bomb",
        {
            "cap_mib": 64,
            "page_size": 100,
            "normal_run_peak_mib": normal["peak_mib"],
            "bombs": [
                {k: b[k] for k in ("inflated_mib", "wire_bytes", "peak_mib", "seconds", "exit")}
                for b in bombs
            ],
            "max_peak_over_normal_mib": round(
                max(b["peak_mib"] for b in bombs) - normal["peak_mib"], 1
            ),
        },
    )


def test_a_retry_after_of_days_is_reported_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """429 with Retry-After: 1000000 (11 days): one line at once, one request, no sleep."""
    faults = {"script": ["http_429"], "retry_after": "1000000", "entities": ["Customer"]}
    box = sandbox_factory("--records", "60", "--faults", json.dumps(faults))
    run = _run(box, tap_config(box, ["Customer"]), tmp_path, "retry-after")
    _assert_one_line(run, "Retry-After: 1000000", "run the tap again later")
    served = [
        r for r in box.stats()["requests"] if r["path"].endswith("/Customer") and r["status"] == 429
    ]
    assert sum(r["count"] for r in served) == 1
    record_figure(
        "retry_after_beyond_wait",
        {"retry_after": "1000000", "requests_429": 1, "seconds": run["seconds"], "exit": 1},
    )
