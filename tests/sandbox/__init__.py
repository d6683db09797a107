"""Acumatica sandbox: a local, deterministic and deliberately hostile Acumatica ERP server.

Run it with ``python -m tests.sandbox --port 0`` (see ``--help`` and README.md). This module
holds the tiny response helpers shared by the server modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Reply:
    """One HTTP response, built by a route handler and written by the server."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0  # records rendered (drives --per-record-us)


def json_reply(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    """A compact JSON reply (Acumatica sends compact JSON on the wire)."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return Reply(status, body, JSON_TYPE, list(headers or []))


def error_body(
    exception_message: str,
    exception_type: str = "PX.Data.PXException",
    message: str = "An error has occurred.",
) -> dict[str, Any]:
    """Acumatica's ASP.NET ``HttpError`` JSON body (api.md §9)."""
    return {
        "message": message,
        "exceptionMessage": exception_message,
        "exceptionType": exception_type,
        "stackTrace": None,
    }


def error_reply(
    status: int,
    exception_message: str,
    exception_type: str = "PX.Data.PXException",
    headers: list[tuple[str, str]] | None = None,
) -> Reply:
    """A §9 JSON error reply."""
    return json_reply(status, error_body(exception_message, exception_type), headers)


NOT_LOGGED_IN = {"message": "You are not logged in."}  # api.md §9: 401 body text is a GUESS


def not_found(path: str) -> Reply:
    """Acumatica's 404 for an unknown route, endpoint version or entity (ASP.NET Web API)."""
    msg = f"No HTTP resource was found that matches the request URI '{path}'."
    return json_reply(404, {"message": msg})


def method_not_allowed(method: str) -> Reply:
    msg = f"The requested resource does not support http method '{method}'."
    return json_reply(405, {"message": msg}, [("Allow", "GET")])
