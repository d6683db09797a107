"""Child processes measured one by one: wall clock, CPU (user + system) and peak RSS.

Every contender runs as its own process and is reaped with ``os.wait4``, which returns that
child's own ``rusage`` (CPU seconds and ``ru_maxrss``), so nothing else on the machine —
the sandbox, the harness, a teammate's test run — is counted in a figure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

_METRIC = re.compile(r"METRIC: (\{.*\})\s*$")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of measured children: bytecode caching on, in a private cache dir.

    An installed package has its ``.pyc`` files; a checkout run with
    ``PYTHONDONTWRITEBYTECODE`` would recompile singer-sdk's ~600 modules in every process
    (seconds of CPU) and drown the per-record figures. ``PYTHONPYCACHEPREFIX`` keeps the
    cache out of the source tree.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS / "pycache")
    env.setdefault("PYTHONHASHSEED", "0")
    if extra:
        env.update(extra)
    return env


@dataclass
class Measured:
    """One finished child process."""

    cmd: list[str]
    returncode: int
    wall: float  # seconds
    user: float  # CPU seconds
    system: float
    maxrss_mb: float  # peak resident set size
    stderr: str
    stdout_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        """User + system CPU seconds."""
        return self.user + self.system

    def metrics(self) -> list[dict[str, Any]]:
        """The singer-sdk ``METRIC:`` lines of stderr, decoded."""
        out = []
        for line in self.stderr.splitlines():
            m = _METRIC.search(line)
            if m:
                try:
                    out.append(json.loads(m.group(1)))
                except ValueError:
                    continue
        return out

    def record_count(self) -> int:
        """Records emitted: singer-sdk ``record_count`` metrics, or the passthrough's summary."""
        counts = [m["value"] for m in self.metrics() if m.get("metric") == "record_count"]
        if counts:
            return int(sum(counts))
        for line in reversed(self.stderr.splitlines()):
            if line.startswith('{"records"'):
                return int(json.loads(line)["records"])
        return 0

    def sync_seconds(self) -> float | None:
        """Sum of the streams' ``sync_duration`` timers (the extraction phase)."""
        values = [m["value"] for m in self.metrics() if m.get("metric") == "sync_duration"]
        return float(sum(values)) if values else None

    def check(self) -> Measured:
        """Raise with the stderr tail when the child failed."""
        if self.returncode != 0:
            tail = "\n".join(self.stderr.splitlines()[-15:])
            msg = f"{' '.join(self.cmd[:6])} … exited {self.returncode}:\n{tail}"
            raise RuntimeError(msg)
        return self


def measure(
    cmd: Sequence[str],
    *,
    stdout: str | None = os.devnull,
    env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
) -> Measured:
    """Run ``cmd`` from the repo root; stdout to the file ``stdout`` (``/dev/null`` default)."""
    with tempfile.TemporaryFile(mode="w+b") as err:
        out = open(stdout or os.devnull, "wb")  # noqa: SIM115
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(
                list(cmd), cwd=REPO, stdout=out, stderr=err, env=dict(env or child_env())
            )
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            out.close()
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return Measured(
        cmd=list(cmd),
        returncode=proc.returncode,
        wall=wall,
        user=usage.ru_utime,
        system=usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024.0,  # Linux: kilobytes
        stderr=text,
        stdout_path=stdout if stdout != os.devnull else None,
    )


def python(*args: str) -> list[str]:
    """``python <args>`` with this interpreter (the project environment)."""
    return [sys.executable, *args]


def write_json(data: Any, directory: Path, name: str) -> str:
    """Write ``data`` as JSON and return the path."""
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)
