"""The sandbox HTTP server: plumbing, top-level routing, license limits, faults and request stats.

The routes themselves live in rest.py (``/entity``), identity.py (``/identity``), odata.py
(``/t/{tenant}/api/odata``; ``/odata``, ``/odatav4`` with ``--legacy-odata``) and admin.py
(``/_sandbox``).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import socket
import struct
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.sandbox import NOT_LOGGED_IN, Reply, error_reply, json_reply, not_found
from tests.sandbox.admin import handle_admin
from tests.sandbox.app import App
from tests.sandbox.errors import ApiError
from tests.sandbox.faults import canned, gzip_bomb
from tests.sandbox.identity import route_identity
from tests.sandbox.limits import DeclinedError
from tests.sandbox.odata import route_odata_paths
from tests.sandbox.rest import route_entity

log = logging.getLogger("tests.sandbox")


class SandboxServer(ThreadingHTTPServer):
    """Thread per connection, HTTP/1.1 keep-alive; binds to loopback only."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, app: App) -> None:
        super().__init__(("127.0.0.1", app.opt.port), Handler)
        self.app = app
        port = self.server_address[1]
        app.base_url = f"http://127.0.0.1:{port}{app.opt.site_path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish mid-response are normal here; never dump tracebacks to stderr."""
        log.debug("connection error from %s", client_address, exc_info=True)


def parse_cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


