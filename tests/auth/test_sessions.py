"""max_concurrent_requests = N server sessions (docs/acumatica-api.md §6), against the sandbox.

One session runs one request at a time, so the tap opens one session per worker: N cookie
logins, or N cookie jars of one bearer grant with scope ``api:concurrent_access``; one after
another, never two sign-ins at once; fewer when the licence refuses one; all signed out.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tap_acumatica.auth.config import validate_auth_config
from tap_acumatica.errors import ConfigError
from tests._taprun import CORE, TapRun, read_until, run_tap, start_tap, tap_config, write_json
from tests.support import Sandbox, wait_for

CONCURRENT = "api offline_access api:concurrent_access"


def _box(factory: Any, *extra: str) -> Sandbox:
    box: Sandbox = factory("--records", "300", "--latency-ms", "25", *extra)
    return box


def _oauth(box: Sandbox, config: dict[str, Any], scope: str) -> dict[str, Any]:
    creds = box.credentials()
    config.update(
        auth_method="oauth_password",
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        scope=scope,
    )
    return config


def _assert_complete(box: Sandbox, run: TapRun) -> None:
    assert run.returncode == 0, run.stderr[-3000:]
    for entity in CORE:
        truth = {r["id"] for r in box.ground_truth(entity)["live"]}
        got = [r["id"] for r in run.records[entity]]
        assert set(got) == truth, entity
        assert len(got) == len(truth), entity


def _closed(box: Sandbox) -> int:
    wait_for(lambda: box.stats()["active_sessions"] == 0, timeout=5)
    return int(box.stats()["active_sessions"])


@pytest.mark.parametrize("auth", ["cookie", "oauth_concurrent"])
def test_four_workers_use_four_sessions_one_request_each(sandbox_factory: Any, auth: str) -> None:
    box = _box(sandbox_factory, "--api-seats", "6")
    config = tap_config(box, page_size=40, max_concurrent_requests=4)
    if auth != "cookie":
        _oauth(box, config, CONCURRENT)
    run = run_tap(config)
    _assert_complete(box, run)
    stats = box.stats()
    assert stats["sessions_opened"] == 4, run.stderr[-3000:]
    assert stats["max_parallel_in_one_session"] == 1
    assert stats["max_in_flight"] > 1  # the sessions really ran in parallel
    assert stats["failed_logins"] == 0
    assert _closed(box) == 0, run.stderr[-3000:]
    assert "API Login Limit" not in run.stderr


def test_oauth_without_concurrent_scope_is_one_session_said_once(sandbox_factory: Any) -> None:
    box = _box(sandbox_factory)
    config = _oauth(box, tap_config(box, page_size=100, max_concurrent_requests=4), "api")
    run = run_tap(config)
    _assert_complete(box, run)
    assert box.stats()["sessions_opened"] == 1
    assert run.stderr.count("without the scope api:concurrent_access") == 1
    assert _closed(box) == 0


@pytest.mark.parametrize("auth", ["cookie", "oauth_concurrent"])
def test_fewer_seats_than_workers_goes_on_with_the_seats_there_are(
    sandbox_factory: Any, auth: str
) -> None:
    box = _box(sandbox_factory, "--api-seats", "2")
    config = tap_config(box, page_size=40, max_concurrent_requests=4)
    if auth != "cookie":
        _oauth(box, config, CONCURRENT)
    run = run_tap(config)
    _assert_complete(box, run)
    stats = box.stats()
    assert stats["sessions_opened"] == 2
    assert stats["max_parallel_in_one_session"] == 1
    assert run.stderr.count("refused another API session") == 1, run.stderr[-3000:]
    assert "going on with 2 session(s) instead of 4" in run.stderr
    assert "retrying in" not in run.stderr  # no wait for a seat: the run had sessions
    assert _closed(box) == 0


@pytest.mark.parametrize("auth", ["cookie", "oauth_concurrent"])
def test_wrong_password_fails_once_with_one_line(sandbox_factory: Any, auth: str) -> None:
    box = _box(sandbox_factory, "--api-seats", "6")
    config = tap_config(box, page_size=40, max_concurrent_requests=4, password="wrong-pw")
    if auth != "cookie":
        _oauth(box, config, CONCURRENT)
    run = run_tap(config)
    assert run.returncode != 0
    stats = box.stats()
    assert stats["failed_logins"] == 1
    assert stats["sessions_opened"] == 0
    assert "Traceback" not in run.stderr
    errors = [
        line for line in run.stderr.splitlines() if "rejected the username or password" in line
    ]
    assert len(errors) == 1, run.stderr[-3000:]
    assert not run.records


@pytest.mark.parametrize("auth", ["cookie", "oauth_concurrent"])
def test_signal_mid_sync_signs_every_session_out(
    sandbox_factory: Any, tmp_path: Path, auth: str
) -> None:
    box = sandbox_factory(
        "--records", "50", "--big-entity", "SalesOrder", "--big-records", "8000",
        "--burst-size", "50", "--latency-ms", "150", "--api-seats", "6",
    )  # fmt: skip
    config = tap_config(box, entities=["SalesOrder"], page_size=100, max_concurrent_requests=4)
    if auth != "cookie":
        _oauth(box, config, CONCURRENT)
    proc = start_tap(write_json(config, tmp_path, "c.json"))
    assert proc.stdout is not None
    seen = read_until(proc, '"RECORD"', '"STATE"')
    assert seen[-1], "the tap ended before committing a window"
    # Keep reading its output: a tap whose stdout pipe is full stops sending requests.
    rest: list[str] = []
    drain = threading.Thread(target=lambda: rest.extend(proc.stdout or ()), daemon=True)
    drain.start()
    assert wait_for(lambda: box.stats()["active_sessions"] == 4)  # all four workers sending
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    drain.join(timeout=30)
    time.sleep(1.0)  # a GET arriving after its session's logout would have opened one by now
    stats = box.stats()
    assert stats["active_sessions"] == 0
    assert stats["sessions_opened"] == 4
    assert stats["max_parallel_in_one_session"] == 1


@pytest.mark.parametrize(
    ("client_id", "tenant", "ok"),
    [
        ("6F1C@Company", "Company", True),
        ("6F1C@Company", "company", True),
        ("6F1C@Company", None, True),
        ("6F1C@Company", "Other", False),
    ],
)
def test_client_id_tenant_suffix_must_match_tenant(
    client_id: str, tenant: str | None, ok: bool
) -> None:
    config = {
        "base_url": "https://erp.example.com",
        "auth_method": "oauth_password",
        "client_id": client_id,
        "client_secret": "s",
        "username": "u",
        "password": "p",
        "tenant": tenant,
    }
    if ok:
        validate_auth_config(config)
        return
    with pytest.raises(ConfigError, match=r"client_id .*@Company.* tenant 'Other'") as info:
        validate_auth_config(config)
    assert "\n" not in str(info.value)
