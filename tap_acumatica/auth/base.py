"""The authenticator base shared by every grant: credentials on requests, renewal, sign-out.

One authenticator per tap run, shared by every stream and worker thread. It is built from
explicit values (``auth.factory``), never reads a stream or ``self.config`` (the SDK's
decoupled-authenticator rule), and makes its own sign-in, token and sign-out calls on its own
``requests.Session``. Grants: ``auth.cookie`` (a cookie session), ``auth.oauth`` and
``auth.grants`` (OAuth 2.0).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tap_acumatica import redact
from tap_acumatica.auth.sessions import Lanes
from tap_acumatica.errors import AuthError, CredentialsRejectedError
from tap_acumatica.http.messages import auth_error_text

logger = logging.getLogger("tap_acumatica.auth")

#: (connect, read) timeout in seconds of a sign-in or token POST.
AUTH_TIMEOUT = (10.0, 60.0)
#: The longest a sign-in or token call may take, one resend included (``auth.oauth._refresh``).
AUTH_CALL_LIMIT_SECONDS = 2 * sum(AUTH_TIMEOUT) + 5.0


class AuthCall(NamedTuple):
    """A sign-in or token call, and what ending the run before its answer is kept loses."""

    name: str
    loss: str


#: A sign-in or token answer that is lost leaves its session open (docs/acumatica-api.md §6).
SEAT_LEFT_OPEN = (
    "its API session stays open, holding a seat until Acumatica ends it as idle (10-60 minutes)"
)

_LIVE: weakref.WeakSet[AcumaticaAuthenticator] = weakref.WeakSet()


def http_session(user_agent: str | None = None) -> requests.Session:
    """A session for auth calls: retries only failed connects, never a POST that was sent.

    A replayed refresh POST could spend a refresh token the server already rotated
    (docs/acumatica-api.md §7).
    """
    session = requests.Session()
    retry = Retry(total=3, connect=3, read=0, status=0, other=0, redirect=0, backoff_factor=0.5)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if user_agent:
        session.headers["User-Agent"] = user_agent
    return session


class AcumaticaAuthenticator(requests.auth.AuthBase):
    """Base: adds the credential to requests and renews it once per stale credential."""

    # Sporadic 401s (a revoked token, an expired session) renew the credential; a storm of
    # renewals means fresh credentials are refused too: stop rather than rotate forever.
    MAX_RENEWALS = 30
    RENEWAL_WINDOW_SECONDS = 60.0

    def __init__(self, *, base_url: str, user_agent: str | None = None, sessions: int = 1) -> None:
        self.base_url = base_url.rstrip("/")
        #: The server sessions requests are spread over (docs/acumatica-api.md §6).
        self.lanes = Lanes(sessions)
        self._rejected: CredentialsRejectedError | None = None
        self._lock = threading.RLock()
        self._http = http_session(user_agent)
        self._renewals: list[float] = []
        self._quiesce_hooks: list[Callable[[], object]] = []
        self._closing = False
        #: thread ident → the sign-in or token call it has in flight.
        self._calls: dict[int, AuthCall] = {}
        self._calls_done = threading.Condition()
        self._after_main: Callable[[], None] | None = None
        _LIVE.add(self)

    # -- subclass hooks ------------------------------------------------------------------
    def _credential(self) -> str:
        """The current credential value (header), signing in lazily."""
        raise NotImplementedError

    def _apply(self, r: requests.PreparedRequest, credential: str) -> None:
        raise NotImplementedError

    def _used_credential(self, r: requests.PreparedRequest) -> str | None:
        raise NotImplementedError

    def _current(self) -> str | None:
        """The credential now in use, without signing in."""
        raise NotImplementedError

    def _renew(self, stale: str | None) -> None:
        """Get a new credential because ``stale`` was rejected (lock held)."""
        raise NotImplementedError

    def _sign_out(self) -> None:
        raise NotImplementedError

    # -- contract ------------------------------------------------------------------------
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Cookie or Bearer credential to ``r``."""
        self._refuse_if_closing()
        credential = self._credential()
        self._refuse_if_closing()  # signing in may have taken until the sign-out began
        self._apply(r, credential)
        return r

    def answered(self, r: requests.PreparedRequest, response: requests.Response | None) -> bool:
        """Called after every request this authenticator prepared (``response`` None: none came).

        True asks the client to send ``r`` again at once (a session the licence refused was
        given up and the thread now uses another one).
        """
        del r, response
        return False

    def _check_rejected(self) -> None:
        """Refuse to sign in again once Acumatica rejected the credentials.

        docs/acumatica-api.md §6: every wrong password counts toward locking the user out.
        """
        if self._rejected is not None:
            raise CredentialsRejectedError(str(self._rejected))

    def _remember(self, exc: CredentialsRejectedError) -> CredentialsRejectedError:
        self._rejected = exc
        return exc

    @contextlib.contextmanager
    def _auth_call(self, what: AuthCall) -> Iterator[None]:
        """Mark a sign-in or token POST of this thread as in flight, up to keeping its answer.

        ``Connection.defer_signal`` lets such calls end before it ends a run.
        """
        ident = threading.get_ident()
        outer = self._calls.get(ident)  # a refresh resent once nests
        self._calls[ident] = what
        try:
            yield
        finally:
            with self._calls_done:
                if outer is None:
                    self._calls.pop(ident, None)
                else:
                    self._calls[ident] = outer
                self._calls_done.notify_all()
            if outer is None and threading.current_thread() is threading.main_thread():
                after, self._after_main = self._after_main, None
                if after is not None:
                    after()

    def main_auth_call(self) -> AuthCall | None:
        """The sign-in or token call the main thread has in flight (lock-free: signal-safe)."""
        return self._calls.get(threading.main_thread().ident or 0)

    def call_after_main_auth_call(self, callback: Callable[[], None]) -> bool:
        """Run ``callback`` on the main thread once its sign-in or token call has ended.

        False (nothing registered) when the main thread has none in flight. Used by a
        deferred SIGTERM/SIGINT (``Connection.defer_signal``), from the signal handler.
        """
        if self.main_auth_call() is None:
            return False
        self._after_main = callback
        return True

    def wait_auth_calls(self, timeout: float = AUTH_CALL_LIMIT_SECONDS) -> bool:
        """Wait (up to ``timeout`` s) until no sign-in or token call is in flight; True if none."""
        deadline = time.monotonic() + timeout
        with self._calls_done:
            while self._calls:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._calls_done.wait(left)
        return True

    def before_sign_out(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` (e.g. an HTTP client's quiesce) before every sign-out."""
        self._quiesce_hooks.append(hook)

    def _refuse_if_closing(self) -> None:
        if self._closing:
            # A credential handed out now would reach Acumatica after the logout and open a
            # new session that holds an API seat until it idles out (docs/acumatica-api.md §6).
            msg = "the tap is signing out; no new requests"
            raise AuthError(msg)

    def handle_unauthorized(self, r: requests.PreparedRequest) -> None:
        """After a 401 on ``r``: renew once per stale credential; AuthError when impossible."""
        self._refuse_if_closing()
        used = self._used_credential(r)
        with self._lock:
            current = self._current()
            if used is not None and current is not None and used != current:
                return  # another thread already renewed it: just resend
            now = time.monotonic()
            self._renewals = [t for t in self._renewals if now - t < self.RENEWAL_WINDOW_SECONDS]
            if len(self._renewals) >= self.MAX_RENEWALS:
                msg = (
                    f"Acumatica rejected {self.MAX_RENEWALS} fresh credentials within "
                    f"{self.RENEWAL_WINDOW_SECONDS:.0f} s (401 right after signing in again); "
                    "check the user's access rights and the API licence"
                )
                raise AuthError(msg)
            self._renewals.append(now)
            self._renew(stale=used)

    def sign_out(self) -> None:
        """Free the API seat (POST /entity/auth/logout); idempotent, never raises.

        First stop handing out credentials and let the registered clients finish the
        requests already on the wire (bounded), so none reaches Acumatica after the logout.
        Hooks run without the lock: a request in flight may be renewing its credential.
        """
        self._closing = True
        for hook in list(self._quiesce_hooks):
            hook()  # bounded; never raises (AcumaticaClient.quiesce)
        with self._lock:
            try:
                self._sign_out()
            except Exception as exc:
                logger.warning("Sign-out failed: %s", redact.redact(str(exc)))

    def _post_logout(self, headers: Mapping[str, str]) -> None:
        # docs/acumatica-api.md §6: logout frees the seat, else it stays taken 30-60 minutes.
        resp = self._http.post(
            f"{self.base_url}/entity/auth/logout", headers=dict(headers), timeout=(10, 20)
        )
        if resp.status_code >= 400:
            logger.warning("Sign-out answered %s", auth_error_text(resp))
        else:
            logger.info("Signed out of Acumatica (API seat freed).")


def sign_out_all() -> None:
    """Sign every authenticator of this process out (a safety net for the CLI)."""
    for authenticator in list(_LIVE):
        authenticator.sign_out()


@contextlib.contextmanager
def signed_out_at_exit(authenticator: AcumaticaAuthenticator) -> Iterator[AcumaticaAuthenticator]:
    """``with signed_out_at_exit(a): ...`` signs ``a`` out however the block ends."""
    try:
        yield authenticator
    finally:
        authenticator.sign_out()
