"""Chaos for signals: SIGTERM/SIGINT while a sign-in or token answer takes longer than 5 s.

Figure ``signal_refresh``: runs signalled while their refresh was on the wire, with token
answers slower than the 5 s a signal gives requests in flight (the server rotates the refresh
token at once, ``token_delay_after``); how many lost the refresh-token chain (the next run's
refresh met ``invalid_grant``) and how many left an API seat open. Figure ``signal_sign_in``:
runs signalled while a cookie sign-in or a password grant had opened its session and its
answer was still on the way; API seats left open.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tap_acumatica.http.client import QUIESCE_SECONDS
from tests.chaos.support import (
    TapProcess,
    record_figure,
    size,
    tap_config,
    wait_sessions_closed,
)
from tests.support import Sandbox, password_grant, wait_for

pytestmark = pytest.mark.chaos

DELAYS_MS = (7000, 12000)
SIGN_IN_DELAY_MS = 9000


def _config(box: Sandbox, store: Path) -> dict[str, Any]:
    c = box.credentials()
    config = tap_config(box, ["Customer"], max_concurrent_requests=1)
    config.pop("auth_method")  # a refresh token and no password: the code grant
    config.update(
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        initiate_oauth="REFRESH",
        refresh_token=password_grant(box)["refresh_token"],
        oauth_settings_location=str(store),
    )
    return config


def _consumed(box: Sandbox) -> int:
    return int(box.stats()["refresh_tokens"]["consumed"])


def test_signals_during_slow_token_answers_never_lose_the_chain(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    runs = size(3, 20)
    rng = random.Random(12)
    box = sandbox_factory("--records", "20", "--api-seats", "4")
    config = _config(box, tmp_path / "tokens.json")
    signals = {"SIGTERM": 0, "SIGINT": 0}
    waited: list[float] = []
    lost = exits_wrong = left_open = 0
    for i in range(runs):
        delay = rng.randint(*DELAYS_MS)
        box.admin("POST", "clock", {"advance_seconds": 3601})  # the access token expired
        box.admin("POST", "faults", {"token_delay_ms": delay, "token_delay_after": True})
        before = _consumed(box)
        run = TapProcess(box, config, tmp_path, name=f"r{i}")
        if not wait_for(lambda: _consumed(box) > before, timeout=60):  # noqa: B023
            lost += 1  # this run's refresh was refused: the previous run lost the chain
            run.read().check_secrets("signal during a slow refresh")
            continue
        sig = (signal.SIGTERM, signal.SIGINT)[i % 2]
        signals[sig.name] += 1
        at = rng.uniform(0.0, delay / 1000 - 3.0)  # inside the slow answer, mostly > 5 s before it
        started = time.monotonic()
        run.signal_at(at, sig)
        waited.append(round(time.monotonic() - started - at, 2))
        run.check_secrets("signal during a slow refresh")
        exits_wrong += run.returncode != 128 + sig
        left_open += wait_sessions_closed(box)
    box.admin("POST", "faults", {})
    box.admin("POST", "clock", {"advance_seconds": 3601})
    last = TapProcess(box, config, tmp_path, name="last").read()
    lost += "invalid_grant" in last.stderr
    rejected = box.stats()["refresh_tokens"]["rejected"]
    record_figure(
        "signal_refresh",
        {
            "runs": runs,
            "token_delay_ms": list(DELAYS_MS),
            "signals": signals,
            "waited_after_signal_s": {"min": min(waited, default=0), "max": max(waited, default=0)},
            # the answer came later than the 5 s a signal gives a GET in flight
            "answers_past_5s": sum(1 for w in waited if w > QUIESCE_SECONDS),
            "chains_lost": lost,
            "invalid_grant_server": rejected,
            "exit_codes_wrong": exits_wrong,
            "seats_left_open": left_open,
        },
    )
    assert lost == 0
    assert rejected == 0
    assert last.returncode == 0, last.stderr[-2000:]
    assert exits_wrong == 0
    assert left_open == 0


def test_signals_during_slow_sign_ins_leave_no_seat(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """Cookie sign-ins and password grants answered slowly, the run signalled meanwhile."""
    runs = size(4, 20)
    rng = random.Random(13)
    box = sandbox_factory("--records", "20", "--login-delay-ms", str(SIGN_IN_DELAY_MS))
    creds = box.credentials()
    kinds = {"cookie": 0, "oauth_password": 0}
    waited: list[float] = []
    exits_wrong = left_open = 0
    for i in range(runs):
        config = tap_config(box, ["Customer"], max_concurrent_requests=1)
        if i % 2:
            config.update(
                auth_method="oauth_password",
                client_id=creds["client_id"],
                client_secret=creds["client_secret"],
            )  # the grant takes its seat at once, its answer comes later (token_delay_after)
            faults = {"token_delay_ms": SIGN_IN_DELAY_MS, "token_delay_after": True}
            box.admin("POST", "faults", faults)
        kinds[config["auth_method"]] += 1
        run = TapProcess(box, config, tmp_path, name=f"s{i}")
        opened = wait_for(lambda: box.stats()["active_sessions"] == 1, timeout=60)
        assert opened, run.read().stderr[-2000:]
        sig = (signal.SIGTERM, signal.SIGINT)[(i // 2) % 2]
        at = rng.uniform(0.0, SIGN_IN_DELAY_MS / 1000 - 3.0)
        started = time.monotonic()
        run.signal_at(at, sig)
        waited.append(time.monotonic() - started - at)
        run.check_secrets("signal during a slow sign-in")
        exits_wrong += run.returncode != 128 + sig
        left = wait_sessions_closed(box)
        left_open += left
        if left:  # free the seat so the next runs measure themselves
            box.admin("POST", "clock", {"advance_seconds": 3601})
        box.admin("POST", "faults", {})
    record_figure(
        "signal_sign_in",
        {
            "runs": runs,
            "sign_in_delay_ms": SIGN_IN_DELAY_MS,
            "by_auth": kinds,
            "answers_past_5s": sum(1 for w in waited if w > QUIESCE_SECONDS),
            "exit_codes_wrong": exits_wrong,
            "seats_left_open": left_open,
        },
    )
    assert exits_wrong == 0
    assert left_open == 0
