"""Run the tap as a subprocess against a sandbox and collect its Singer messages (H3 tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import REPO, Sandbox

CORE = ["Customer", "SalesOrder", "StockItem"]


def tap_config(sandbox: Sandbox, **overrides: Any) -> dict[str, Any]:
    """Cookie-auth config for ``sandbox`` with fast retries and no safety lag."""
    creds = sandbox.credentials()
    config: dict[str, Any] = {
        "base_url": sandbox.url,
        "auth_method": "cookie",
        "username": creds["username"],
        "password": creds["password"],
        "tenant": creds["tenant"],
        "safety_lag_seconds": 0,
        "backoff_base_seconds": 0.05,
        "login_limit_wait_seconds": 5,
        "entities": CORE,
    }
    config.update(overrides)
    return config


@dataclass
class TapRun:
    """Output of one tap process."""

    returncode: int
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Records by stream."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for msg in self.messages:
            if msg["type"] == "RECORD":
                out[msg["stream"]].append(msg["record"])
        return out

    @property
    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, Any] | None:
        """The final STATE value, if any."""
        return self.states[-1] if self.states else None


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    """Decode Singer lines, ignoring a final partial line (a killed process)."""
    return [m for m in map(_decode, stdout.splitlines()) if m is not None]


def _decode(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "type" in value else None


def write_json(data: Any, directory: Path, name: str) -> str:
    """Write ``data`` as JSON into ``directory`` and return the path."""
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def start_tap(config_path: str, stderr: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """Start ``python -m tap_acumatica --config CONFIG_PATH`` (a sync); stdout is a text pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "tap_acumatica", "--config", config_path],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_until(proc: subprocess.Popen[str], *markers: str) -> list[str]:
    """Read stdout up to a line holding each of ``markers`` in turn; the lines read.

    The last line is empty when the output ended first.
    """
    assert proc.stdout is not None
    seen = [proc.stdout.readline()]
    for marker in markers:
        while seen[-1] and marker not in seen[-1]:
            seen.append(proc.stdout.readline())
    return seen


def run_tap(
    config: dict[str, Any],
    *,
    args: tuple[str, ...] = (),
    catalog: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run ``python -m tap_acumatica`` with the given inputs; wait for it to finish."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "tap_acumatica",
            "--config",
            write_json(config, Path(tmp), "c.json"),
        ]
        if catalog is not None:
            cmd += ["--catalog", write_json(catalog, Path(tmp), "cat.json")]
        if state is not None:
            cmd += ["--state", write_json(state, Path(tmp), "state.json")]
        proc = subprocess.run(
            [*cmd, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return TapRun(proc.returncode, proc.stderr, parse_messages(proc.stdout))


def discover(config: dict[str, Any]) -> dict[str, Any]:
    """Run ``--discover`` and return the catalog."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tap_acumatica",
                "--config",
                write_json(config, Path(tmp), "c.json"),
                "--discover",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def select_fields(catalog: dict[str, Any], stream: str, fields: set[str]) -> dict[str, Any]:
    """Deselect every top-level property of ``stream`` not in ``fields`` (others untouched)."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] != stream:
            continue
        for meta in entry["metadata"]:
            crumb = meta["breadcrumb"]
            if len(crumb) == 2 and crumb[0] == "properties" and crumb[1] not in fields:
                meta["metadata"]["selected"] = False
    return catalog


def only_streams(catalog: dict[str, Any], streams: set[str]) -> dict[str, Any]:
    """Select ``streams`` and deselect the others."""
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog
