"""The sandbox's own admin API under ``/_sandbox/`` (not part of Acumatica; see README.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.sandbox import Reply, json_reply
from tests.sandbox.clock import iso_z
from tests.sandbox.errors import ApiError
from tests.sandbox.faults import FaultConfigError, parse_config

if TYPE_CHECKING:
    from tests.sandbox.server import Handler


def _bad(message: str) -> Reply:
    return json_reply(400, {"error": message})


def handle_admin(handler: Handler, method: str, path: str) -> Reply:
    """Dispatch ``/_sandbox/<path>``."""
    app = handler.server.app
    path = path.strip("/")
    try:
        body: Any = handler.json_body() if method == "POST" else None
    except ValueError:
        return _bad("body is not JSON")
    try:
        if method == "GET" and path == "credentials":
            return json_reply(200, app.auth.credentials())
        if method == "GET" and path == "stats":
            return json_reply(200, stats(handler))
        if method == "GET" and path.startswith("records/dac/"):
            truth = app.dac.ground_truth(path[len("records/dac/") :])
            if truth is None:
                return json_reply(404, {"error": f"unknown DAC {path[len('records/dac/') :]!r}"})
            return json_reply(200, truth)
        if method == "GET" and path.startswith("records/"):
            return json_reply(200, app.dataset.ground_truth(path[len("records/") :]))
        if method == "POST" and path == "mutate":
            if not isinstance(body, dict):
                return _bad("mutate needs a JSON object")
            return json_reply(200, app.dataset.mutate(body))
        if path == "clock" and method in ("GET", "POST"):
            if method == "POST":
                seconds = float((body or {}).get("advance_seconds", 0))
                if seconds < 0:
                    return _bad("advance_seconds must be >= 0")
                app.clock.advance(seconds)
            return json_reply(
                200, {"now": iso_z(app.clock.now()), "offset_seconds": app.clock.offset}
            )
        if path == "faults" and method in ("GET", "POST"):
            if method == "POST":
                conf = parse_config(body or {})
                seed = conf.pop("seed", None)
                app.faults.configure(conf, None if seed is None else int(seed))
            return json_reply(200, app.faults.stats())
        if method == "POST" and path == "reset":
            app.reset()
            return json_reply(200, {"reset": True})
        if method == "POST" and path == "revoke":
            what = str((body or {}).get("what", "all"))
            return json_reply(200, app.auth.revoke(what))
    except (FaultConfigError, ValueError, TypeError, KeyError) as exc:
        return _bad(str(exc))
    except ApiError as err:
        return json_reply(err.status, err.body)
    return json_reply(404, {"error": f"unknown admin route {method} /_sandbox/{path}"})


def stats(handler: Handler) -> dict[str, Any]:
    app = handler.server.app
    out = app.stats.snapshot()
    out.update(app.auth.stats())
    out["license"] = app.limiter.stats()
    out.update(app.sessions.stats())  # max_parallel_in_one_session, session_lines (api.md §6)
    out["faults"] = app.faults.stats()["injected"]
    out.update(app.failing.stats())  # failed_logins, locked_out (issue 11)
    out["clock"] = iso_z(app.clock.now())
    return out
