"""Chaos for credentials: kill -9 during token refresh, concurrent processes, API seats.

Figures: corrupt token stores and dead refresh chains over many kill-during-refresh trials;
``invalid_grant`` answers with four processes sharing one store; API seats left open after
runs that end normally or by SIGTERM/SIGINT.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.support import (
    TapProcess,
    assert_clean,
    child_env,
    record_figure,
    size,
    tap_config,
    wait_sessions_closed,
    write_json,
)
from tests.support import REPO, Sandbox, password_grant

pytestmark = pytest.mark.chaos

SandboxFactory = Callable[..., Sandbox]
TOKEN_DELAY_MS = 120


def _refresh_config(box: Sandbox, store: Path, **extra: Any) -> dict[str, Any]:
    c = box.credentials()
    return {
        "base_url": box.url,
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "initiate_oauth": "REFRESH",
        "oauth_settings_location": str(store),
        **extra,
    }


def test_kill_during_refresh_never_corrupts_the_store_or_loses_the_chain(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Many SIGKILLs while a refresh is in flight or being persisted (forked real clients)."""
    trials = size(60, 1000)
    box = sandbox_factory(
        "--records", "5", "--token-delay-ms", str(TOKEN_DELAY_MS), "--api-seats", "100000"
    )
    cfg = write_json(_refresh_config(box, tmp_path / "tokens.json"), tmp_path, "c.json")
    out = tmp_path / "trials.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.chaos.refresh",
            cfg,
            str(trials),
            "7",
            str(out),
            str(TOKEN_DELAY_MS),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=3600,
        check=False,
    )
    assert_clean(proc.stdout + proc.stderr, box, "kill-during-refresh trials")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(out.read_text())
    record_figure(
        "token_kill",
        {**counts, "token_delay_ms": TOKEN_DELAY_MS, "server": box.stats()["refresh_tokens"]},
    )
    assert counts["trials"] == trials
    assert counts["corrupt"] == 0
    assert counts["lost_other"] == 0
    # The kills really landed inside refreshes, not only before or after them.
    assert counts["killed_in_flight"] > 0
    assert counts["killed_after_persist"] + counts["finished_before_kill"] > 0


def test_four_concurrent_tap_processes_share_one_store(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Four real tap syncs at once, one rotating chain, access tokens that expire every second."""
    rounds = size(1, 6)
    box = sandbox_factory(
        "--records",
        "150",
        "--access-token-ttl",
        "1",
        "--latency-ms",
        "120",
        "--api-seats",
        "40",
    )
    store = tmp_path / "tokens.json"
    invalid = 0
    exits: list[int] = []
    for r in range(rounds):
        seed = password_grant(box)["refresh_token"] if r == 0 else None
        extra: dict[str, Any] = {"refresh_token": seed} if seed else {}
        config = {
            **tap_config(box, ["Customer", "SalesOrder"], page_size=40),
            **_refresh_config(box, store, **extra),
        }
        config.pop("auth_method")
        runs = [
            TapProcess(box, config, tmp_path, name=f"c{r}-{i}") for i in range(4)
        ]  # all started before any is read
        threads = [threading.Thread(target=run.read) for run in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        for run in runs:
            run.check_secrets("concurrent processes")
            invalid += run.stderr.count("invalid_grant")
            exits.append(run.returncode)
    refresh = box.stats()["refresh_tokens"]
    record_figure(
        "concurrent",
        {
            "rounds": rounds,
            "processes": 4 * rounds,
            "exit_codes_nonzero": sum(1 for e in exits if e != 0),
            "refreshes": refresh["consumed"],
            "invalid_grant_server": refresh["rejected"],
            "invalid_grant_logged": invalid,
        },
    )
    assert exits == [0] * (4 * rounds)
    assert refresh["rejected"] == 0
    assert invalid == 0
    assert refresh["consumed"] >= 4 * rounds  # they really rotated while sharing
    assert wait_sessions_closed(box) == 0


def test_runs_ending_normally_or_by_signal_leave_no_api_seat(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Cookie and OAuth runs: normal exits, SIGTERM and SIGINT at random moments."""
    runs = size(12, 100)
    box = sandbox_factory("--records", "400", "--latency-ms", "40", "--api-seats", "2")
    creds = box.credentials()
    rng = random.Random(3)
    left_open = 0
    leaks: list[dict[str, Any]] = []
    endings = {"normal": 0, "SIGTERM": 0, "SIGINT": 0}
    for i in range(runs):
        config = tap_config(
            box, ["Customer", "SalesOrder"], page_size=100, login_limit_wait_seconds=5
        )
        if i % 2:
            config.update(
                auth_method="oauth_password",
                client_id=creds["client_id"],
                client_secret=creds["client_secret"],
            )
        ending = ("normal", "SIGTERM", "SIGINT")[i % 3]
        run = TapProcess(box, config, tmp_path, name=f"s{i}")
        at = rng.uniform(0.3, 4.0)
        if ending == "normal":
            run.read()
            assert run.returncode == 0, run.stderr[-2000:]
        else:
            sig = signal.SIGTERM if ending == "SIGTERM" else signal.SIGINT
            run.signal_at(at, sig)
        run.check_secrets("sessions")
        endings[ending] += 1
        left = wait_sessions_closed(box)
        left_open += left
        if left:
            leaks.append(
                {
                    "run": i,
                    "auth": config["auth_method"],
                    "ending": ending,
                    "after_s": round(at, 2),
                    "records": run.records,
                    "returncode": run.returncode,
                    "stderr_tail": run.stderr.splitlines()[-4:],
                }
            )  # free the seats so the next runs measure themselves, not this one
            box.admin("POST", "clock", {"advance_seconds": 3601})  # past both idle timeouts
    # Known bug (reported): an OAuth run stopped by a signal signs out while a worker thread's
    # GET is still in flight; the server serves that GET after the logout with the still-valid
    # bearer and opens a new session. Cookie sessions cannot reopen that way (401).
    known = [leak for leak in leaks if leak["auth"] != "cookie" and leak["ending"] != "normal"]
    record_figure(
        "sessions",
        {
            "runs": runs,
            "endings": endings,
            "seats_left_open": left_open,
            "leaks": leaks,
            "known_bug_leaks": len(known),
        },
    )
    assert len(leaks) == len(known), leaks
