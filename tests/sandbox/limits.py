"""License limits: processing cores, the per-minute budget and the request queue (api.md §6)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MAX_QUEUED = 20  # api.md §6: a request is declined only if > 20 requests are queued ...
MAX_WAIT = 600.0  # ... or it waited > 10 minutes


class DeclinedError(Exception):
    """The license queue refused the request (answered with 429)."""


class Limiter:
    """N "API processing cores" with a FIFO-ish queue and a per-minute request budget.

    api.md §6: every request except logout enters the queue; once the past minute used
    >= 50% of the per-minute limit, each request is delayed by (time left in the minute since
    its first request) / (requests remaining). Waiting requests get no signal; > 20 queued → 429.
    The budget runs on real (monotonic) time, not the virtual clock.
    """

    def __init__(
        self,
        max_concurrent: int = 4,
        per_minute: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self.max_concurrent = max(0, max_concurrent)  # 0 = unlimited
        self.per_minute = max(0, per_minute)  # 0 = unlimited
        self._cond = threading.Condition()
        self.active = 0
        self.queued = 0
        self.declined = 0
        self.delayed = 0
        self.max_active = 0
        self.max_queued = 0
        self._window_start = 0.0
        self._window_count = 0

    def _budget_delay(self, now: float) -> float:
        """Reserve one request in the current minute; return how long it must wait first."""
        if self.per_minute <= 0:
            return 0.0
        if now - self._window_start >= 60.0 or self._window_count == 0:
            self._window_start = now
            self._window_count = 0
        used = self._window_count
        self._window_count += 1
        if used < self.per_minute / 2:
            return 0.0
        left = max(0.0, 60.0 - (now - self._window_start))
        remaining = self.per_minute - used
        if remaining <= 0:
            return left  # budget spent: wait for the next minute
        return left / remaining

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one processing core for the duration of the block (raises DeclinedError)."""
        with self._cond:
            busy = self.max_concurrent and self.active >= self.max_concurrent
            delay = self._budget_delay(self._monotonic())
            if (busy or delay > 0) and self.queued >= MAX_QUEUED:
                self.declined += 1
                raise DeclinedError
            self.queued += 1
            self.max_queued = max(self.max_queued, self.queued)
        try:
            if delay > 0:
                self.delayed += 1
                self._sleep(delay)
            with self._cond:
                deadline = self._monotonic() + MAX_WAIT
                while self.max_concurrent and self.active >= self.max_concurrent:
                    left = deadline - self._monotonic()
                    if left <= 0:
                        self.declined += 1
                        raise DeclinedError
                    self._cond.wait(left)
                self.active += 1
                self.max_active = max(self.max_active, self.active)
        finally:
            with self._cond:
                self.queued -= 1
        try:
            yield
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {
                "max_concurrent": self.max_concurrent,
                "per_minute": self.per_minute,
                "active": self.active,
                "queued": self.queued,
                "max_active": self.max_active,
                "max_queued": self.max_queued,
                "declined": self.declined,
                "delayed": self.delayed,
            }

    def reset_counters(self) -> None:
        with self._cond:
            self.declined = self.delayed = self.max_active = self.max_queued = 0
            self._window_count = 0
