"""One session runs one request at a time (api.md §6): a FIFO line of requests per session.

Acumatica keeps a session's state in ASP.NET session state, which admits one request of a session
at a time; the others wait in arrival order. Parallel requests only help in different sessions
(a cookie login each, or one per cookieless bearer call with ``api:concurrent_access``). With
``serialise=False`` (``--parallel-in-session``) the requests of a session overlap freely, the
sandbox's behaviour before issue 11; the counters are kept in both modes.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SessionLines:
    """Per-session FIFO of requests; thread-safe (one condition for all sessions)."""

    def __init__(self, *, serialise: bool = True) -> None:
        self.serialise = serialise
        self._cond = threading.Condition()
        self._lines: dict[str, deque[int]] = {}  # tickets of a session, in arrival order
        self._running: dict[str, int] = {}
        self._tickets = itertools.count()
        self.waiting = 0
        self.reset_counters()

    def reset_counters(self) -> None:
        with self._cond:
            self.max_parallel = 0
            self.max_waiting = 0
            self.processed = 0

    @contextmanager
    def hold(self, sid: str) -> Iterator[None]:
        """Process the block as the session's only request (after those that came first)."""
        with self._cond:
            ticket = next(self._tickets)
            line = self._lines.setdefault(sid, deque())
            line.append(ticket)
            if self.serialise and line[0] != ticket:
                self.waiting += 1
                self.max_waiting = max(self.max_waiting, self.waiting)
                try:
                    while line[0] != ticket:
                        self._cond.wait()
                finally:
                    self.waiting -= 1
            running = self._running.get(sid, 0) + 1
            self._running[sid] = running
            self.max_parallel = max(self.max_parallel, running)
        try:
            yield
        finally:
            with self._cond:
                line.remove(ticket)
                self._running[sid] -= 1
                self.processed += 1
                if not line:
                    del self._lines[sid]
                    del self._running[sid]
                self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "max_parallel_in_one_session": self.max_parallel,
                "session_lines": {
                    "serialise": self.serialise,
                    "waiting": self.waiting,
                    "max_waiting": self.max_waiting,
                    "running": sum(self._running.values()),
                    "processed": self.processed,
                },
            }
