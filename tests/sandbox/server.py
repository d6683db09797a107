"""The sandbox HTTP server: routing, auth checks, license limits, faults and request stats."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import struct
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.sandbox import NOT_LOGGED_IN, Reply, error_reply, json_reply
from tests.sandbox.auth import AuthOptions, AuthState
from tests.sandbox.clock import VirtualClock
from tests.sandbox.faults import Faults, canned
from tests.sandbox.limits import DeclinedError, Limiter

log = logging.getLogger("tests.sandbox")

BUILD_VERSION = "24.212.0011"  # a 2024 R2 build number (GET /entity, API-FACTS §1)
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
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
    auth: AuthOptions = field(default_factory=AuthOptions)


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
        from tests.sandbox.data import Dataset  # noqa: PLC0415  (H1's module)

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
        )
        self.auth = AuthState(self.clock, options.auth, options.seed)
        self.limiter = Limiter(options.max_concurrent, options.per_minute)
        self.faults = Faults(options.faults, options.fault_seed, options.token_delay_ms)
        self.stats = Stats()
        self.base_url = ""
        self.stop_event = threading.Event()

    def reset(self) -> None:
        """``POST /_sandbox/reset``: sessions, tokens, faults and counters back to the start."""
        self.auth.reset()
        self.faults.reset()
        self.stats.reset()
        self.limiter.reset_counters()

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
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if self.fault == "reset":
            self._reset_after(body[: max(0, len(body) // 3)])
            return
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

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

    # ------------------------------------------------------------------ routing
    def route(self, method: str, raw_path: str) -> Reply:
        app = self.server.app
        if raw_path.startswith("/_sandbox/") or raw_path == "/_sandbox":
            from tests.sandbox.admin import handle_admin  # noqa: PLC0415

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
            return self.route_entity(method, segs[1:])
        if head == "identity":
            return self.route_identity(method, segs[1:])
        if (
            head == "t"
            and len(segs) >= 4
            and segs[2].lower() == "api"
            and segs[3].lower() == "odata"
        ):
            from tests.sandbox.odata import route_odata  # noqa: PLC0415

            return route_odata(self, method, segs[1], segs[4:])
        return not_found(raw_path)

    def route_entity(self, method: str, segs: list[str]) -> Reply:
        app = self.server.app
        if not segs:
            if method != "GET":
                return method_not_allowed(method)
            return json_reply(200, self.endpoints())
        if segs == ["swagger.json"]:
            return json_reply(200, instance_swagger(app.opt.site_path))
        if segs[0] == "auth" and len(segs) == 2 and method == "POST":
            if segs[1] == "logout":  # API-FACTS §6: logout skips the license queue
                return app.auth.logout(self.cookies, self.authorization)
            if segs[1] == "login":
                body = self._login_body()
                return self.limited(lambda: app.auth.login(body))
        if len(segs) < 2 or segs[0] != "Default" or segs[1] not in app.dataset.versions:
            return not_found(self.stat_path)
        return self.route_endpoint(method, segs[1], segs[2:])

    def route_identity(self, method: str, segs: list[str]) -> Reply:
        """The OAuth 2.0 / OIDC server under ``/identity`` (API-FACTS §7)."""
        auth = self.server.app.auth
        base = self.server.app.base_url
        path = "/".join(segs)
        if path == ".well-known/openid-configuration" and method == "GET":
            return json_reply(200, auth.discovery(base))
        if path == ".well-known/openid-configuration/jwks" and method == "GET":
            return json_reply(200, {"keys": []})  # id_tokens are HS256 (client secret)
        if path == "connect/authorize" and method == "GET":
            return auth.authorize_get(self.params, base)
        if path == "connect/authorize" and method == "POST":
            return auth.authorize_post(self.form(), base)
        if path == "connect/token" and method == "POST":
            form = self.form()
            delay, after = self.server.app.faults.token_delay()
            if delay and not after:
                time.sleep(delay)
                if self._client_gone():  # killed while waiting: the grant never happens
                    self.close_connection = True
                    return Reply(499, b"", None)
            reply = auth.token(form, self.authorization, base)
            if delay and after:  # the grant already happened; the client may never see it
                time.sleep(delay)
            return reply
        if path == "connect/userinfo" and method in ("GET", "POST"):
            return auth.userinfo(self.authorization)
        return not_found(self.stat_path)

    def _client_gone(self) -> bool:
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

    def _login_body(self) -> dict[str, Any]:
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "x-www-form-urlencoded" in ctype:  # API-FACTS §6: login also accepts a form
            return dict(self.form())
        try:
            body = self.json_body()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def endpoints(self) -> dict[str, Any]:
        """``GET /entity``: build version and endpoints, no auth (API-FACTS §1)."""
        app = self.server.app
        site = app.opt.site_path
        return {
            "version": {"acumaticaBuildVersion": BUILD_VERSION, "databaseVersion": BUILD_VERSION},
            "endpoints": [
                {"name": "Default", "version": v, "href": f"{site}/entity/Default/{v}/"}
                for v in app.dataset.versions
            ],
        }

    def route_endpoint(self, method: str, version: str, rest: list[str]) -> Reply:
        app = self.server.app
        tenant_param = self.params.get("company") or self.params.get("tenant") or ""
        if rest == ["swagger.json"]:
            # API-FACTS §5: ?company=<Tenant> names the tenant; otherwise the signed-in user's.
            if tenant_param.lower() != "company":
                denied = app.auth.authenticate(self.cookies, self.authorization)
                if denied is not None:
                    return denied
            return self.limited(
                lambda: Reply(200, app.dataset.swagger(version, app.base_url)),
                entity="swagger.json",
                discovery=True,
            )
        denied = app.auth.authenticate(self.cookies, self.authorization)
        if denied is not None:
            return denied
        if not rest:
            return not_found(self.stat_path)
        entity = rest[0]
        if entity not in app.dataset.entity_names(version):
            return not_found(self.stat_path)
        if method != "GET":
            # The sandbox is read-only; writes go through POST /_sandbox/mutate.
            return method_not_allowed(method)
        if rest[1:] == ["$adHocSchema"]:
            return self.limited(
                lambda: Reply(200, app.dataset.adhoc_schema(version, entity)),
                entity=entity,
                discovery=True,
            )
        keys = rest[1:]
        base = f"/entity/Default/{version}/{entity}"
        if keys:
            is_id = len(keys) == 1 and GUID_RE.match(keys[0])
            self.stat_path = f"{base}/{{id}}" if is_id else f"{base}/{{keys}}"
        app.stats.query(self.stat_path, self.params)
        return self.limited(lambda: self.data_request(version, entity, keys), entity=entity)

    def data_request(self, version: str, entity: str, keys: list[str]) -> Reply:
        app = self.server.app
        if not keys:
            blocked = app.faults.cannot_optimize(entity, self.params.get("$expand"))
            if blocked is not None:
                return blocked
            body, n = app.dataset.list_records(version, entity, self.params)
            return Reply(200, body, records=n)
        body = app.dataset.get_record(version, entity, keys, self.params)
        return Reply(200, body, records=1)

    def limited(self, work: Any, entity: str | None = None, *, discovery: bool = False) -> Reply:
        """Run ``work`` on a license processing core; data requests also get faults/latency.

        ``discovery`` requests (swagger.json, $adHocSchema) get faults only when the schedule
        says ``"include_discovery": true``.
        """
        from tests.sandbox.errors import ApiError  # noqa: PLC0415  (H1's module)

        app = self.server.app
        try:
            with app.limiter.slot():
                app.stats.enter()
                try:
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
        if kind in ("reset", "truncate"):
            self.fault = kind
            return None
        return canned(kind, app.faults.seen.get(kind, 1) - 1)

    def simulate_latency(self, records: int) -> None:
        opt = self.server.app.opt
        delay = opt.latency_ms / 1000 + records * opt.per_record_us / 1e6
        if delay > 0:
            time.sleep(delay)


def not_found(path: str) -> Reply:
    msg = f"No HTTP resource was found that matches the request URI '{path}'."
    return json_reply(404, {"message": msg})


def method_not_allowed(method: str) -> Reply:
    msg = f"The requested resource does not support http method '{method}'."
    return json_reply(405, {"message": msg}, [("Allow", "GET")])


def instance_swagger(site: str) -> dict[str, Any]:
    """``GET /entity/swagger.json``: the instance API (sign-in, sign-out, version), API-FACTS §5."""
    ok = {"204": {"description": "No Content"}}
    return {
        "openapi": "3.0.1",
        "info": {"title": "Acumatica ERP Web API", "version": BUILD_VERSION},
        "servers": [{"url": f"{site}/entity"}],
        "paths": {
            "/auth/login": {"post": {"operationId": "Auth_Login", "responses": ok}},
            "/auth/logout": {"post": {"operationId": "Auth_Logout", "responses": ok}},
            "/": {
                "get": {"operationId": "Version_Get", "responses": {"200": {"description": "OK"}}}
            },
        },
    }
