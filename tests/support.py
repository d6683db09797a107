"""Helpers shared by the test suite: the sandbox subprocess, paths to ../shared, small helpers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "acumatica"
OPENAPI_24 = SHARED / "Default_24.200.001.openapi.json"
EXAMPLES = SHARED / "examples"


class Sandbox:
    """A running sandbox process (``python -m tests.sandbox``) and its admin API."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = ["--port", "0", *args]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sandbox", *self.args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.stderr_lines: list[str] = []
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        if not first.startswith("http://"):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            msg = f"sandbox did not start: {first!r} {err[-2000:]}"
            raise RuntimeError(msg)
        self.url = first
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def root(self) -> str:
        """Scheme, host and port: where ``/_sandbox/`` and ``/entity`` live (site path aside)."""
        return "/".join(self.url.split("/")[:3])

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the sandbox admin API (``/_sandbox/...``) and return the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.root}/_sandbox/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def credentials(self) -> dict[str, Any]:
        return self.admin("GET", "credentials")

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats")

    def ground_truth(self, entity: str) -> dict[str, Any]:
        return self.admin("GET", f"records/{entity}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def running_sandbox(*args: str) -> Iterator[Sandbox]:
    """Start a sandbox for the duration of a ``with`` block."""
    sbx = Sandbox(*args)
    try:
        yield sbx
    finally:
        sbx.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def password_grant(box: Sandbox, scope: str = "api offline_access") -> dict[str, Any]:
    """A token answer straight from the sandbox's token endpoint (password grant, as admin)."""
    c = box.credentials()
    return requests.post(
        f"{box.url}/identity/connect/token",
        data={
            "grant_type": "password",
            "client_id": c["client_id"],
            "client_secret": c["client_secret"],
            "username": c["username"],
            "password": c["password"],
            "scope": scope,
        },
        timeout=30,
    ).json()


def assert_no_secrets(text: str, box: Sandbox) -> None:
    """No secret the sandbox ever issued (by its prefixes) appears in ``text``."""
    for prefix in box.credentials()["secret_prefixes"]:
        assert prefix not in text, f"a {prefix}… secret leaked into the output"


def wait_with_peak_mib(proc: subprocess.Popen[Any], timeout: float) -> float:
    """Wait for ``proc`` to end (killed, and an AssertionError, after ``timeout``): its peak MiB.

    Polls ``VmHWM`` in /proc: the high-water mark of the program's own memory since its exec.
    ``wait4``'s ``ru_maxrss`` would report the forking test process's memory instead whenever
    that is larger, since a child inherits it across fork and exec.
    """
    peak = 0.0

    def ended() -> bool:
        nonlocal peak
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{proc.pid}/status").read_text(encoding="utf-8")
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if found:
                peak = max(peak, int(found.group(1)) / 1024)
        return proc.poll() is not None

    if not wait_for(ended, timeout=timeout, interval=0.02):
        proc.kill()
        proc.wait()
        msg = f"the process was still running after {timeout:.0f} s"
        raise AssertionError(msg)
    return round(peak, 1)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
