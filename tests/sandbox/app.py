"""One sandbox instance's state: options, data, clock, identities, limits, faults and stats."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from tests.sandbox.auth import AuthOptions
from tests.sandbox.clock import VirtualClock
from tests.sandbox.contract5 import LEGACY_ENDPOINTS
from tests.sandbox.dac_rows import DacStore
from tests.sandbox.data import Dataset
from tests.sandbox.failing import Failing, FailingOptions
from tests.sandbox.faults import Faults
from tests.sandbox.limits import Limiter
from tests.sandbox.oauth import AuthState
from tests.sandbox.sessions import SessionLines
from tests.sandbox.stamps import StampOptions

log = logging.getLogger("tests.sandbox")

MAX_QUERIES = 5000


@dataclass
class Options:
    """Server options (one per command-line flag of ``python -m tests.sandbox``)."""

    port: int = 0
    seed: int = 1
    records: int = 500
    big_entity: str | None = None
    big_records: int = 0
    tz: str = "America/New_York"
    site_path: str = ""
    max_concurrent: int = 4
    per_minute: int = 0
    latency_ms: float = 0.0
    per_record_us: float = 0.0
    writers: float = 0.0
    faults: dict[str, Any] = field(default_factory=dict)
    fault_seed: int = 0
    token_delay_ms: int = 0
    burst_size: int = 3000
    deleted_keep_days: float = 10.0
    verbose: bool = False
    serialise_sessions: bool = True  # api.md §6; False = --parallel-in-session
    auth: AuthOptions = field(default_factory=AuthOptions)
    failing: FailingOptions = field(default_factory=FailingOptions)
    # api.md §1.1; the command line defaults to a 2026 R2 instance (contract5.DEFAULT_ENDPOINTS)
    endpoints: list[str] = field(default_factory=lambda: list(LEGACY_ENDPOINTS))
    stamps: StampOptions = field(default_factory=StampOptions)  # issue 11 (stamps.py)
    legacy_odata: bool = False  # api.md §8: pre-2024 R2 paths /odata, /odatav4 (odata.py)
    type_drift: tuple[str, ...] = ()  # api.md §3: Entity.Field served off-type (rest.py)
    # issue 13, api.md §8, §10 (odata_dac.py): DACs not on SM207010, their error, 20 MB $metadata
    untracked_deletions: tuple[str, ...] = ()
    untracked_status: int = 404
    big_metadata: bool = False


class Stats:
    """Request counters for ``GET /_sandbox/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[tuple[str, str, int]] = Counter()
            self.queries: deque[dict[str, Any]] = deque(maxlen=MAX_QUERIES)
            self.total = 0
            self.in_flight = 0
            self.max_in_flight = 0

    def count(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests[(method, path, status)] += 1
            self.total += 1

    def query(self, path: str, params: dict[str, str]) -> None:
        with self._lock:
            self.queries.append({"path": path, "params": dict(params)})

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": [
                    {"method": m, "path": p, "status": s, "count": n}
                    for (m, p, s), n in sorted(self.requests.items())
                ],
                "queries": list(self.queries),
                "requests_total": self.total,
                "max_in_flight": self.max_in_flight,
                "in_flight": self.in_flight,
            }


class App:
    """Everything one sandbox instance knows: data, clock, identities, limits, faults, stats."""

    def __init__(self, options: Options) -> None:
        self.opt = options
        self.clock = VirtualClock()
        self.dataset = Dataset(
            seed=options.seed,
            records=options.records,
            tz=options.tz,
            now=self.clock.now,
            big_entity=options.big_entity,
            big_records=options.big_records,
            burst_size=options.burst_size,
            site_path=options.site_path,
            stamps=options.stamps,
        )
        self.dac = DacStore(self.dataset)  # DAC OData rows over the same data (api.md §8)
        self.auth = AuthState(self.clock, options.auth, options.seed)
        self.limiter = Limiter(options.max_concurrent, options.per_minute)
        self.faults = Faults(options.faults, options.fault_seed, options.token_delay_ms)
        self.stats = Stats()
        # api.md §6: one session runs one request at a time (server.py Handler.limited)
        self.sessions = SessionLines(serialise=options.serialise_sessions)
        self.failing = Failing(options.failing)  # issue 11: failing entities, lockout
        self.dataset.versions = list(options.endpoints)  # issue 11: GET /entity, api.md §1
        self.base_url = ""
        self.stop_event = threading.Event()

    def reset(self) -> None:
        """``POST /_sandbox/reset``: sessions, tokens, faults and counters back to the start."""
        self.auth.reset()
        self.faults.reset()
        self.stats.reset()
        self.limiter.reset_counters()
        self.sessions.reset_counters()
        self.failing.reset()

    def start_writers(self) -> threading.Thread | None:
        """``--writers N``: a background thread inserting/updating/deleting ~N records/s."""
        rate = self.opt.writers
        if rate <= 0:
            return None
        rng = random.Random(self.opt.seed * 7919 + 1)

        def run() -> None:
            owed = 0.0
            last = time.monotonic()
            while not self.stop_event.wait(0.05):
                now = time.monotonic()
                owed += (now - last) * rate
                last = now
                n = int(owed)
                if n:
                    owed -= n
                    try:
                        self.dataset.random_mutations(rng, n)
                    except Exception:
                        log.exception("background writer failed")

        thread = threading.Thread(target=run, name="sandbox-writers", daemon=True)
        thread.start()
        return thread
