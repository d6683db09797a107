"""``python -m tests.sandbox``: run the Acumatica sandbox until SIGTERM/SIGINT.

The first stdout line is the base URL (instance URL incl. site path); logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from tests.sandbox import contract5, failing, odata_dac, stamps
from tests.sandbox.auth import COOKIE_IDLE_SECONDS, OAUTH_IDLE_SECONDS, AuthOptions
from tests.sandbox.faults import FaultConfigError, parse_config

DESCRIPTION = """\
A local Acumatica ERP instance for tests, the demo and benchmarks: contract-based REST
(Default/23.200.001 and 24.200.001), cookie login with API seats, OAuth 2.0/OIDC with rotating
refresh tokens, OData, license limits and a seeded fault schedule. Binds 127.0.0.1 only.
Prints the base URL as the first stdout line; the admin API is at <root>/_sandbox/.
"""

EPILOG = """\
Fault JSON keys (percentages 0-100 of data requests): http_500, http_429, html_error, reset,
truncate, slow (+ slow_ms), revoke, http_401, trickle (+ trickle_ms), gzip_bomb (+ bomb_mb);
retry_after (the Retry-After of http_429 answers); script (list of kinds for the next requests),
entities, include_discovery, skip_first, max_faults, optimization ({"Entity": ["ExpandName"]}),
token_delay_ms, token_delay_after, seed. Example:
  python -m tests.sandbox --port 0 --faults '{"http_500": 5, "reset": 2}' --fault-seed 3
See tests/sandbox/README.md.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.sandbox",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    g = p.add_argument_group("server")
    g.add_argument(
        "--port",
        type=int,
        default=8080,
        help="TCP port on 127.0.0.1; 0 = pick a free one (default 8080)",
    )
    g.add_argument(
        "--site-path",
        default="",
        help='instance site path, e.g. "/AcumaticaERP" (default: web root)',
    )
    g.add_argument(
        "--verbose", action="store_true", help="log every request (method, path, status) to stderr"
    )
    g.add_argument(
        "--legacy-odata",
        action="store_true",
        help="OData at the paths of instances before 2024 R2: /odata/<tenant>/<GI> (OData v3) "
        "and /odatav4/<tenant>/<DAC>; the /t/<tenant>/api/odata paths then answer 404 "
        "(default: the 2024 R2 paths only; api.md §8)",
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--seed", type=int, default=1, help="seed of the generated data and client id (default 1)"
    )
    g.add_argument(
        "--records",
        type=int,
        default=500,
        help="records per core entity; others scale from it (default 500)",
    )
    g.add_argument("--big-entity", default=None, help="entity to make huge, e.g. SalesOrder")
    g.add_argument(
        "--big-records", type=int, default=0, help="record count of --big-entity, e.g. 1000000"
    )
    g.add_argument(
        "--burst-size",
        type=int,
        default=3000,
        help="records sharing one identical change timestamp (default 3000)",
    )
    g.add_argument(
        "--tz",
        default="America/New_York",
        help="tenant time zone of returned date-times (default America/New_York, not UTC)",
    )
    g.add_argument(
        "--writers",
        type=float,
        default=0.0,
        metavar="PER_SECOND",
        help="background inserts/updates/deletes per second (default 0)",
    )
    g.add_argument(
        "--deleted-keep-days",
        type=float,
        default=10.0,
        help="days px.GetDeletedRecords() keeps deletions (default 10, SM207010)",
    )
    g = p.add_argument_group("sessions and OAuth")
    g.add_argument(
        "--api-seats",
        type=int,
        default=2,
        help="API-user seats (cookie + OAuth sessions); more → 'API Login Limit' (default 2)",
    )
    g.add_argument(
        "--session-idle-seconds",
        type=float,
        default=COOKIE_IDLE_SECONDS,
        help="idle time (virtual clock) after which a cookie session frees its seat "
        f"(default {COOKIE_IDLE_SECONDS:g}; Acumatica's global timeout is often 1800)",
    )
    g.add_argument(
        "--oauth-session-idle-seconds",
        type=float,
        default=OAUTH_IDLE_SECONDS,
        help="the same for sessions opened with a bearer token "
        f"(default {OAUTH_IDLE_SECONDS:g}; Acumatica's OAuth guide says wait 3600)",
    )
    g.add_argument(
        "--parallel-in-session",
        action="store_true",
        help="process the requests of one session in parallel (the sandbox before issue 11); "
        "default: one at a time in arrival order, like Acumatica (api.md §6)",
    )
    g.add_argument(
        "--access-token-ttl",
        type=float,
        default=3600.0,
        help="access-token lifetime in seconds (default 3600)",
    )
    g.add_argument(
        "--refresh-lifetime-days",
        type=float,
        default=30.0,
        help="absolute lifetime of a refresh-token chain (default 30)",
    )
    g.add_argument(
        "--sliding-days",
        type=float,
        default=0.0,
        help="sliding refresh-token lifetime; 0 = absolute mode (default 0)",
    )
    g.add_argument(
        "--auto-approve",
        metavar="USER",
        default=None,
        help="skip the sign-in/consent page and approve as USER at once",
    )
    g.add_argument(
        "--redirect-port",
        type=int,
        default=8765,
        help="port of the registered loopback redirect URIs (default 8765)",
    )
    g = p.add_argument_group("license limits and latency")
    g.add_argument(
        "--max-concurrent",
        type=int,
        default=4,
        help="API processing cores (concurrent requests); 0 = unlimited (default 4)",
    )
    g.add_argument(
        "--per-minute",
        type=int,
        default=0,
        help="requests per minute budget; slow-down past half; 0 = unlimited (default 0)",
    )
    g.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="base latency added to every data request (default 0)",
    )
    g.add_argument(
        "--per-record-us",
        type=float,
        default=0.0,
        help="extra latency per returned record in microseconds (default 0)",
    )
    g = p.add_argument_group("faults")
    g.add_argument(
        "--faults", default="", metavar="JSON", help="fault schedule as JSON (keys below)"
    )
    g.add_argument(
        "--fault-seed", type=int, default=0, help="seed of the fault schedule (default 0)"
    )
    g.add_argument(
        "--token-delay-ms",
        type=int,
        default=0,
        help="delay every /identity/connect/token answer (default 0)",
    )
    g.add_argument(
        "--login-delay-ms",
        type=int,
        default=0,
        help="delay every /entity/auth/login answer, after its session opened (default 0)",
    )
    failing.add_arguments(p)
    contract5.add_arguments(p)  # issue 11: --endpoints
    stamps.add_arguments(p)  # issue 11: --stamp-precision, --detail-edits, …
    odata_dac.add_arguments(p)  # issue 13: --untracked-deletions, --big-metadata
    del a
    return p


