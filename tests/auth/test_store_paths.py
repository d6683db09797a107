"""Where tokens may live: a regular file or a missing path, never a device, FIFO or directory.

The tap runs as a process with a deadline, so a store that blocks (a FIFO) fails the test
instead of hanging it. A symlink to a regular file is allowed: the tokens go into its target and
the link stays; a link to anything else is refused like its target.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import REPO, Sandbox, assert_no_secrets, free_port, password_grant

TAP = [sys.executable, "-m", "tap_acumatica"]
DEADLINE = 60.0


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    sbx = Sandbox("--records", "5", "--auto-approve", "admin", "--redirect-port", str(free_port()))
    yield sbx
    sbx.stop()


def write_cfg(path: Path, box: Sandbox, **extra: Any) -> Path:
    c = box.credentials()
    cfg = {
        "base_url": box.url,
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "redirect_uri": c["redirect_uris"][0],
        "open_browser": False,
        "login_timeout_seconds": 30,
        "entities": ["Customer"],
        **extra,
    }
    path.write_text(json.dumps(cfg))
    return path


def run(args: list[str], box: Sandbox) -> subprocess.CompletedProcess[str]:
    """The tap as a process; a hang past the deadline fails the test (TimeoutExpired)."""
    proc = subprocess.run(
        [*TAP, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert_no_secrets(proc.stdout + proc.stderr, box)
    return proc


def refresh_seed(box: Sandbox) -> str:
    """A fresh refresh token from the sandbox, its session signed out."""
    body = password_grant(box)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    requests.post(f"{box.url}/entity/auth/logout", headers=headers, timeout=10)
    return str(body["refresh_token"])


def _kind(path: Path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


def _fifo(tmp: Path) -> tuple[Path, str]:
    path = tmp / "tokens.fifo"
    os.mkfifo(path)
    return path, "a named pipe (FIFO)"


def _directory(tmp: Path) -> tuple[Path, str]:
    path = tmp / "tokens.d"
    path.mkdir()
    return path, "a directory"


def _dev_null(tmp: Path) -> tuple[Path, str]:
    # As root the old tap replaced /dev/null with a 0600 token file; as another user it
    # failed with a traceback. Both must now refuse it before touching it.
    del tmp
    return Path("/dev/null"), "a character device"


def _link_to_fifo(tmp: Path) -> tuple[Path, str]:
    target, kind = _fifo(tmp)
    link = tmp / "tokens.json"
    link.symlink_to(target)
    return link, kind


@pytest.mark.parametrize("make", [_fifo, _directory, _dev_null, _link_to_fifo])
@pytest.mark.parametrize("command", ["--discover", "--login"])
def test_a_store_that_is_not_a_regular_file_is_refused_untouched(
    box: Sandbox,
    tmp_path: Path,
    make: Callable[[Path], tuple[Path, str]],
    command: str,
) -> None:
    path, kind = make(tmp_path)
    real = Path(os.path.realpath(path))
    before = (_kind(path), _kind(real))
    lock = Path(f"{real}.lock")
    lock_existed = lock.exists()
    seed = {"initiate_oauth": "REFRESH", "refresh_token": refresh_seed(box)}
    extra = seed if command == "--discover" else {}
    cfg = write_cfg(tmp_path / "c.json", box, oauth_settings_location=str(path), **extra)
    proc = run([command, "--config", str(cfg)], box)
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"tap-acumatica: the OAuth token store {real} is {kind}, not a "), line
    if real != path:
        assert f"not a regular file ({path} links to it); " in line
    assert "oauth_settings_location" in line
    assert "Traceback" not in proc.stderr
    assert "/identity/connect/authorize" not in proc.stderr  # refused before the sign-in
    assert (_kind(path), _kind(real)) == before
    assert lock.exists() == lock_existed  # not even a lock file next to it
    assert box.stats()["refresh_tokens"]["rejected"] == 0


def test_a_missing_store_is_created_0600(box: Sandbox, tmp_path: Path) -> None:
    store = tmp_path / "new" / "deeper" / "tokens.json"
    cfg = write_cfg(
        tmp_path / "c.json",
        box,
        initiate_oauth="REFRESH",
        refresh_token=refresh_seed(box),
        oauth_settings_location=str(store),
    )
    proc = run(["--discover", "--config", str(cfg)], box)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(store.read_text())["refresh_token"].startswith("sbxrt-")


def test_a_symlink_to_a_regular_file_is_followed_and_kept(box: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "real-tokens.json"
    target.write_text("")
    target.chmod(0o644)
    link = tmp_path / "tokens.json"
    link.symlink_to(target)
    cfg = write_cfg(
        tmp_path / "c.json",
        box,
        initiate_oauth="REFRESH",
        refresh_token=refresh_seed(box),
        oauth_settings_location=str(link),
    )
    proc = run(["--discover", "--config", str(cfg)], box)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert json.loads(target.read_text())["refresh_token"].startswith("sbxrt-")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a token file of its own is private


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_tokens_written_into_the_config_warn_about_its_mode(
    box: Sandbox, tmp_path: Path, mode: int, warned: bool
) -> None:
    # No oauth_settings_location and one --config: the tokens go under its oauth_tokens key.
    cfg = write_cfg(
        tmp_path / "c.json", box, initiate_oauth="REFRESH", refresh_token=refresh_seed(box)
    )
    cfg.chmod(mode)
    proc = run(["--discover", "--config", str(cfg)], box)
    assert proc.returncode == 0, proc.stderr
    assert "oauth_tokens" in json.loads(cfg.read_text())
    assert stat.S_IMODE(cfg.stat().st_mode) == mode  # the user's mode is theirs to change
    lines = [line for line in proc.stderr.splitlines() if "chmod 600" in line]
    assert bool(lines) is warned, proc.stderr[-2000:]
    if warned:
        assert str(cfg) in lines[0]
        assert f"mode {mode:o}" in lines[0]
        assert len(lines) == 1  # once per run, not once per write