class Handler(BaseHTTPRequestHandler):
    """Routes one request; see README.md for the URL map."""

    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 300
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default access log (it would print query strings)."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header on the instance's clock: the virtual one that stamps records.

        A real server's ``Date`` and its change stamps come from one clock (api.md §3); the
        stdlib would use the real time, which an advanced virtual clock runs ahead of.
        """
        now = self.server.app.clock.time() if timestamp is None else timestamp
        return email.utils.formatdate(now, usegmt=True)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # ------------------------------------------------------------------ plumbing
    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK
        # would add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def _read_body(self) -> bytes:
        """Read the whole request body up front, so keep-alive framing never breaks."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _body(self) -> bytes:
        return self.raw_body

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self._body().decode("utf-8", "replace"), keep_blank_values=True))

    def json_body(self) -> Any:
        raw = self._body()
        return json.loads(raw) if raw.strip() else None

    @property
    def cookies(self) -> dict[str, str]:
        return parse_cookies(self.headers.get("Cookie"))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        started = time.monotonic()
        split = urlsplit(self.path)
        raw_path = split.path
        self.params = dict(parse_qsl(split.query, keep_blank_values=True))
        self.stat_path = raw_path
        self.fault: str | None = None
        self.session_id: str | None = None  # the API session the request runs in (api.md §6)
        self.set_cookies: list[tuple[str, str]] = []  # cookies of a session it opened
        try:
            self.raw_body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            reply = self.route(method, raw_path)
        except Exception as exc:
            # Type only: a message or traceback could echo request data (secrets).
            log.error("unhandled error on %s %s: %s", method, raw_path, type(exc).__name__)  # noqa: TRY400
            log.debug("%s", traceback.format_exc())
            reply = error_reply(500, "An unexpected error occurred.", "System.Exception")
        if not raw_path.startswith("/_sandbox/"):
            app.stats.count(method, self.stat_path, reply.status)
        self.send(reply)
        if app.opt.verbose:
            ms = (time.monotonic() - started) * 1000
            log.info("%s %s %d %.1fms", method, self.stat_path, reply.status, ms)

    def send(self, reply: Reply) -> None:
        body = reply.body
        if self.fault == "truncate" and len(body) > 1:
            body = body[: max(1, len(body) // 2)]
        headers = [*reply.headers, *self.set_cookies]
        length, pieces = len(body), iter([body])
        if self.fault == "gzip_bomb":
            length, pieces = gzip_bomb(self.server.app.faults.bomb_megabytes())
            headers.append(("Content-Encoding", "gzip"))
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(length))
        for name, value in headers:
            self.send_header(name, value)
        connection = self._connection_header()
        if connection:
            self.send_header("Connection", connection)
        self.end_headers()
        if self.command == "HEAD":
            return
        if self.fault == "reset":
            self._reset_after(body[: max(0, len(body) // 3)])
            return
        try:
            if self.fault == "trickle":
                self._trickle(body)
            else:
                for piece in pieces:
                    self.wfile.write(piece)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _trickle(self, body: bytes) -> None:
        """The ``trickle`` fault: one byte of the body every ``trickle_ms`` (adversarial)."""
        pause = self.server.app.faults.trickle_seconds()
        for index in range(len(body)):
            self.wfile.write(body[index : index + 1])
            self.wfile.flush()
            time.sleep(pause)

    def _connection_header(self) -> str | None:
        """The answer's ``Connection`` header; sets ``close_connection`` for ``close``.

        RFC 9112 §9.6: a server that closes after the answer says ``Connection: close``, and a
        request with ``close`` in its ``Connection`` header (any token of a list) is the last
        one of its connection. The stdlib closes after such a request (only when the header is
        exactly ``close``) but does not say so; HTTP/1.0 requests close unless they ask for
        keep-alive, which the answer then confirms.
        """
        tokens = {
            token.strip().lower()
            for value in self.headers.get_all("Connection") or []
            for token in value.split(",")
        }
        if "close" in tokens:
            self.close_connection = True
        if self.close_connection:
            return "close"
        if self.request_version == "HTTP/1.0":
            return "keep-alive"
        return None

    def _reset_after(self, partial: bytes) -> None:
        """Write part of the body, then abort the TCP connection (RST via SO_LINGER 0)."""
        try:
            self.wfile.write(partial)
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True
        conn = self.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            conn.close()
        except OSError:
            pass

    def client_gone(self) -> bool:
        """True when the client closed its connection (peek without consuming)."""
        conn = self.connection
        try:
            conn.setblocking(False)
            return conn.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                conn.settimeout(self.timeout)

    # ------------------------------------------------------------------ routing
    def route(self, method: str, raw_path: str) -> Reply:
        app = self.server.app
        if raw_path.startswith("/_sandbox/") or raw_path == "/_sandbox":
            return handle_admin(self, method, raw_path[len("/_sandbox/") :])
        site = app.opt.site_path
        if site:
            if raw_path != site and not raw_path.startswith(site + "/"):
                return not_found(raw_path)
            raw_path = raw_path[len(site) :]
        self.stat_path = raw_path
        segs = [unquote(s) for s in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        if not segs:
            return not_found(raw_path)
        head = segs[0].lower()
        if head == "entity":
            return route_entity(self, method, segs[1:])
        if head == "identity":
            return route_identity(self, method, segs[1:])
        if head in ("t", "odata", "odatav4"):  # api.md §8: current or legacy OData paths
            return route_odata_paths(self, method, segs)
        return not_found(raw_path)

    # ------------------------------------------------------------------ sessions (api.md §6)
    def authenticate(self, *, allow_basic: bool = False) -> Reply | None:
        """Check the cookie session or bearer token; None = OK (see ``AuthState.access_for``).

        Remembers the session the request runs in (``limited`` serialises on it) and the
        cookies of a session the request opened (``api:concurrent_access``, api.md §6).
        """
        access = self.server.app.auth.access_for(
            self.cookies, self.authorization, allow_basic=allow_basic
        )
        self.session_id = access.sid
        self.set_cookies = access.set_cookies
        return access.denied

    def logout(self) -> Reply:
        """``POST /entity/auth/logout``: skips the license queue, but is a request of its session.

        api.md §6: one session runs one request at a time, so the logout waits for the
        session's earlier requests and ends the session after them.
        """
        auth = self.server.app.auth
        sids = auth.logout_sessions(self.cookies, self.authorization)
        with contextlib.ExitStack() as stack:
            for sid in sids:  # sorted: two logouts never wait for each other crosswise
                stack.enter_context(self.server.app.sessions.hold(sid))
            return auth.end_sessions(sids)

    def _enter_session(self, stack: contextlib.ExitStack) -> Reply | None:
        """Wait for the request's turn in its session (api.md §6); None = go on."""
        app = self.server.app
        sid = self.session_id
        if sid is None:
            return None
        stack.enter_context(app.sessions.hold(sid))
        if app.auth.session_alive(sid):
            return None
        # The session ended while the request waited (logout, revoke, idle time): the request
        # meets it closed, like one that arrives after the logout.
        www = [("WWW-Authenticate", 'Bearer error="invalid_token"')] if self.bearer else []
        return json_reply(401, NOT_LOGGED_IN, www)

    @property
    def bearer(self) -> bool:
        return (self.authorization or "")[:7].lower() == "bearer "

    def limited(self, work: Any, entity: str | None = None, *, discovery: bool = False) -> Reply:
        """Run ``work`` on a license processing core; data requests also get faults/latency.

        The core is taken first (api.md §6: every request but logout queues for the cores),
        then the request waits for its turn in its session (api.md §6: one session runs one
        request at a time), holding the core: the pessimistic reading for a client that sends
        parallel requests in one session (README "Sessions"). ``discovery`` requests
        (swagger.json, $adHocSchema) get faults only when the schedule says
        ``"include_discovery": true``.
        """
        app = self.server.app
        try:
            with app.limiter.slot():
                app.stats.enter()
                try:
                    with contextlib.ExitStack() as stack:
                        ended = self._enter_session(stack)
                        if ended is not None:
                            return ended
                        if entity is not None and (not discovery or app.faults.discovery):
                            fault = self.apply_fault(entity)
                            if fault is not None:
                                return fault
                        try:
                            reply = work()
                        except ApiError as err:
                            reply = json_reply(err.status, err.body)
                        self.simulate_latency(reply.records)
                        return reply
                finally:
                    app.stats.leave()
        except DeclinedError:
            return canned("http_429")

    def apply_fault(self, entity: str) -> Reply | None:
        app = self.server.app
        kind = app.faults.pick(entity)
        if kind is None:
            return None
        if kind == "revoke":
            app.auth.revoke_credential(self.cookies, self.authorization)
            return json_reply(401, NOT_LOGGED_IN)
        if kind == "slow":
            time.sleep(app.faults.slow_seconds())
            return None
        if kind in ("reset", "truncate", "trickle", "gzip_bomb"):
            self.fault = kind  # the answer is made as usual, then written so (``send``)
            return None
        reply = canned(kind, app.faults.seen.get(kind, 1) - 1)
        if kind == "http_429":
            reply.headers.extend(app.faults.retry_after())
        return reply

    def simulate_latency(self, records: int) -> None:
        opt = self.server.app.opt
        delay = opt.latency_ms / 1000 + records * opt.per_record_us / 1e6
        if delay > 0:
            time.sleep(delay)
