"""The connection to one Acumatica instance: everything that talks to it, and its end.

``Connection`` owns the authenticator, the HTTP client, the worker pool, the first request
(``GET /entity``) and the server's clock; ``close()`` and signal handling make sure every
request on the wire is answered before the API seat is freed. Built from settings, with no
network I/O until a method needs it; streams get a ``Connection``, never the tap.
"""

from __future__ import annotations

import _thread
import atexit
import concurrent.futures
import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, TypeVar

from tap_acumatica.auth.base import AUTH_CALL_LIMIT_SECONDS, AcumaticaAuthenticator
from tap_acumatica.auth.factory import build_authenticator
from tap_acumatica.auth.sessions import CONCURRENT_SCOPE
from tap_acumatica.http.client import QUIESCE_SECONDS, AcumaticaClient
from tap_acumatica.pool import DaemonPool
from tap_acumatica.settings import Settings
from tap_acumatica.stamps import DEFAULT_START, to_ms

LOGGER = logging.getLogger("tap-acumatica")
T = TypeVar("T")


class Connection:
    """Authenticator, HTTP client, worker pool and server clock of one run."""

    def __init__(
        self, settings: Settings, config: Mapping[str, Any], *, config_files: Sequence[str]
    ) -> None:
        """Remember what to connect with; nothing is opened here."""
        self.settings = settings
        self._config = config
        self._config_files = tuple(config_files)
        self._index: Any = None
        self._lock = threading.Lock()
        self._deferred = False  # a first SIGTERM/SIGINT is waiting for a request to end
        self._timer: threading.Timer | None = None
        self._ending = False  # a second signal ended the run: no signal is delivered again

    @cached_property
    def authenticator(self) -> AcumaticaAuthenticator:
        """The run's one authenticator, signed out when the process ends."""
        authenticator = build_authenticator(self._config, config_files=self._config_files)
        atexit.register(self.close)
        return authenticator

    @cached_property
    def client(self) -> AcumaticaClient:
        """The HTTP client shared by discovery and every stream."""
        s = self.settings
        client = AcumaticaClient(
            s.base_url,
            self.authenticator,
            timeout=s.request_timeout,
            max_tries=s.max_tries,
            backoff_base=s.backoff_base_seconds,
            login_limit_wait=s.login_limit_wait_seconds,
            deadline=s.response_deadline_seconds,
            page_size=s.page_size,
            user_agent=s.user_agent,
            branch=s.branch,
        )
        # The sign-out must come after this client's last answer, whoever signs out
        # (docs/acumatica-api.md §6: a late request would open a new session).
        self.authenticator.before_sign_out(client.quiesce)
        return client

    @cached_property
    def pool(self) -> DaemonPool:
        """Worker threads shared by every stream, so their keep-alive sessions are reused.

        One worker per server session the authenticator may open (docs/acumatica-api.md §6:
        a session runs one request at a time, so more workers would only queue).
        """
        workers = self.settings.max_concurrent_requests
        sessions = self.authenticator.lanes.size
        if sessions < workers:
            LOGGER.info(
                "max_concurrent_requests is %d, but an OAuth grant without the scope %s is one "
                "Acumatica session, which runs one request at a time: reading with 1 worker. "
                "Add %s to scope (and allow it for the connected application) for %d sessions.",
                workers,
                CONCURRENT_SCOPE,
                CONCURRENT_SCOPE,
                workers,
            )
        return DaemonPool(min(workers, sessions), "acumatica-fetch")

    def probe(self) -> Any:
        """The run's first request, made once: ``GET /entity`` (docs/acumatica-api.md §1).

        It lists the instance's endpoints and versions, proves the credentials, and gives the
        server's ``Date`` for :meth:`sync_end_ms`.
        """
        with self._lock:
            if self._index is None:
                self._index = self.client.get_json("/entity")
            return self._index

    def sync_end_ms(self, safety_lag_seconds: float) -> int:
        """Upper bound of a stream's windows: now - safety lag, on the earlier clock.

        The server's ``Date`` header guards against a local clock running ahead of the
        server's, which would otherwise move the bookmark past records not yet written.
        """
        self.probe()  # make sure one response (and its Date) has been seen
        skew = self.client.server_skew or 0.0
        now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=min(0.0, skew))
        try:
            return to_ms(now - dt.timedelta(seconds=safety_lag_seconds))
        except OverflowError:  # a lag of millennia: nothing is old enough to read yet
            return to_ms(DEFAULT_START)

    def in_two_sessions(self, fn: Callable[[], T]) -> tuple[T, T] | None:
        """``fn`` run at once on two worker threads, in two different server sessions.

        A barrier makes the two calls run on two worker threads, and every worker keeps its
        own session (``auth/sessions.py``). None, with nothing sent, when the run has one
        session (``max_concurrent_requests`` 1, an OAuth grant without ``api:concurrent_access``,
        the licence refused the second) or a worker did not come within ``request_timeout``;
        None as well when both calls ended up in one session. Exceptions of ``fn`` propagate.
        """
        lanes = self.authenticator.lanes
        if lanes.alive < 2 or min(self.settings.max_concurrent_requests, lanes.size) < 2:
            return None
        barrier = threading.Barrier(2, timeout=self.settings.request_timeout)

        def run() -> tuple[int, T]:
            barrier.wait()
            result = fn()
            return lanes.current(), result  # the session the call ended in

        futures = [self.pool.submit(run) for _ in range(2)]
        concurrent.futures.wait(futures)
        try:
            (lane_a, first), (lane_b, second) = (f.result() for f in futures)
        except threading.BrokenBarrierError:
            return None
        return (first, second) if lane_a != lane_b else None

    def close(self) -> None:
        """Stop all requests, then free every API seat the run took (also at process exit).

        Quiescing the client first matters after SIGTERM/SIGINT: a worker's GET still on the
        wire would reach Acumatica after the logout with a still-valid bearer and open a new
        session holding a seat (docs/acumatica-api.md §6).
        """
        if "client" in self.__dict__:
            self.client.close()
        if "authenticator" in self.__dict__:
            self.authenticator.sign_out()

    def defer_signal(self, signum: int, again: Callable[[], None]) -> bool:
        """SIGTERM/SIGINT: stop new requests; True when ending must wait a little.

        A sign-in or token call of the main thread is always let finish (bounded by its own
        timeout): cut short, it would lose the refresh token Acumatica rotated in it
        (docs/acumatica-api.md §7) or leave the session it opened holding a seat (§6); the run
        ends (``again`` is called) once its answer is kept. Interrupting the main thread's GET
        would not stop Acumatica from answering it after the logout (opening a session): the
        run ends once it is answered or after ``QUIESCE_SECONDS`` (the signal is delivered
        again), whichever comes first. A second call (the end of that wait, or a second
        signal) answers False: end now, with a warning when it cuts a sign-in or token call.
        """
        client: AcumaticaClient | None = self.__dict__.get("client")
        if client is None:
            return False
        client.stop_sending()
        authenticator: AcumaticaAuthenticator | None = self.__dict__.get("authenticator")
        call = authenticator.main_auth_call() if authenticator is not None else None
        if self._deferred:
            if self._timer is not None:
                self._timer.cancel()
            self._ending = True
            if call is not None:
                LOGGER.warning(
                    "A second signal: stopping now, cutting the %s in flight short: %s.", *call
                )
            return False
        if call is not None and authenticator is not None:
            if not authenticator.call_after_main_auth_call(again):
                return False  # it ended meanwhile
            LOGGER.warning(
                "Stopping once the %s in flight is answered and kept (at most %.0f s); a second "
                "signal stops at once, and then %s.",
                call.name,
                AUTH_CALL_LIMIT_SECONDS,
                call.loss,
            )
        elif client.call_after_main_request(again):
            timer = threading.Timer(QUIESCE_SECONDS, self._end_after_auth_calls, (signum,))
            timer.daemon = True
            self._timer = timer
            timer.start()
        else:
            return False
        self._deferred = True
        return True

    def _end_after_auth_calls(self, signum: int) -> None:
        """``QUIESCE_SECONDS`` after a signal: end the run, once no sign-in or token call is on.

        The main thread may have started one after the signal (its request waited for the
        credential another thread was renewing): cut short, it would lose what it obtains.
        """
        authenticator: AcumaticaAuthenticator | None = self.__dict__.get("authenticator")
        if authenticator is not None:
            authenticator.wait_auth_calls()
        if not self._ending:
            _resignal(signum)


def _resignal(signum: int) -> None:
    """Deliver ``signum`` to the main thread again, interrupting a blocking socket read."""
    ident = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and ident is not None:
        signal.pthread_kill(ident, signum)
    else:  # Windows: handled once the main thread runs Python code again
        _thread.interrupt_main(signal.Signals(signum))