def options_from_args(ns: argparse.Namespace) -> Any:
    from tests.sandbox.app import Options  # noqa: PLC0415

    site = ns.site_path.strip()
    site = ("/" + site.strip("/")) if site.strip("/") else ""
    return Options(
        port=ns.port,
        seed=ns.seed,
        records=ns.records,
        big_entity=ns.big_entity,
        big_records=ns.big_records,
        tz=ns.tz,
        site_path=site,
        max_concurrent=ns.max_concurrent,
        per_minute=ns.per_minute,
        latency_ms=ns.latency_ms,
        per_record_us=ns.per_record_us,
        writers=ns.writers,
        faults=parse_config(ns.faults),
        fault_seed=ns.fault_seed,
        token_delay_ms=ns.token_delay_ms,
        burst_size=ns.burst_size,
        deleted_keep_days=ns.deleted_keep_days,
        verbose=ns.verbose,
        serialise_sessions=not ns.parallel_in_session,
        auth=AuthOptions(
            api_seats=ns.api_seats,
            session_idle_seconds=ns.session_idle_seconds,
            oauth_session_idle_seconds=ns.oauth_session_idle_seconds,
            access_token_ttl=ns.access_token_ttl,
            refresh_lifetime_days=ns.refresh_lifetime_days,
            sliding_days=ns.sliding_days,
            auto_approve=ns.auto_approve,
            redirect_port=ns.redirect_port,
            login_delay_ms=ns.login_delay_ms,
        ),
        failing=failing.options_from_args(ns),
        endpoints=ns.endpoints,
        stamps=stamps.options_from_args(ns),
        legacy_odata=ns.legacy_odata,
        type_drift=ns.type_drift,
        untracked_deletions=ns.untracked_deletions,
        untracked_status=ns.untracked_status,
        big_metadata=ns.big_metadata,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        options = options_from_args(ns)
    except (FaultConfigError, ValueError) as exc:
        parser.error(f"--faults: {exc}")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s sandbox %(levelname)s %(message)s",
    )
    from tests.sandbox.app import App  # noqa: PLC0415
    from tests.sandbox.server import SandboxServer  # noqa: PLC0415

    app = App(options)
    server = SandboxServer(app)
    sys.stdout.write(app.base_url + "\n")
    sys.stdout.flush()
    logging.getLogger("tests.sandbox").info(
        "serving %s (admin API at %s/_sandbox/)",
        app.base_url,
        "/".join(app.base_url.split("/")[:3]),
    )

    def stop(signum: int, frame: object) -> None:
        app.stop_event.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app.start_writers()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.stop_event.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
