"""Shared machinery of the chaos suite (tests/chaos/, marker ``chaos``).

- Sizes: bounded for CI by default; ``CHAOS_FULL=1`` runs the published counts.
- Every tap process goes through :class:`TapProcess`, which keeps what it printed; every
  captured text is scanned for the sandbox's secrets (``secret_prefixes``) at once, and the
  bytes scanned and hits are added to the ``secrets`` figure.
- Each test writes its figure (a small JSON document) to ``CHAOS_FIGURES`` (default
  ``benchmarks/results/chaos/``); ``python -m benchmarks.reliability`` turns them into
  docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tap_acumatica.stamps import parse_ms
from tests._taprun import tap_config as _cookie_config
from tests._taprun import write_json
from tests.support import REPO, Sandbox

FULL = os.environ.get("CHAOS_FULL", "") not in ("", "0")
FIGURES = Path(os.environ.get("CHAOS_FIGURES") or REPO / "benchmarks" / "results" / "chaos")
_PYCACHE = Path(tempfile.gettempdir()) / f"tap-acumatica-chaos-pycache-{os.getuid()}"
TAP = [sys.executable, "-m", "tap_acumatica"]
_LOCK = threading.Lock()


def size(ci: int, full: int) -> int:
    """``full`` with CHAOS_FULL=1, else the CI count."""
    return full if FULL else ci


def child_env(**extra: str) -> dict[str, str]:
    """Environment of tap processes: bytecode cached (outside the tree), unbuffered output.

    With ``PYTHONDONTWRITEBYTECODE`` every process would recompile singer-sdk (seconds of
    CPU each); the suite starts hundreds of processes.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# -- figures ----------------------------------------------------------------------------------


def record_figure(name: str, figure: Mapping[str, Any]) -> None:
    """Write one test's figure (merged with ``mode`` and a timestamp)."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "mode": "full" if FULL else "ci",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        **figure,
    }
    (FIGURES / f"{name}.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")


# -- secrets ----------------------------------------------------------------------------------

_SCANNED = {"texts": 0, "bytes": 0, "hits": 0, "by_source": {}}


def scan(text: str, prefixes: Iterable[str], source: str) -> int:
    """Count secret prefixes in ``text``; adds to the suite-wide ``secrets`` figure."""
    hits = sum(text.count(p) for p in prefixes)
    with _LOCK:
        _SCANNED["texts"] += 1
        _SCANNED["bytes"] += len(text.encode("utf-8", "replace"))
        _SCANNED["hits"] += hits
        by = _SCANNED["by_source"]
        entry = by.setdefault(source, {"texts": 0, "bytes": 0, "hits": 0})
        entry["texts"] += 1
        entry["bytes"] += len(text)
        entry["hits"] += hits
        figure = json.loads(json.dumps(_SCANNED))
    _merge_secrets_figure(figure)
    return hits


def _merge_secrets_figure(figure: dict[str, Any]) -> None:
    """One ``secrets-<pid>`` figure per pytest process (the report sums them)."""
    record_figure(f"secrets-{os.getpid()}", {"pid": os.getpid(), **figure})


def assert_clean(text: str, box: Sandbox, source: str) -> None:
    """No secret of ``box`` in ``text``."""
    prefixes = box.credentials()["secret_prefixes"]
    hits = scan(text, prefixes, source)
    assert hits == 0, f"{hits} secret(s) leaked into {source}: " + ", ".join(
        p for p in prefixes if p in text
    )


# -- tap processes ----------------------------------------------------------------------------


class TapProcess:
    """A running ``python -m tap_acumatica`` whose stdout is read line by line.

    ``kill_after(n)`` sends a signal once ``n`` RECORD lines were read (a point inside the
    sync chosen by the caller); complete lines only are kept, like a target would.
    """

    def __init__(
        self,
        box: Sandbox,
        config: Mapping[str, Any],
        directory: Path,
        *,
        state: Mapping[str, Any] | None = None,
        args: Iterable[str] = (),
        name: str = "tap",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.box = box
        self.directory = directory
        cmd = [*TAP, "--config", write_json(dict(config), directory, f"{name}-config.json")]
        if state is not None:
            cmd += ["--state", write_json(dict(state), directory, f"{name}-state.json")]
        cmd += list(args)
        self.stderr_path = directory / f"{name}.stderr"
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=child_env(**dict(env or {})),
        )
        self.lines: list[bytes] = []
        self.records = 0
        self.signalled: int | None = None

    def read(self, kill_after: int | None = None, sig: int = signal.SIGKILL) -> TapProcess:
        """Read stdout to the end; with ``kill_after``, signal after that many RECORDs."""
        assert self.proc.stdout is not None
        if kill_after is not None and kill_after <= 0:
            self.proc.send_signal(sig)
            self.signalled = sig
        counted = 0
        for line in self.proc.stdout:
            if not line.endswith(b"\n"):
                break  # a partial last line of a killed process
            self.lines.append(line)
            if self.counts(line):
                counted += 1
                if kill_after is not None and self.signalled is None and counted >= kill_after:
                    self.proc.send_signal(sig)
                    self.signalled = sig
        self.proc.wait(timeout=300)
        self._err.close()
        self.finished()
        return self

    def counts(self, line: bytes) -> bool:
        """Whether ``line`` counts toward ``kill_after``: here a RECORD (counted in ``records``)."""
        if line.startswith(b'{"type":"RECORD"') or b'"type": "RECORD"' in line[:40]:
            self.records += 1
            return True
        return False

    def finished(self) -> None:
        """After the process ended: nothing more to do here."""

    def signal_at(self, seconds: float, sig: int) -> TapProcess:
        """Send ``sig`` after ``seconds`` (if still running), then read to the end."""
        timer = threading.Timer(seconds, self._signal, args=(sig,))
        timer.start()
        try:
            return self.read()
        finally:
            timer.cancel()

    def _signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.signalled = sig
            self.proc.send_signal(sig)

    @property
    def returncode(self) -> int:
        """Exit status (negative: killed by a signal)."""
        return int(self.proc.returncode)

    @property
    def stderr(self) -> str:
        """Everything the process wrote to stderr."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def messages(self) -> list[dict[str, Any]]:
        """Decoded Singer messages (complete lines only)."""
        return [m for m in map(_decode, self.lines) if m is not None]

    def records_by_stream(self) -> dict[str, set[str]]:
        """Record ids per stream."""
        out: dict[str, set[str]] = {}
        for msg in self.messages():
            if msg.get("type") == "RECORD":
                out.setdefault(msg["stream"], set()).add(msg["record"]["id"])
        return out

    def last_state(self) -> dict[str, Any] | None:
        """The last STATE value emitted (complete lines only)."""
        states = [m["value"] for m in self.messages() if m.get("type") == "STATE"]
        return states[-1] if states else None

    def check_secrets(self, source: str) -> None:
        """Scan stdout, stderr (and so every STATE) for the sandbox's secrets."""
        text = b"".join(self.lines).decode("utf-8", "replace") + "\n" + self.stderr
        assert_clean(text, self.box, source)


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def run_tap(box: Sandbox, config: Mapping[str, Any], directory: Path, **kwargs: Any) -> TapProcess:
    """Run the tap to completion."""
    return TapProcess(box, config, directory, **kwargs).read()


def tap_config(box: Sandbox, entities: list[str], **extra: Any) -> dict[str, Any]:
    """Cookie sign-in, quick retries, no safety lag (the most hostile legal settings)."""
    base = {"login_limit_wait_seconds": 30, "progress_interval_seconds": 3600}
    return _cookie_config(box, **{**base, "entities": entities, **extra})


def bookmarks(state: Mapping[str, Any] | None) -> dict[str, int]:
    """Stream → committed bookmark (epoch ms) of a STATE value."""
    out: dict[str, int] = {}
    for stream, entry in ((state or {}).get("bookmarks") or {}).items():
        value = entry.get("replication_key_value") if isinstance(entry, dict) else None
        ms = parse_ms(value) if isinstance(value, str) else None
        if ms is not None:
            out[stream] = ms
    return out


def must_have(box: Sandbox, entity: str, before_ms: int | None) -> set[str]:
    """Live records whose change stamp is before ``before_ms``: what a bookmark promises."""
    if before_ms is None:
        return set()
    live = box.ground_truth(entity)["live"]
    return {r["id"] for r in live if r["changed"] and (parse_ms(r["changed"]) or 0) < before_ms}


def wait_sessions_closed(box: Sandbox, timeout: float = 5.0) -> int:
    """``active_sessions`` once it reaches 0 (or what is left after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        left = int(box.stats()["active_sessions"])
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
