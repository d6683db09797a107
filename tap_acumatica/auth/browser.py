"""The interactive half of the OAuth 2.0 authorization-code grant (docs/acumatica-api.md §7).

Builds the authorize URL with PKCE (S256, the only method Acumatica takes) and a random
``state``, shows it to the user (stderr, never stdout: stdout is the Singer stream) and opens
the system browser when there is one, then waits for the redirect: on the redirect URI's own
loopback host, port and path, serving one request; or, when the registered redirect URI is not
a loopback address, reading the redirected URL the user pastes.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import html
import http.server
import ipaddress
import os
import secrets
import select
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import IO, Any

from tap_acumatica import redact
from tap_acumatica.errors import AuthError, ConfigError
from tap_acumatica.settings import is_loopback


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (43+ chars of the unreserved set) and its S256 challenge."""
    verifier = _b64(secrets.token_bytes(48))
    return verifier, _b64(hashlib.sha256(verifier.encode()).digest())


@dataclasses.dataclass(frozen=True)
class AuthorizationRequest:
    """One attempt of the code grant: the URL to visit and what must come back."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str


def authorization_request(
    *, base_url: str, client_id: str, redirect_uri: str, scope: str
) -> AuthorizationRequest:
    """Build the authorize URL (response_type=code, PKCE S256, random state)."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        quote_via=urllib.parse.quote,
    )
    url = f"{base_url.rstrip('/')}/identity/connect/authorize?{query}"
    return AuthorizationRequest(url, state, verifier, redirect_uri)


def state_matches(params: dict[str, list[str]], expected_state: str) -> bool:
    """True when the redirect carries this sign-in's ``state`` (RFC 6749 §10.12)."""
    values = params.get("state") or [""]
    return secrets.compare_digest(values[0].encode(), expected_state.encode())


def code_from_redirect(params: dict[str, list[str]], expected_state: str) -> str:
    """Check the redirect's ``state`` and errors; return the authorization code."""

    def one(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    if not state_matches(params, expected_state):
        # A forged or stale redirect: never use its code, nor believe its error.
        msg = "the OAuth redirect carried the wrong state (stale or forged); run --login again"
        raise AuthError(msg)
    error = one("error")
    if error == "access_denied":
        msg = "sign-in was cancelled: access to Acumatica was denied in the browser"
        raise AuthError(msg)
    if error:
        desc = one("error_description")
        msg = f"Acumatica refused the authorization: {error}" + (f" ({desc})" if desc else "")
        raise AuthError(redact.redact(msg))
    code = one("code")
    if not code:
        msg = "the OAuth redirect carried no authorization code"
        raise AuthError(msg)
    redact.register(code)
    return code


_IGNORED = (
    "This address did not come from the sign-in tap-acumatica is waiting for (wrong state); "
    "it was ignored. Finish signing in from the URL the tap printed."
)
_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>tap-acumatica</title></head>"
    "<body style='font-family:sans-serif'><h1>{title}</h1><p>{body}</p></body></html>"
)


