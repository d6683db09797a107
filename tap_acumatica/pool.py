"""Worker threads shared by every stream of a run (their keep-alive connections are reused)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class DaemonPool:
    """A minimal thread pool of daemon threads.

    Daemon threads let SIGTERM/SIGINT end the process at once: the SDK writes the last STATE
    and exits, and no in-flight request (up to ``request_timeout`` long) holds the exit back,
    as ThreadPoolExecutor's non-daemon workers would.
    """

    def __init__(self, workers: int, name: str) -> None:
        """Create the pool; threads start on first use."""
        self._workers = max(1, workers)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._pending: set[Future[Any]] = set()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on a worker; returns its future."""
        if not self._threads:
            for i in range(self._workers):
                thread = threading.Thread(target=self._run, name=f"{self._name}-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
        future: Future[Any] = Future()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        self._queue.put((future, fn))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel queued work and let the threads end after their current task."""
        for future in list(self._pending):
            future.cancel()
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []
