"""Token rotation across real processes: discovery then sync, Meltano's temp config, concurrency.

Every process's stdout and stderr is scanned for the sandbox's secrets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import (
    REPO,
    Sandbox,
    assert_no_secrets,
    free_port,
    password_grant,
    wait_for,
)

TAP = [sys.executable, "-m", "tap_acumatica"]
ENTITY = "/entity/Default/24.200.001/Customer"
CAPTURED: list[str] = []

# A minimal "tap process": one authenticator, n API calls (401 → renew → resend) with a pause
# between them, sign-out.
CLIENT = r"""
import json, sys, time, requests
from tap_acumatica import cli, redact
from tap_acumatica.auth import factory as auth
from tap_acumatica.auth.base import signed_out_at_exit
redact.install()
path, n = sys.argv[1], int(sys.argv[2])
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
cfg = json.load(open(path))
try:
    a = auth.build_authenticator(cfg, config_files=[path])
    with signed_out_at_exit(a):
        s = requests.Session()
        url = cfg["base_url"] + "/entity/Default/24.200.001/Customer"
        for _ in range(n):
            for _attempt in range(3):  # 1 s tokens may expire while a request is in flight
                r = s.get(url, params={"$top": "1"}, auth=a, timeout=30)
                if r.status_code != 401:
                    break
                a.handle_unauthorized(r.request)
            r.raise_for_status()
            time.sleep(pause)
    print("ok")
except Exception as exc:
    cli.fail(f"{type(exc).__name__}: {exc}")