class _Outcome:
    """The code or error of the one callback request, shared by the listening sockets."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: str | Exception | None = None

    def set(self, value: str | Exception) -> None:
        if not self.done.is_set():
            self.value = value
            self.done.set()


class _CallbackServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTP server whose connections run in threads: a browser's idle preconnect
    must not hold up the real redirect."""

    daemon_threads = True
    callback_path: str = "/"
    expected_state: str = ""
    outcome: _Outcome


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 15

    def do_GET(self) -> None:
        """Answer the redirect; anything else on another path is a 404."""
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.path != self.server.callback_path:
            self._reply(404, "Not found", "This is tap-acumatica's sign-in listener.")
            return
        params = urllib.parse.parse_qs(parsed.query)
        if not state_matches(params, self.server.expected_state):
            # Any web page can send the browser here: a request without this sign-in's state
            # is answered and ignored, and the sign-in goes on waiting for the real redirect.
            self._reply(400, "Not this sign-in", _IGNORED)
            say(f"Ignored a request to {self.server.callback_path} without this sign-in's state.")
            return
        try:
            code = code_from_redirect(params, self.server.expected_state)
        except AuthError as exc:
            self._reply(400, "Sign-in failed", str(exc))
            self.server.outcome.set(exc)
            return
        self._reply(200, "Signed in", "tap-acumatica received the authorization; close this tab.")
        self.server.outcome.set(code)

    def _reply(self, status: int, title: str, body: str) -> None:
        page = _PAGE.format(title=html.escape(title), body=html.escape(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet: the request line carries the authorization code."""


class _V6Server(_CallbackServer):
    address_family = socket.AF_INET6


def _bind(host: str, port: int) -> list[_CallbackServer]:
    """Listen on the loopback address(es) the redirect host names, never on others."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        # A browser may resolve localhost to ::1 or 127.0.0.1: listen on both when we can.
        addrs = [("127.0.0.1", _CallbackServer), ("::1", _V6Server)]
    else:
        ip = ipaddress.ip_address(name)
        addrs = [(str(ip), _V6Server if ip.version == 6 else _CallbackServer)]
    servers: list[_CallbackServer] = []
    errors: list[str] = []
    for addr, cls in addrs:
        try:
            servers.append(cls((addr, port), _Handler))
        except OSError as exc:  # noqa: PERF203 - two addresses at most
            errors.append(f"{addr}:{port}: {exc.strerror}")
    if not servers:
        msg = f"cannot listen for the OAuth redirect on {', '.join(errors)}"
        raise AuthError(msg)
    return servers


class RedirectListener:
    """Serve one redirect on a loopback redirect URI: bind in :meth:`open`, wait in ``wait``."""

    def __init__(self, servers: list[_CallbackServer], callback_path: str) -> None:
        """Serve ``callback_path`` on sockets :meth:`open` has bound."""
        self.servers = servers
        self.outcome = _Outcome()
        for server in self.servers:
            server.callback_path = callback_path
            server.outcome = self.outcome

    @classmethod
    def open(cls, redirect_uri: str) -> RedirectListener:
        """Listen on the redirect URI's loopback host and port (before the browser opens)."""
        parts = urllib.parse.urlsplit(redirect_uri)
        if not is_loopback(parts.hostname):
            msg = f"redirect_uri {redirect_uri} is not a loopback address; cannot listen on it"
            raise ConfigError(msg)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(_bind(parts.hostname or "", port), parts.path or "/")

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.servers[0].server_address[1])

    def wait(self, expected_state: str, timeout: float) -> str:
        """Wait for the redirect and return its code; AuthError on error or timeout."""
        for server in self.servers:
            server.expected_state = expected_state
        deadline = time.monotonic() + timeout
        try:
            while not self.outcome.done.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = (
                        f"no sign-in arrived within {timeout:.0f} s (login_timeout_seconds); "
                        "open the printed URL, sign in, then run --login again"
                    )
                    raise AuthError(msg)
                ready, _, _ = select.select(self.servers, [], [], min(left, 0.1))
                for server in ready:
                    server.handle_request()  # hands the connection to a thread
        finally:
            self.close()
        if isinstance(self.outcome.value, Exception):
            raise self.outcome.value
        assert self.outcome.value is not None
        return self.outcome.value

    def close(self) -> None:
        """Stop listening (idempotent)."""
        for server in self.servers:
            with contextlib.suppress(OSError):
                server.server_close()


def say(message: str) -> None:
    """Tell the user something on stderr (stdout is the Singer stream)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _gui_available() -> bool:
    # Without a display, webbrowser falls back to console browsers (lynx, w3m) that take over
    # the terminal and block until quit: only open a browser where there is a desktop.
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_browser(url: str) -> bool:
    """Open the system browser at ``url`` if there is a desktop; never fail."""
    if not _gui_available():
        return False
    try:
        import webbrowser  # noqa: PLC0415 - optional, and slow to import

        return bool(webbrowser.open(url, new=1, autoraise=True))
    except Exception:
        return False


def read_pasted_url(
    request: AuthorizationRequest, timeout: float, stdin: IO[str] | None = None
) -> str:
    """Let the user paste the URL the browser was redirected to; return the code."""
    stream = stdin or sys.stdin
    say(
        "After you approve access, the browser is sent to "
        f"{request.redirect_uri}?code=… (the page may not load). Copy that whole address "
        "from the address bar, paste it here and press Enter:"
    )
    with contextlib.suppress(ValueError, OSError, AttributeError):
        ready, _, _ = select.select([stream], [], [], timeout)
        if not ready:
            msg = f"no redirected URL was pasted within {timeout:.0f} s (login_timeout_seconds)"
            raise AuthError(msg)
    line = stream.readline().strip()
    if not line:
        msg = "no redirected URL was pasted; run --login again"
        raise AuthError(msg)
    try:
        parsed = urllib.parse.urlsplit(line)
    except ValueError:  # e.g. a broken IPv6 literal
        msg = "the pasted text is not the redirected URL; run --login again and paste it whole"
        raise AuthError(msg) from None
    params = urllib.parse.parse_qs(parsed.query or line.lstrip("?"))
    return code_from_redirect(params, request.state)


def obtain_code(
    request: AuthorizationRequest,
    *,
    timeout: float,
    browser: bool = True,
    opener: Callable[[str], bool] = open_browser,
) -> str:
    """Show the URL, open the browser if asked, and wait for the authorization code."""
    loopback = is_loopback(urllib.parse.urlsplit(request.redirect_uri).hostname)
    listener = RedirectListener.open(request.redirect_uri) if loopback else None
    try:
        say(f"Sign in to Acumatica to authorize tap-acumatica:\n  {request.url}")
        if browser and opener(request.url):
            say("(opened in your browser)")
        if listener is not None:
            say(f"Waiting for the redirect to {request.redirect_uri} …")
            return listener.wait(request.state, timeout)
        return read_pasted_url(request, timeout)
    finally:
        if listener is not None:
            listener.close()
