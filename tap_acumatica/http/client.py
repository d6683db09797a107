"""The tap's GET client: keep-alive sessions per thread, retries, deadlines, sign-out safety.

The SDK's RESTStream request loop is single-threaded and ignores ``Retry-After``
(docs/architecture.md, "The SDK"), while windows are fetched by several worker threads and
discovery needs the same behaviour outside any stream, so every GET goes through
:class:`AcumaticaClient`. What an error answer means is decided in ``http.messages``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
import requests

from tap_acumatica.errors import (
    AcumaticaAPIError,
    AuthError,
    LoginLimitError,
    ResponseLimitError,
    RetriableError,
    ShuttingDownError,
)
from tap_acumatica.http import messages
from tap_acumatica.http.body import Sink, Tally, date_skew, encode_query, exchange, max_body_bytes
from tap_acumatica.settings import DEFAULTS

if TYPE_CHECKING:
    from tap_acumatica.auth.base import AcumaticaAuthenticator

LOGGER = logging.getLogger("tap-acumatica")

_DECODER = msgspec.json.Decoder(
    float_hook=Decimal
)  # decimals stay exact (docs/acumatica-api.md §3)
#: How long closing waits for requests already on the wire before the sign-out goes out.
QUIESCE_SECONDS = 5.0


class _NoCookies(requests.cookies.RequestsCookieJar):
    """A cookie jar that stores nothing: the authenticator alone owns session cookies."""

    def set_cookie(self, cookie: Any, *args: Any, **kwargs: Any) -> None:
        """Ignore cookies set by responses."""


class AcumaticaClient:
    """Sends GETs for the tap and its streams; thread-safe, one keep-alive session per thread."""

    def __init__(
        self,
        base_url: str,
        authenticator: AcumaticaAuthenticator | None,
        *,
        timeout: float = DEFAULTS["request_timeout"],
        max_tries: int = DEFAULTS["max_tries"],
        backoff_base: float = DEFAULTS["backoff_base_seconds"],
        backoff_max: float = 60.0,
        login_limit_wait: float = DEFAULTS["login_limit_wait_seconds"],
        deadline: float = DEFAULTS["response_deadline_seconds"],
        page_size: int = DEFAULTS["page_size"],
        user_agent: str | None = None,
        branch: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the client; no network I/O happens here."""
        self.base_url = base_url.rstrip("/")
        self.authenticator = authenticator
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.login_limit_wait = login_limit_wait
        self.deadline = deadline  # for one response, from sending the request to its last byte
        self.max_body = max_body_bytes(page_size)
        self.headers = {"Accept": "application/json"}
        if user_agent:
            self.headers["User-Agent"] = user_agent
        if branch:
            # docs/acumatica-api.md §1: PX-CbApiBranch selects the branch per request (also for
            # OAuth).
            self.headers["PX-CbApiBranch"] = branch
        self._sleep = sleep
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._closed = False
        #: True while the main thread has a request on the wire.
        self.main_thread_sending = False
        self._after_main: Callable[[], None] | None = None
        #: server clock - local clock in seconds, from the last ``Date`` header (1 s resolution).
        self.server_skew: float | None = None
        self.sent = Tally()  # requests put on the wire, by stream (the progress line's count)

    # -- sessions ----------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.cookies = _NoCookies()
            session.headers.update(self.headers)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    @property
    def in_flight(self) -> int:
        """Requests being prepared (credential handed out) or on the wire right now."""
        return self._in_flight

    def call_after_main_request(self, callback: Callable[[], None]) -> bool:
        """Run ``callback`` once the main thread's request in flight is answered.

        False (and nothing registered) when the main thread has no request on the wire.
        Used by a deferred SIGTERM/SIGINT (``Connection.defer_signal``).
        """
        if not self.main_thread_sending:
            return False
        self._after_main = callback
        return True

    def stop_sending(self) -> None:
        """Refuse new requests from now on (those in flight go on).

        Lock-free: it runs in a signal handler, which may interrupt the main thread while
        it holds ``_lock`` (not reentrant). A send that races past it is counted in flight.
        """
        self._closed = True

    def quiesce(self, wait: float = QUIESCE_SECONDS) -> bool:
        """Refuse new requests, then wait up to ``wait`` s for those in flight; True if none left.

        A GET still on the wire when the run signs out would reach Acumatica after the
        logout with a still-valid bearer and open a new session holding an API seat until it
        idles out (30-60 minutes, docs/acumatica-api.md §6), so the sign-out must come after the
        last answer.
        """
        deadline = time.monotonic() + max(0.0, wait)
        with self._idle:
            self._closed = True
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    LOGGER.warning(
                        "%d request(s) still in flight after %.0fs; signing out anyway",
                        self._in_flight,
                        wait,
                    )
                    return False
                self._idle.wait(left)
        return True

    def close(self, wait: float = QUIESCE_SECONDS) -> None:
        """Refuse further requests, let those in flight finish (bounded), close the sessions."""
        self.quiesce(wait)
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # -- requests ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Absolute URL of an instance path such as ``/entity``."""
        return path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        stream: str | None = None,
        authenticate: bool = True,
        decoder: msgspec.json.Decoder[Any] | None = None,
    ) -> Any:
        """GET ``path`` and decode the JSON body, retrying what can be retried.

        ``decoder`` decodes into typed structs; a body of another shape is decoded as plain
        JSON instead, so the caller gets dicts and lists and decides what to do with them.
        """
        return self._get(
            path, params or {}, stream=stream, authenticate=authenticate, decoder=decoder
        )[0]

    def get_bytes(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        stream: str | None = None,
        authenticate: bool = True,
    ) -> bytes:
        """GET ``path`` and return the raw body (for documents decoded elsewhere)."""
        return self._get(path, params or {}, stream=stream, authenticate=authenticate, raw=True)[1]

    def get_chunks(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        consume: Callable[[bytes], None],
        restart: Callable[[], None] | None = None,
        stream: str | None = None,
        limit: int | None = None,
        headers: Mapping[str, str] | None = None,
        absent: tuple[int, ...] = (),
    ) -> bool:
        """GET ``path`` as :meth:`get_json` does, handing the body to ``consume`` piece by piece.

        For bodies too large to hold (§8; ``http.body.Sink``). False: a status in ``absent``.
        """
        sink = Sink(consume, restart, limit, headers)
        got = self._get(
            path, params or {}, stream=stream, authenticate=True, sink=sink, absent=absent
        )
        return got[0] is not None

    def _get(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        stream: str | None,
        authenticate: bool,
        raw: bool = False,
        decoder: msgspec.json.Decoder[Any] | None = None,
        sink: Sink | None = None,
        absent: tuple[int, ...] = (),
    ) -> tuple[Any, bytes]:
        query = encode_query(params)
        url = self.url(path) + (f"?{query}" if query else "")
        where = self._where(stream, url)
        self._local.stream = stream or ""  # what ``_send_once`` counts this thread's sends for
        self._local.sink = sink  # where ``_send_once`` pours a 2xx body, if anywhere
        attempt = 0
        reauthenticated = False
        limit_deadline: float | None = None
        while True:
            attempt += 1
            try:
                response = self._send(url, authenticate=authenticate)
                self.server_skew = date_skew(response, self.server_skew)
                if response.status_code == 401 and authenticate and self.authenticator:
                    assert response.request is not None
                    if reauthenticated:
                        msg = f"{where} was refused with HTTP 401 again after signing in anew"
                        raise AuthError(msg)
                    reauthenticated = True
                    attempt -= 1
                    self.authenticator.handle_unauthorized(response.request)
                    continue
                if response.status_code in absent:
                    return None, b""
                messages.check(response, where)
                if sink is not None:
                    return True, b""
                return self._decode(response.content, raw=raw, decoder=decoder)
            except LoginLimitError as exc:
                limit_deadline = self._wait_for_seat(exc, where, limit_deadline)
                attempt -= 1
            except ResponseLimitError as exc:
                raise ResponseLimitError(f"{where} failed: {exc}") from None
            except RetriableError as exc:
                self._wait_to_retry(exc, where, attempt)

    @staticmethod
    def _decode(
        body: bytes, *, raw: bool, decoder: msgspec.json.Decoder[Any] | None
    ) -> tuple[Any, bytes]:
        """The decoded body (None when ``raw``) and the body itself."""
        if raw:
            return None, body
        try:
            return (decoder or _DECODER).decode(body), body
        except msgspec.ValidationError:
            return _DECODER.decode(body), body  # valid JSON, another shape: as is
        except msgspec.DecodeError as exc:
            # A truncated body (dropped connection mid-stream) decodes badly: retry.
            raise RetriableError(f"undecodable JSON ({exc})") from exc

    def _wait_for_seat(self, exc: LoginLimitError, where: str, deadline: float | None) -> float:
        """Wait a while for a free API seat after 'API Login Limit'; return the deadline.

        The deadline is set at the first refusal (``login_limit_wait`` from then); once it has
        passed the refusal becomes a fatal :class:`AcumaticaAPIError`.
        """
        now = time.monotonic()
        if deadline is None:
            deadline = now + self.login_limit_wait
        if now >= deadline:
            msg = (
                f"{where}: Acumatica refused a new API session: 'API Login Limit' (every "
                f"API seat is taken by open sessions; still so after waiting "
                f"{self.login_limit_wait:.0f}s). Sign out other integrations or raise "
                "login_limit_wait_seconds; Acumatica frees the seat of a session nobody "
                "signed out after its idle timeout (often 30 minutes, up to 60 for OAuth)."
            )
            raise AcumaticaAPIError(msg) from exc
        delay = min(30.0, max(1.0, deadline - now))
        LOGGER.warning(
            "%s: API Login Limit reached (all API seats busy); retrying in %.0fs",
            where,
            delay,
        )
        self._sleep(delay)
        return deadline

    def _wait_to_retry(self, exc: RetriableError, where: str, attempt: int) -> None:
        """Sleep before try ``attempt + 1``; raise :class:`AcumaticaAPIError` after the last."""
        if attempt >= self.max_tries:
            msg = f"{where} failed after {attempt} tries: {exc.reason}"
            raise AcumaticaAPIError(msg) from exc
        delay = exc.delay if exc.delay is not None else self._backoff(attempt)
        LOGGER.warning(
            "%s: %s; retry %d/%d in %.1fs",
            where,
            exc.reason,
            attempt,
            self.max_tries - 1,
            delay,
        )
        self._sleep(delay)

    def _send(self, url: str, *, authenticate: bool) -> requests.Response:
        with self._lock:
            if self._closed:
                msg = "the tap is shutting down; no further requests"
                raise ShuttingDownError(msg)
            self._in_flight += 1
        main = threading.current_thread() is threading.main_thread()
        if main:
            self.main_thread_sending = True
        try:
            return self._send_counted(url, authenticate=authenticate)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
            if main:
                self.main_thread_sending = False
                deferred, self._after_main = self._after_main, None
                if deferred is not None:
                    deferred()

    def _send_counted(self, url: str, *, authenticate: bool) -> requests.Response:
        session = self._session()
        auth = self.authenticator if authenticate else None
        # Optional on stand-in authenticators: AcumaticaAuthenticator.answered.
        answered = getattr(auth, "answered", None)
        while True:
            request = requests.Request("GET", url, auth=auth)
            prepared = session.prepare_request(request)  # the authenticator may raise here
            response: requests.Response | None = None
            resend = False
            try:
                response = self._send_once(session, prepared)
            finally:
                # The authenticator keeps the session cookies an answer set (one session per
                # thread, docs/acumatica-api.md §6); True: it gave up a refused session, resend.
                if answered is not None:
                    resend = bool(answered(prepared, response))
            if not resend:
                assert response is not None
                return response
            if self._closed:
                msg = "the tap is shutting down; no further requests"
                raise ShuttingDownError(msg)

    def _send_once(
        self, session: requests.Session, prepared: requests.PreparedRequest
    ) -> requests.Response:
        self.sent.add(getattr(self._local, "stream", ""))
        return exchange(
            session,
            prepared,
            timeout=self.timeout,
            deadline=self.deadline,
            limit=self.max_body,
            sink=getattr(self._local, "sink", None),
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _where(self, stream: str | None, url: str) -> str:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return f"{stream + ': ' if stream else ''}GET {target}"