"""


def run(
    args: list[str], box: Sandbox, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **DEBUG, **(env or {})},
        check=False,
    )
    CAPTURED.append(proc.stdout + proc.stderr)
    assert_no_secrets(proc.stdout + proc.stderr, box)
    return proc


DEBUG = {"LOGLEVEL": "DEBUG", "TAP_ACUMATICA_LOGLEVEL": "DEBUG"}


def login(cfg_path: Path, box: Sandbox, env: dict[str, str] | None = None) -> None:
    """``tap-acumatica --login``, with an HTTP client in place of the browser (auto-approve)."""
    proc = subprocess.Popen(
        [*TAP, "--login", "--config", str(cfg_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "/identity/connect/authorize?" in line:
            requests.get(line.strip(), timeout=30)  # follows the redirect to the listener
            break
    out, err = proc.communicate(timeout=60)
    text = out + "".join(lines) + err
    CAPTURED.append(text)
    assert proc.returncode == 0, text
    assert out == ""
    assert "Signed in" in text
    assert_no_secrets(text, box)


def write_cfg(path: Path, box: Sandbox, port: int, **extra: Any) -> Path:
    c = box.credentials()
    cfg = {
        "base_url": box.url,
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "redirect_uri": f"http://127.0.0.1:{port}/callback",
        "open_browser": False,
        "entities": ["Customer"],
        "start_date": "2000-01-01T00:00:00Z",
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2))
    return path


@pytest.fixture
def oauth_box(sandbox_factory: Callable[..., Sandbox]) -> tuple[Sandbox, int]:
    port = free_port()
    box = sandbox_factory(
        "--records", "30", "--auto-approve", "admin", "--redirect-port", str(port)
    )
    return box, port


def counts(box: Sandbox) -> dict[str, int]:
    return box.stats()["refresh_tokens"]


def test_rotation_across_discovery_then_sync(
    oauth_box: tuple[Sandbox, int], tmp_path: Path
) -> None:
    box, port = oauth_box
    cfg = write_cfg(tmp_path / "config.json", box, port, note="kept")
    cfg.chmod(0o600)
    login(cfg, box)
    assert box.stats()["active_sessions"] == 0
    tokens = [json.loads(cfg.read_text())["oauth_tokens"]["refresh_token"]]
    catalog = tmp_path / "catalog.json"
    # Discovery finds the access token dead and rotates; sync shares what discovery stored.
    box.admin("POST", "clock", {"advance_seconds": 3700})
    disc = run([*TAP, "--config", str(cfg), "--discover"], box)
    assert disc.returncode == 0, disc.stderr
    catalog.write_text(disc.stdout)
    assert box.stats()["active_sessions"] == 0
    tokens.append(json.loads(cfg.read_text())["oauth_tokens"]["refresh_token"])
    sync = run([*TAP, "--config", str(cfg), "--catalog", str(catalog)], box)
    assert sync.returncode == 0, sync.stderr
    assert '"type":"RECORD"' in sync.stdout.replace(" ", "")
    assert counts(box) == {"issued": 2, "consumed": 1, "rejected": 0}  # no second rotation
    # The next sync rotates again, from the token the discovery process persisted.
    box.admin("POST", "clock", {"advance_seconds": 3700})
    sync = run([*TAP, "--config", str(cfg), "--catalog", str(catalog)], box)
    assert sync.returncode == 0, sync.stderr
    assert box.stats()["active_sessions"] == 0
    doc = json.loads(cfg.read_text())
    tokens.append(doc["oauth_tokens"]["refresh_token"])
    assert len(set(tokens)) == 3
    assert doc["note"] == "kept"
    assert oct(cfg.stat().st_mode & 0o777) == oct(0o600)
    assert counts(box) == {"issued": 3, "consumed": 2, "rejected": 0}


def test_meltano_temp_config_uses_project_store(
    oauth_box: tuple[Sandbox, int], tmp_path: Path
) -> None:
    box, port = oauth_box
    project = tmp_path / "proj"
    run_dir = project / ".meltano" / "run" / "tap-acumatica"
    env = {"MELTANO_PROJECT_ROOT": str(project)}
    cfg = write_cfg(run_dir / "tap.1.config.json", box, port)
    login(cfg, box, env)
    assert "oauth_tokens" not in json.loads(cfg.read_text())  # Meltano deletes this file
    store = project / ".meltano" / "tap-acumatica" / "oauth-tokens.json"
    assert oct(store.stat().st_mode & 0o777) == oct(0o600)
    before = json.loads(store.read_text())["refresh_token"]
    cfg.unlink()
    cfg = write_cfg(run_dir / "tap.2.config.json", box, port)
    box.admin("POST", "clock", {"advance_seconds": 3700})
    proc = run([*TAP, "--config", str(cfg), "--discover"], box, env)
    assert proc.returncode == 0, proc.stderr
    assert "oauth-tokens.json" in proc.stderr  # the one-time warning names the place
    assert json.loads(store.read_text())["refresh_token"] != before
    assert counts(box) == {"issued": 2, "consumed": 1, "rejected": 0}


def test_refresh_mode_runs_unattended_from_a_seed(
    oauth_box: tuple[Sandbox, int], tmp_path: Path
) -> None:
    box, port = oauth_box
    seed = password_grant(box)
    requests.post(
        f"{box.url}/entity/auth/logout",
        headers={"Authorization": f"Bearer {seed['access_token']}"},
        timeout=10,
    )
    store = tmp_path / "state" / "tokens.json"
    cfg = write_cfg(
        tmp_path / "c.json",
        box,
        port,
        initiate_oauth="REFRESH",
        refresh_token=seed["refresh_token"],
        oauth_settings_location=str(store),
    )
    proc = run([*TAP, "--config", str(cfg), "--discover"], box)
    assert proc.returncode == 0, proc.stderr
    assert counts(box) == {"issued": 2, "consumed": 1, "rejected": 0}
    assert "oauth_tokens" not in json.loads(cfg.read_text())
    store.unlink()  # the chain is gone: the spent seed must not be used blindly
    proc = run([*TAP, "--config", str(cfg), "--discover"], box)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("tap-acumatica: ")
    assert "--login --config" in line
    assert "Traceback" not in proc.stderr


def test_four_concurrent_processes_share_one_store(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # One-second access tokens: every process refreshes again and again while the others do.
    box = sandbox_factory("--records", "5", "--access-token-ttl", "1")
    seed = password_grant(box)
    cfg = write_cfg(
        tmp_path / "c.json",
        box,
        1,
        initiate_oauth="REFRESH",
        refresh_token=seed["refresh_token"],
        oauth_settings_location=str(tmp_path / "tokens.json"),
    )
    procs: list[subprocess.CompletedProcess[str]] = []

    def one() -> None:
        procs.append(run([sys.executable, "-c", CLIENT, str(cfg), "8", "0.3"], box))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [p.stderr[-500:] for p in procs]
    got = counts(box)
    assert got["rejected"] == 0
    assert got["consumed"] >= 2  # they really did rotate while sharing
    # The clients signed out before exiting; the sandbox may still be closing the sessions.
    closed = wait_for(lambda: box.stats()["active_sessions"] == 0, timeout=10)
    assert closed, f"sessions still open 10 s after the clients ended: {box.stats()}"


def test_everything_printed_is_free_of_secrets(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = sandbox_factory("--records", "5")
    c = box.credentials()
    cfg = write_cfg(
        tmp_path / "c.json",
        box,
        1,
        auth_method="oauth_password",
        username="admin",
        password=c["password"],
    )
    proc = run([sys.executable, "-c", CLIENT, str(cfg), "2"], box, DEBUG)
    assert proc.returncode == 0, proc.stderr
    bad = write_cfg(
        tmp_path / "bad.json",
        box,
        1,
        initiate_oauth="REFRESH",
        refresh_token="sbxrt-not-a-real-token-0123456789",
        oauth_settings_location=str(tmp_path / "t.json"),
    )
    proc = run([sys.executable, "-c", CLIENT, str(bad), "1"], box, DEBUG)
    assert proc.returncode == 1
    assert "invalid_grant" in proc.stderr
    assert CAPTURED
    for text in CAPTURED:  # every process this module ran, at DEBUG level
        assert_no_secrets(text, box)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_sync_still_signs_out(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, sig: signal.Signals
) -> None:
    box = sandbox_factory("--records", "3000", "--latency-ms", "200")
    c = box.credentials()
    cfg = write_cfg(
        tmp_path / "c.json",
        box,
        1,
        auth_method="oauth_password",
        username="admin",
        password=c["password"],
        page_size=50,
    )
    proc = subprocess.Popen(
        [*TAP, "--config", str(cfg)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"RECORD"' in line.replace(" ", ""):
            break
    assert box.stats()["active_sessions"] == 1
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    CAPTURED.append(out + err)
    assert_no_secrets(out + err, box)
    assert box.stats()["active_sessions"] == 0, err[-2000:]


def test_login_by_pasting_the_redirected_url(
    oauth_box: tuple[Sandbox, int], tmp_path: Path
) -> None:
    box, port = oauth_box
    redirect = "https://example.invalid/oauth/callback"  # registered, but not on this machine
    cfg = write_cfg(tmp_path / "c.json", box, port, redirect_uri=redirect)
    proc = subprocess.Popen(
        [*TAP, "--login", "--config", str(cfg)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stdin is not None
    lines: list[str] = []
    location = ""
    for line in proc.stderr:
        lines.append(line)
        if "/identity/connect/authorize?" in line:
            resp = requests.get(line.strip(), allow_redirects=False, timeout=30)
            location = resp.headers["Location"]
            assert location.startswith(redirect + "?code=")
        if "paste it here" in line:
            proc.stdin.write(location + "\n")
            proc.stdin.flush()
            break
    out, err = proc.communicate(timeout=60)
    text = "".join(lines) + out + err
    CAPTURED.append(text)
    assert proc.returncode == 0, text
    assert_no_secrets(text, box)
    assert json.loads(cfg.read_text())["oauth_tokens"]["refresh_token"].startswith("sbxrt-")
    assert box.stats()["active_sessions"] == 0
