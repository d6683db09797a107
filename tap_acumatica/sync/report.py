"""What one run owes its caller beyond the Singer messages: the streams that failed.

singer-sdk's ``Tap.sync_all`` and ``Stream.sync`` are final, and an exception out of one stream
would end the whole run. So a stream that cannot be read (``EntityUnavailableError``) or whose
stamps disagree with its windows (``StampInconsistencyError``) is stopped inside
``WindowedStream.get_records`` and noted here, the other streams go on, and the CLI turns the
notes into one line per failed stream and a non-zero exit once the SDK's command has returned.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamFailure:
    """One stream that did not finish: its name and one line saying why and what to do."""

    stream: str
    line: str


class RunReport:
    """Failed streams and the once-per-run time-semantics probe; safe across threads."""

    def __init__(self) -> None:
        """An empty report: nothing failed, nothing probed."""
        self._lock = threading.Lock()
        self._failures: list[StreamFailure] = []
        self._probed = False

    def failed(self, stream: str, line: str) -> None:
        """Note that ``stream`` stopped early, once per stream."""
        with self._lock:
            if all(f.stream != stream for f in self._failures):
                self._failures.append(StreamFailure(stream, " ".join(line.split())))

    @property
    def failures(self) -> list[StreamFailure]:
        """The failed streams, in the order they failed."""
        with self._lock:
            return list(self._failures)

    def needs_probe(self) -> bool:
        """True until a stream has run the time-semantics probe (once per run)."""
        with self._lock:
            return not self._probed

    def probed(self) -> None:
        """The probe has run: no other stream repeats it."""
        with self._lock:
            self._probed = True
