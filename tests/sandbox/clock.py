"""The sandbox's virtual clock: real time plus an offset that tests can advance."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone


class VirtualClock:
    """Wall-clock time shifted by ``advance()``; used for data "now", tokens and sessions."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        """Virtual POSIX timestamp (seconds)."""
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        """Virtual aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=timezone.utc)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (negative values are refused: time never runs back)."""
        if seconds < 0:
            msg = "advance_seconds must be >= 0"
            raise ValueError(msg)
        with self._lock:
            self._offset += seconds
        return self.now()

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset


def iso_z(value: datetime) -> str:
    """UTC ISO-8601 with a ``Z`` suffix and millisecond precision."""
    text = value.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
