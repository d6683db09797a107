"""What one run owes its caller beyond the Singer messages: the streams that failed.

singer-sdk's ``Tap.sync_all`` and ``Stream.sync`` are final, and an exception out of one stream
would end the whole run. So a stream that cannot be read (``EntityUnavailableError``) or whose
stamps disagree with its windows (``StampInconsistencyError``) is stopped inside
``WindowedStream.get_records`` and noted here, the other streams go on, and the CLI turns the
notes into one line per failed stream and a non-zero exit once the SDK's command has returned.

The report also decides whether this run needs the time-semantics probe
(``consistency.probe``, docs/acumatica-api.md §13): not when it has passed in this run, nor
when a stream's state (input STATE included) holds a verdict younger than
:data:`PROBE_RECHECK_DAYS`. The stream whose probe passed keeps the verdict in its own state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from tap_acumatica.stamps import DAY_MS, iso_utc, parse_ms

#: The stream-state member that holds the probe's verdict: the server's clock (ISO UTC) when
#: the instance was last seen to honour the offset of ``$filter`` date-time literals.
VERDICT_KEY = "offsets_honoured_at"
#: How long a verdict spares later runs the probe. How literals are read belongs to the
#: instance's version, and an upgrade (a new release or update) could change it; re-checking
#: weekly costs 2 requests a week, and in between the window checks still stop a stream whose
#: records come back outside their window (``consistency.checked_window``).
PROBE_RECHECK_DAYS = 7
#: A verdict may lead the clock it is compared with by this much (``Date`` has whole seconds).
_LEAD_MS = 5_000


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

    def needs_probe(self, tap_state: Mapping[str, Any], now_ms: int) -> bool:
        """True unless the probe passed in this run or ``tap_state`` holds a fresh verdict.

        ``tap_state`` is the tap's state (the input STATE and what this run added); a verdict
        is fresh when it is less than :data:`PROBE_RECHECK_DAYS` older than ``now_ms`` (the
        server's clock). Once False, False for the rest of the run.
        """
        with self._lock:
            if self._probed:
                return False
        oldest = now_ms - PROBE_RECHECK_DAYS * DAY_MS
        fresh = any(oldest < at <= now_ms + _LEAD_MS for at in verdicts(tap_state))
        if fresh:
            self.probed()
        return not fresh

    def probed(
        self, state: MutableMapping[str, Any] | None = None, now_ms: int | None = None
    ) -> None:
        """The probe has passed: no other stream repeats it; ``state`` (the stream's) keeps
        the verdict at ``now_ms`` (the server's clock) for later runs."""
        with self._lock:
            self._probed = True
        if state is not None and now_ms is not None:
            state[VERDICT_KEY] = iso_utc(now_ms)


def verdicts(tap_state: Mapping[str, Any]) -> Iterator[int]:
    """Epoch ms of every probe verdict in the streams' (and their partitions') states."""
    bookmarks = tap_state.get("bookmarks")
    for stream_state in bookmarks.values() if isinstance(bookmarks, Mapping) else ():
        if not isinstance(stream_state, Mapping):
            continue
        partitions = stream_state.get("partitions")
        extra = partitions if isinstance(partitions, list) else []
        for state in (stream_state, *extra):
            value = state.get(VERDICT_KEY) if isinstance(state, Mapping) else None
            at = parse_ms(value) if isinstance(value, str) else None
            if at is not None:
                yield at
