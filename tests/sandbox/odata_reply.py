"""OData reply helpers shared by the GI and DAC services (api.md §8): framing and error bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.sandbox import Reply, json_reply
from tests.sandbox.odata_query import ODataError

ODATA_JSON = "application/json; odata.metadata=minimal; charset=utf-8"
ODATA_HEADERS = [("OData-Version", "4.0")]
# api.md §8, legacy GI service (OData v3, WCF Data Services style): JSON light, minimal metadata
V3_JSON = "application/json;odata=minimalmetadata;streaming=true;charset=utf-8"
V3_HEADERS = [("DataServiceVersion", "3.0;")]


def odata_error(
    status: int, message: str, headers: list[tuple[str, str]] | None = None, *, v3: bool = False
) -> Reply:
    """An OData error body: v4 ``{"error": …}``, or v3 JSON light ``{"odata.error": …}``."""
    if v3:  # OData v3 JSON: the message is a {lang, value} object (api.md §8: GI OData v3)
        body = {"odata.error": {"code": "", "message": {"lang": "en-US", "value": message}}}
        return json_reply(status, body, [*(headers or []), *V3_HEADERS])
    return json_reply(status, {"error": {"code": "", "message": message}}, headers)


def guard(work: Callable[[], Reply], *, v3: bool = False) -> Reply:
    """Run ``work``; an ``ODataError`` becomes the service's error body."""
    try:
        return work()
    except ODataError as err:
        if v3:
            return odata_error(err.status, err.message, v3=True)
        return odata_error(err.status, err.message, ODATA_HEADERS)


def xml_reply(text: str | bytes, *, v3: bool = False) -> Reply:
    headers = V3_HEADERS if v3 else ODATA_HEADERS
    body = text.encode() if isinstance(text, str) else text
    return Reply(200, body, "application/xml; charset=utf-8", list(headers))


def reply_v3(status: int, obj: Any, records: int = 0) -> Reply:
    reply = json_reply(status, obj, list(V3_HEADERS))
    reply.content_type = V3_JSON
    reply.records = records
    return reply


def reply(status: int, obj: Any, records: int = 0) -> Reply:
    out = json_reply(status, obj, list(ODATA_HEADERS))
    out.content_type = ODATA_JSON
    out.records = records
    return out


def empty_body() -> Reply:
    """api.md §8: a GI filter on a formula column answers 200 with an EMPTY body (not
    ``"value": []``). Headers as for a normal answer (UNVERIFIED)."""
    return Reply(200, b"", ODATA_JSON, list(ODATA_HEADERS))
