"""OData v4 for Generic Inquiries and deleted-record tracking (API-FACTS §8, §10)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.sandbox import Reply, json_reply

if TYPE_CHECKING:
    from tests.sandbox.server import Handler


def route_odata(handler: Handler, method: str, tenant: str, segs: list[str]) -> Reply:
    return json_reply(404, {"error": {"code": "", "message": "not implemented yet"}})
