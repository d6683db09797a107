"""The quick-start scripts work on a machine without uv: they install it from PyPI first."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = pytest.mark.e2e

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def test_uv_bootstrap_on_a_machine_without_uv(tmp_path: Path) -> None:
    if shutil.which("uv", path=SYSTEM_PATH):
        pytest.skip("uv is installed system-wide here; cannot simulate a machine without it")
    if not shutil.which("python3", path=SYSTEM_PATH):
        pytest.skip("no system python3")
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail; source scripts/_uv.sh; command -v uv; uv --version"],
        cwd=REPO,
        env={"HOME": str(home), "PATH": SYSTEM_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, version = proc.stdout.strip().splitlines()[-2:]
    assert version.startswith("uv ")
    # Installed for this user only (a --user install or a private venv), never system-wide.
    assert where.startswith(str(home)), where
    assert "installing it from PyPI" in proc.stderr
