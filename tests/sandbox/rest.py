"""Contract-based REST routes under ``/entity`` (api.md §1, §3-§6): endpoints, sign-in, data."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from tests.sandbox import Reply, contract5, failing, json_reply, method_not_allowed, not_found

if TYPE_CHECKING:
    from tests.sandbox.server import Handler

BUILD_VERSION = "24.212.0011"  # a 2024 R2 build number (GET /entity, api.md §1)
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def route_entity(h: Handler, method: str, segs: list[str]) -> Reply:
    """``/entity[/…]``: version info, instance swagger, login/logout, then the endpoints."""
    app = h.server.app
    if not segs:
        if method != "GET":
            return method_not_allowed(method)
        return json_reply(200, endpoints(h))
    if segs == ["swagger.json"]:
        return json_reply(200, instance_swagger(app.opt.site_path))
    if segs[0] == "auth" and len(segs) == 2 and method == "POST":
        if segs[1] == "logout":  # api.md §6: logout skips the license queue
            return h.logout()
        if segs[1] == "login":
            body = login_body(h)
            return h.limited(lambda: failing.login(app, body))  # api.md §6: lockout
    if len(segs) < 2 or segs[0] != "Default" or segs[1] not in app.dataset.versions:
        return not_found(h.stat_path)
    return route_endpoint(h, method, segs[1], segs[2:])


def login_body(h: Handler) -> dict[str, Any]:
    ctype = (h.headers.get("Content-Type") or "").lower()
    if "x-www-form-urlencoded" in ctype:  # api.md §6: login also accepts a form
        return dict(h.form())
    try:
        body = h.json_body()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def endpoints(h: Handler) -> dict[str, Any]:
    """``GET /entity``: build version and endpoints, no auth (api.md §1)."""
    app = h.server.app
    site = app.opt.site_path
    return {
        "version": {"acumaticaBuildVersion": BUILD_VERSION, "databaseVersion": BUILD_VERSION},
        "endpoints": [
            {"name": "Default", "version": v, "href": f"{site}/entity/Default/{v}/"}
            for v in app.dataset.versions
        ],
    }


def route_endpoint(h: Handler, method: str, version: str, rest: list[str]) -> Reply:
    """``/entity/Default/{version}/…``: swagger.json, $adHocSchema, lists and single records."""
    app = h.server.app
    tenant_param = h.params.get("company") or h.params.get("tenant") or ""
    if rest == ["swagger.json"]:
        # api.md §5: ?company=<Tenant> names the tenant; otherwise the signed-in user's.
        if tenant_param.lower() != "company":
            denied = h.authenticate()
            if denied is not None:
                return denied
        return h.limited(
            lambda: Reply(200, contract5.swagger(app.dataset, version, app.base_url)),
            entity="swagger.json",
            discovery=True,
        )
    denied = h.authenticate()
    if denied is not None:
        return denied
    if not rest:
        return not_found(h.stat_path)
    entity = rest[0]
    if entity not in app.dataset.entity_names(version):
        return not_found(h.stat_path)
    gate = app.failing.entity_gate(entity)  # api.md §9: 403 / PXSetupNotEntered, every request
    if gate is not None:
        return gate
    if method != "GET":
        # The sandbox is read-only; writes go through POST /_sandbox/mutate.
        return method_not_allowed(method)
    if rest[1:] == ["$adHocSchema"]:
        return h.limited(
            lambda: Reply(200, contract5.adhoc_schema(app.dataset, version, entity)),
            entity=entity,
            discovery=True,
        )
    keys = rest[1:]
    base = f"/entity/Default/{version}/{entity}"
    if keys:
        is_id = len(keys) == 1 and GUID_RE.match(keys[0])
        h.stat_path = f"{base}/{{id}}" if is_id else f"{base}/{{keys}}"
    app.stats.query(h.stat_path, h.params)
    return h.limited(
        lambda: contract5.data_request(h, version, entity, keys, data_request),  # api.md §1.1
        entity=entity,
    )


def data_request(h: Handler, version: str, entity: str, keys: list[str]) -> Reply:
    app = h.server.app
    if not keys:
        scripted = scripted_answer(h, entity)
        if scripted is not None:
            return scripted
        blocked = app.faults.cannot_optimize(entity, h.params.get("$expand"))
        if blocked is None:
            blocked = app.failing.list_gate(entity, h.params)  # api.md §4: $select
        if blocked is not None:
            return blocked
        body, n = app.dataset.list_records(version, entity, h.params)
        return Reply(200, type_drift(h, entity, unstable_ids(h, entity, body)), records=n)
    session = failing.request_session(h)
    keys = app.failing.reveal_keys(entity, session, keys)
    body = app.dataset.get_record(version, entity, keys, h.params)
    return Reply(200, type_drift(h, entity, unstable_ids(h, entity, body)), records=1)


def scripted_answer(h: Handler, entity: str) -> Reply | None:
    """Faults ``answers``: every list GET of the entity answers this JSON, with 200.

    For answers no generated record has: captured pages of real instances (a ``$select``
    without the change field), records without ``id``, arrays of numbers (api.md §3, §9).
    """
    answers = h.server.app.faults.config.get("answers") or {}
    if entity not in answers:
        return None
    answer = answers[entity]
    count = len(answer) if isinstance(answer, list) else 0
    return Reply(200, json.dumps(answer).encode(), records=count)


def type_drift(h: Handler, entity: str, body: bytes) -> bytes:
    """``--type-drift E.Field``: integer values of the field served as zero-padded text.

    api.md §3: older records on a newer endpoint carry values of another type than the
    document says (Manufacturing times as ``"0100"`` in an IntValue field).
    """
    fields = [
        f for e, _, f in (d.partition(".") for d in h.server.app.opt.type_drift) if e == entity
    ]
    if not fields:
        return body
    data = _DRIFT_DECODER.decode(body)
    for record in data if isinstance(data, list) else [data]:
        for name in fields:
            wrapped = record.get(name) if isinstance(record, dict) else None
            if isinstance(wrapped, dict) and type(wrapped.get("value")) is int:
                wrapped["value"] = f"{wrapped['value']:04d}"
    return _DRIFT_ENCODER.encode(data)


_DRIFT_DECODER = msgspec.json.Decoder(float_hook=Decimal)  # decimals kept exact
_DRIFT_ENCODER = msgspec.json.Encoder(decimal_format="number")


def unstable_ids(h: Handler, entity: str, body: bytes) -> bytes:
    """``--unstable-ids``: records without a NoteID get a per-session id (api.md §3)."""
    app = h.server.app
    if entity not in app.failing.opt.unstable_ids:
        return body
    return app.failing.hide_ids(entity, failing.request_session(h), body)


def instance_swagger(site: str) -> dict[str, Any]:
    """``GET /entity/swagger.json``: the instance API (sign-in, sign-out, version), api.md §5."""
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
