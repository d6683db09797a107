"""Every session the tap opens is signed out, whatever path the run takes (issue 12, item 4).

Real tap processes against a real sandbox, which counts the sessions (API seats) still open:
a SIGTERM while a cookie sign-in is slow (the session opens before its answer arrives), and a
401 on a cookie session that is still alive (the tap signs in again).
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests._taprun import run_tap, start_tap, tap_config, write_json
from tests.support import Sandbox, assert_no_secrets, wait_for

LOGIN_DELAY_MS = "9000"


def _start(config: dict[str, Any], tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    err = tmp_path / "tap.stderr"
    with err.open("w") as sink:
        proc = start_tap(write_json(config, tmp_path, "c.json"), stderr=sink)
    return proc, err


def _signed_in_slowly(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> tuple[Sandbox, subprocess.Popen[str], Path]:
    """A tap whose sign-in has opened its session, with the answer 9 s away."""
    box = sandbox_factory("--records", "20", "--login-delay-ms", LOGIN_DELAY_MS)
    config = tap_config(box, entities=["Customer"], max_concurrent_requests=1)
    proc, err = _start(config, tmp_path)
    opened = wait_for(lambda: box.stats()["active_sessions"] == 1, timeout=60)
    assert opened, err.read_text()[-2000:]
    return box, proc, err


def test_sigterm_during_a_slow_sign_in_signs_its_session_out(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box, proc, err = _signed_in_slowly(sandbox_factory, tmp_path)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    stderr = err.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert wait_for(lambda: box.stats()["active_sessions"] == 0), stderr[-2000:]
    assert box.stats()["logouts"] == 1
    assert "sign-in in flight" in stderr
    assert_no_secrets(stderr, box)


def test_second_sigterm_during_a_slow_sign_in_says_the_seat_stays_taken(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box, proc, err = _signed_in_slowly(sandbox_factory, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert wait_for(lambda: "sign-in in flight" in err.read_text()), err.read_text()[-2000:]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    stderr = err.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    cut = [line for line in stderr.splitlines() if "stopping now" in line]
    assert len(cut) == 1, stderr[-2000:]
    assert "sign-in in flight short" in cut[0]
    assert "API session stays open, holding a seat" in cut[0]
    assert box.stats()["active_sessions"] == 1  # as the warning says


def test_401_on_a_live_cookie_session_signs_it_out_before_signing_in_again(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    # One seat: signing in again before the old session is signed out meets "API Login Limit".
    box = sandbox_factory(
        "--records", "20", "--api-seats", "1", "--faults", json.dumps({"script": ["http_401"]})
    )
    run = run_tap(tap_config(box, entities=["Customer"], max_concurrent_requests=1))
    assert run.returncode == 0, run.stderr[-2000:]
    stats = box.stats()
    assert stats["faults"] == {"http_401": 1}
    assert stats["logins"] == 2
    assert stats["logouts"] == 2  # the refused session, then the run's own at its end
    assert stats["active_sessions"] == 0
    assert len(run.records["Customer"]) == 20
    assert_no_secrets(run.stderr, box)
