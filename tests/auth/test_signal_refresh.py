"""SIGTERM while a token refresh is slow: the rotated refresh token is saved (issue 12, item 3).

A real tap process refreshes against a real sandbox that rotates the refresh token at once and
answers 9 s later (``token_delay_after``), longer than the 5 s a signal gives requests in
flight. The first SIGTERM waits for the answer and saves it; a second one ends the run at once
with a warning saying the refresh token is lost.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests._taprun import run_tap, start_tap, tap_config, write_json
from tests.support import Sandbox, assert_no_secrets, password_grant, wait_for

DELAY_MS = 9000


def _refresh_setup(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> tuple[Sandbox, dict[str, Any]]:
    """A sandbox whose token answers take 9 s, and a config that must refresh first."""
    box = sandbox_factory("--records", "20")
    c = box.credentials()
    config = tap_config(
        box,
        entities=["Customer"],
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        initiate_oauth="REFRESH",
        refresh_token=password_grant(box)["refresh_token"],
        oauth_settings_location=str(tmp_path / "tokens.json"),
    )
    config.pop("auth_method")  # a refresh token, no password: the code grant
    box.admin("POST", "faults", {"token_delay_ms": DELAY_MS, "token_delay_after": True})
    return box, config


def _start(config: dict[str, Any], tmp_path: Path, name: str) -> tuple[subprocess.Popen[str], Path]:
    err = tmp_path / f"{name}.stderr"
    with err.open("w") as sink:
        proc = start_tap(write_json(config, tmp_path, f"{name}.json"), stderr=sink)
    return proc, err


def _consumed(box: Sandbox) -> int:
    """Refresh tokens the server has rotated (the last answer may still be on the way)."""
    return int(box.stats()["refresh_tokens"]["consumed"])


def _next_run_refreshes(box: Sandbox, config: dict[str, Any]) -> None:
    """A later run, once the access token expired, refreshes with the saved token."""
    box.admin("POST", "faults", {})
    box.admin("POST", "clock", {"advance_seconds": 3601})
    consumed = _consumed(box)
    run = run_tap(config)
    assert "invalid_grant" not in run.stderr, run.stderr[-2000:]
    assert run.returncode == 0, run.stderr[-2000:]
    refresh = box.stats()["refresh_tokens"]
    assert refresh["rejected"] == 0
    assert refresh["consumed"] == consumed + 1


@pytest.mark.parametrize("when", ["first request", "after a 401"])
def test_sigterm_during_a_slow_refresh_waits_and_saves_the_token(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, when: str
) -> None:
    box, config = _refresh_setup(sandbox_factory, tmp_path)
    if when == "after a 401":
        # The stored access token expires on the server's clock only: the first GET is refused
        # and the refresh runs between two requests, not inside one.
        box.admin("POST", "faults", {})
        assert run_tap(config).returncode == 0
        box.admin("POST", "clock", {"advance_seconds": 3601})
        box.admin("POST", "faults", {"token_delay_ms": DELAY_MS, "token_delay_after": True})
    rotated = _consumed(box) + 1
    proc, err = _start(config, tmp_path, "slow")
    assert wait_for(lambda: _consumed(box) == rotated, timeout=60), err.read_text()[-2000:]
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    waited = time.monotonic() - signalled
    stderr = err.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert wait_for(lambda: box.stats()["active_sessions"] == 0), stderr[-2000:]
    _next_run_refreshes(box, config)  # the chain lives on
    assert waited > 5.5, stderr[-2000:]  # longer than the quiesce: it waited for the answer
    assert "token refresh in flight" in stderr
    assert_no_secrets(stderr, box)


def test_second_sigterm_cuts_the_refresh_short_and_says_what_is_lost(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box, config = _refresh_setup(sandbox_factory, tmp_path)
    rotated = _consumed(box) + 1
    proc, err = _start(config, tmp_path, "slow")
    assert wait_for(lambda: _consumed(box) == rotated, timeout=60), err.read_text()[-2000:]
    proc.send_signal(signal.SIGTERM)
    assert wait_for(lambda: "token refresh in flight" in err.read_text()), err.read_text()
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    stderr = err.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert time.monotonic() - signalled < 5.0, stderr[-2000:]  # at once, not after the answer
    warnings = [line for line in stderr.splitlines() if "second signal" in line.lower()]
    assert len(warnings) == 2, stderr[-2000:]  # announced with the first, confirmed now
    assert "refresh token it rotates is lost" in warnings[-1]
    assert "invalid_grant" in warnings[-1]
    assert_no_secrets(stderr, box)
