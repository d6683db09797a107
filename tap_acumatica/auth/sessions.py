"""The server sessions of one authenticator, and which thread sends in which.

docs/acumatica-api.md §6: one Acumatica session runs one request at a time, so
``max_concurrent_requests`` = N means N sessions: N cookie logins, or N cookie jars of one
bearer grant with scope ``api:concurrent_access``. Each thread keeps its lane (session) for the
whole run; the main thread and the first extra worker share lane 0. Sessions are opened one
after another (``opening``); when the licence refuses one ("API Login Limit") the run goes on
with the sessions already open.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import requests

from tap_acumatica import redact

logger = logging.getLogger("tap_acumatica.auth")

#: docs/acumatica-api.md §7: the scope that lets one bearer grant hold several sessions.
CONCURRENT_SCOPE = "api:concurrent_access"


class Lanes:
    """Up to ``size`` sessions; a thread is given the least used open lane on its first call."""

    def __init__(self, size: int) -> None:
        """No session is opened here: lanes open on their first request."""
        self.size = max(1, size)
        #: lane → Cookie header of its open session.
        self.cookies: dict[int, str] = {}
        self.opening = threading.Lock()  # held while a session is being opened
        self._alive = list(range(self.size))
        self._users = dict.fromkeys(self._alive, 0)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._warned = False

    @property
    def alive(self) -> int:
        """How many sessions the run may still use."""
        return len(self._alive)

    def current(self) -> int:
        """The calling thread's lane (given on first use, or again once its lane was dropped)."""
        lane: int | None = getattr(self._local, "lane", None)
        if lane is not None and lane in self._alive:
            return lane
        with self._lock:
            lane = min(self._alive, key=lambda i: (self._users[i], i))
            self._users[lane] += 1
        self._local.lane = lane
        return lane

    def cookie(self) -> str | None:
        """The Cookie header of the calling thread's session, None before it is open."""
        return self.cookies.get(self.current())

    def cookie_or_open(self, refuse_if_closing: Callable[[], None]) -> str | None:
        """The thread's session cookie, or None: this request opens the lane's session.

        With None, ``opening`` stays held until :meth:`settle` (one session opened at a time,
        docs/acumatica-api.md §6); ``refuse_if_closing`` runs once the turn has come.
        """
        cookie = self.cookie()
        if cookie is not None:
            return cookie
        self.opening.acquire()
        try:
            cookie = self.cookie()
            if cookie is None:
                refuse_if_closing()
                self._local.opening = self.current()
                return None
        except BaseException:
            self.opening.release()
            raise
        self.opening.release()
        return cookie

    def settle(self, jar: requests.cookies.RequestsCookieJar | None) -> int | None:
        """After a request: keep the session cookies it was given; the lane it opened, if any.

        A session that ended (idle, revoked) is replaced by the server on the next call, whose
        answer sets the new cookies: they replace the lane's.
        """
        lane: int | None = getattr(self._local, "opening", None)
        self._local.opening = None
        try:
            if jar is not None:
                self.keep(self.current() if lane is None else lane, jar)
        finally:
            if lane is not None:
                self.opening.release()
        return lane

    def keep(
        self, lane: int, jar: requests.cookies.RequestsCookieJar, *, opened: bool = False
    ) -> bool:
        """Remember the cookies an answer set for ``lane``; True if it set a session's.

        ``opened``: the answer to a sign-in, whose cookies are the session whatever their
        names; otherwise only an answer naming a session (``ASP.NET_SessionId``) counts.
        """
        cookies = {c.name: c.value for c in jar if c.value}
        if not cookies or not (opened or "ASP.NET_SessionId" in cookies):
            return False
        redact.register(*cookies.values())
        old = self.cookies.get(lane)
        merged = dict(_parse(old)) if old else {}
        merged.update(cookies)
        self.cookies[lane] = "; ".join(f"{k}={v}" for k, v in merged.items())
        return True

    def drop(self, lane: int) -> bool:
        """The licence refused ``lane``'s session: go on with the sessions open, if any.

        False (nothing changed) when no other session is open: the caller waits for a seat as
        for the first session (``login_limit_wait_seconds``).
        """
        with self._lock:
            others = [i for i in self._alive if i != lane and i in self.cookies]
            if lane not in self._alive or not others:
                return False
            # The licence caps seats: lanes not open yet would be refused too.
            self._alive = others
            self.cookies.pop(lane, None)
            warn, self._warned = not self._warned, True
        if warn:
            logger.warning(
                "Acumatica refused another API session ('API Login Limit': the licence's API "
                "seats are taken); going on with %d session(s) instead of %d. Free seats or "
                "raise 'Maximum Number of Web Services API Users' (SM604000) to use "
                "max_concurrent_requests in full.",
                self.alive,
                self.size,
            )
        return True

    def take_all(self) -> list[str]:
        """Forget every open session and return their Cookie headers (to sign them out)."""
        with self._lock:
            cookies = [self.cookies[i] for i in sorted(self.cookies)]
            self.cookies.clear()
        return cookies


def _parse(header: str) -> list[tuple[str, str]]:
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return [(name, value) for name, _, value in pairs if name]
