"""A quiet, periodic progress line per stream on stderr (through the stream's logger)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tap_acumatica.settings import DEFAULTS


class Progress:
    """Tracks windows, records and covered time range; logs at most every ``interval`` seconds.

    Windows are sized on the fly, so their total is not known up front: completion is measured
    as the share of the planned time range already committed, and the ETA extrapolates it.
    ``sent`` is the HTTP client's count of requests sent for the stream, so the request count
    is every request the stream put on the wire since the progress began (retries, the probe
    and its sample, re-read windows, a read without ``$select``): what the server counted.
    """

    def __init__(
        self,
        logger: logging.Logger,
        stream: str,
        *,
        start: int,
        end: int,
        interval: float = DEFAULTS["progress_interval_seconds"],
        sent: Callable[[], int],
        unit: str = "windows",
    ) -> None:
        """Start tracking the range ``[start, end)`` (epoch ms), read in ``unit`` (or pages)."""
        self.logger = logger
        self.stream = stream
        self.start = start
        self.end = end
        self.interval = interval
        self.windows = 0
        self.unit = unit
        self._sent = sent
        self._sent_before = sent()
        self.records = 0
        self.covered = start
        self._began = time.monotonic()
        self._last = self._began

    @property
    def requests(self) -> int:
        """Requests the stream sent since the progress began."""
        return self._sent() - self._sent_before

    def since(self, sent_before: int) -> None:
        """Count from an earlier point: the stream's first window was read ahead of it."""
        self._sent_before = min(self._sent_before, sent_before)

    @property
    def fraction(self) -> float:
        """Share of the range committed so far (1.0 for an empty range)."""
        span = self.end - self.start
        return 1.0 if span <= 0 else min(1.0, (self.covered - self.start) / span)

    def advance(self, *, covered: int, records: int) -> None:
        """Record a completed window and log if the interval has passed."""
        self.windows += 1
        self.records += records
        self.covered = max(self.covered, covered)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.log(now)

    def log(self, now: float | None = None, *, final: bool = False) -> None:
        """Write one progress line."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._began, 1e-6)
        rate = self.records / elapsed
        fraction = self.fraction
        if final:
            eta = "done"
        elif fraction > 0:
            eta = f"ETA {_duration(elapsed * (1 - fraction) / fraction)}"
        else:
            eta = "ETA unknown"
        self.logger.info(
            "%s: %d %s (%d requests), %.0f%% of the time range, %d records, %.0f records/s, %s",
            self.stream,
            self.windows,
            self.unit,
            self.requests,
            fraction * 100,
            self.records,
            rate,
            eta,
        )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
