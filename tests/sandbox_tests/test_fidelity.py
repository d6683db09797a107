"""Small fidelity fixes found by running other clients against the sandbox (issue 11, part 9).

``Connection: close`` on every route (RFC 9112 §9.6) and the legacy OData paths of instances
before 2024 R2 behind ``--legacy-odata`` (api.md §8).
"""

from __future__ import annotations

import base64
import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from tests.support import Sandbox, password_grant

EDM4 = "{http://docs.oasis-open.org/odata/ns/edm}"
EDM3 = "{http://schemas.microsoft.com/ado/2009/11/edm}"
EDMX3 = "{http://schemas.microsoft.com/ado/2007/06/edmx}"
ARGS = ("--seed", "3", "--records", "40", "--burst-size", "0")


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    """Today's instance: 2024 R2 OData paths (the default)."""
    s = Sandbox(*ARGS)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def legacy() -> Iterator[Sandbox]:
    """An instance before 2024 R2: ``--legacy-odata``."""
    s = Sandbox(*ARGS, "--legacy-odata")
    yield s
    s.stop()


def basic_auth(box: Sandbox) -> tuple[str, str]:
    creds = box.credentials()
    return creds["username"], creds["password"]


# ---------------------------------------------------------------- raw HTTP


def request_bytes(box: Sandbox, method: str, path: str, headers: dict[str, str]) -> bytes:
    body = headers.pop("_body", "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlsplit(box.root).netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def read_response(stream: Any) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response framed by ``Content-Length`` (the sandbox always sends it)."""
    status_line = stream.readline().decode("latin-1")
    assert status_line.startswith("HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := stream.readline().decode("latin-1").rstrip("\r\n")) != "":
        name, _, value = line.partition(":")
        assert name.lower() not in headers or name.lower() == "set-cookie", line
        headers[name.lower()] = value.strip()
    body = stream.read(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def connect(box: Sandbox) -> socket.socket:
    split = urlsplit(box.root)
    return socket.create_connection((split.hostname, split.port), timeout=10)


def basic_header(box: Sandbox) -> str:
    user, password = basic_auth(box)
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def routes(box: Sandbox, *, odata: str) -> list[tuple[str, str, dict[str, str], int]]:
    """(method, path, headers, status) of one request per route family."""
    auth = {"Authorization": basic_header(box)}
    user, password = basic_auth(box)
    login = json.dumps({"name": user, "password": password, "tenant": "Company"})
    return [
        ("GET", "/entity", {}, 200),  # REST, no auth
        ("POST", "/entity/auth/login", {"Content-Type": "application/json", "_body": login}, 204),
        ("GET", "/entity/Default/24.200.001/Customer?$top=1", {}, 401),  # REST error
        ("GET", odata, dict(auth), 200),  # OData
        ("GET", "/t/Company/api/odata/gi/NoSuchInquiry", dict(auth), 404),
        ("GET", "/identity/.well-known/openid-configuration", {}, 200),  # identity
        ("POST", "/identity/connect/token", {"_body": "grant_type=nope"}, 400),
        ("GET", "/_sandbox/stats", {}, 200),  # admin
        ("GET", "/no/such/route", {}, 404),
    ]


# ---------------------------------------------------------------- Connection: close


@pytest.mark.parametrize("index", range(9))
@pytest.mark.parametrize("connection", ["close", "Close", "TE, close"])
def test_connection_close_on_every_route(sbx: Sandbox, index: int, connection: str) -> None:
    """RFC 9112 §9.6: the answer says ``Connection: close`` and the server closes after it."""
    method, path, headers, status = routes(sbx, odata="/t/Company/api/odata/gi/SalesOrders")[index]
    headers["Connection"] = connection
    with connect(sbx) as sock, sock.makefile("rb") as stream:
        sock.sendall(request_bytes(sbx, method, path, headers))
        got, head, body = read_response(stream)
        assert got == status, body
        assert head["connection"] == "close"
        assert len(body) == int(head["content-length"])
        assert stream.read(1) == b""  # EOF right after the body, no timeout
    if path == "/entity/auth/login":
        sbx.admin("POST", "reset")  # free the seat


def test_connection_close_on_legacy_odata(legacy: Sandbox) -> None:
    path = "/odata/Company/SalesOrders?$top=2"
    headers = {"Authorization": basic_header(legacy), "Connection": "close"}
    with connect(legacy) as sock, sock.makefile("rb") as stream:
        sock.sendall(request_bytes(legacy, "GET", path, headers))
        status, head, body = read_response(stream)
        assert status == 200, body
        assert head["connection"] == "close"
        assert len(json.loads(body)["value"]) == 2
        assert stream.read(1) == b""


def test_keep_alive_without_close(sbx: Sandbox) -> None:
    """Without ``Connection: close`` one connection carries many requests, and stays open."""
    paths = [p for m, p, _h, _s in routes(sbx, odata="/t/Company/api/odata/gi") if m == "GET"]
    auth = {"Authorization": basic_header(sbx)}
    with connect(sbx) as sock, sock.makefile("rb") as stream:
        for path in paths:
            sock.sendall(request_bytes(sbx, "GET", path, dict(auth)))
            _status, head, body = read_response(stream)
            assert "connection" not in head, path
            assert len(body) == int(head["content-length"])
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # still open: nothing to read, no EOF (the reader holds nothing)
        # The last request of a kept-alive connection may ask to close it.
        sock.settimeout(10)
        sock.sendall(request_bytes(sbx, "GET", "/entity", {"Connection": "close"}))
        status, head, _body = read_response(stream)
        assert (status, head["connection"]) == (200, "close")
        assert stream.read(1) == b""


def test_http10_closes_unless_keep_alive(sbx: Sandbox) -> None:
    """HTTP/1.0 (RFC 9112 §9.3): close by default, and say so; keep-alive when asked."""
    host = urlsplit(sbx.root).netloc
    with connect(sbx) as sock, sock.makefile("rb") as stream:
        sock.sendall(f"GET /entity HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        _status, head, _body = read_response(stream)
        assert head["connection"] == "close"
        assert stream.read(1) == b""
    with connect(sbx) as sock, sock.makefile("rb") as stream:
        for _ in range(2):
            raw = f"GET /entity HTTP/1.0\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n"
            sock.sendall(raw.encode())
            status, head, _body = read_response(stream)
            assert (status, head["connection"]) == (200, "keep-alive")


# ---------------------------------------------------------------- legacy OData paths


def get(box: Sandbox, path: str, auth: Any = None, **params: str) -> requests.Response:
    if auth is None:
        auth = basic_auth(box)
    return requests.get(f"{box.url}{path}", params=params, auth=auth, timeout=30)


CURRENT = [
    "/t/Company/api/odata/gi",
    "/t/Company/api/odata/gi/SalesOrders",
    "/t/Company/api/odata/dac",
]
LEGACY = [
    "/odata/Company",
    "/odata/Company/SalesOrders",
    "/odatav4/Company",
    "/odatav4/Company/$metadata",
]


@pytest.mark.parametrize("path", CURRENT + LEGACY)
def test_each_generation_has_its_own_paths(sbx: Sandbox, legacy: Sandbox, path: str) -> None:
    """api.md §8: a 2024 R2+ instance has only the new paths, an older one only the old."""
    now, old = get(sbx, path), get(legacy, path)
    if path in CURRENT:
        assert (now.status_code, old.status_code) == (200, 404)
    else:
        assert (now.status_code, old.status_code) == (404, 200)
    missing = old if path in CURRENT else now
    assert "No HTTP resource was found" in missing.json()["message"]


def test_legacy_gi_service_document_and_metadata(legacy: Sandbox) -> None:
    r = get(legacy, "/odata/Company")
    assert r.headers["DataServiceVersion"].startswith("3.0")
    assert "odata=minimalmetadata" in r.headers["Content-Type"]
    doc = r.json()
    assert "@odata.context" not in doc
    assert doc["odata.metadata"] == f"{legacy.url}/odata/Company/$metadata"
    assert {"name": "SalesOrders", "url": "SalesOrders"} in doc["value"]
    meta = get(legacy, "/odata/Company/$metadata")
    assert meta.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(meta.content)  # noqa: S314  (our own loopback server)
    assert (root.tag, root.get("Version")) == (f"{EDMX3}Edmx", "1.0")
    types = {t.get("Name"): t for t in root.iter(f"{EDM3}EntityType")}
    assert {v["name"] for v in doc["value"]} == set(types)
    props = {p.get("Name"): p.get("Type") for p in types["SalesOrders"].iter(f"{EDM3}Property")}
    assert props["LastModifiedOn"] == "Edm.DateTime"  # no offset in v3 (v4: DateTimeOffset)
    assert props["OrderTotal"] == "Edm.Decimal"


def v3_rows(box: Sandbox, name: str, auth: Any = None, **params: str) -> list[dict[str, Any]]:
    r = get(box, f"/odata/Company/{quote(name)}", auth, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"odata.metadata", "value"}
    assert body["odata.metadata"] == f"{box.url}/odata/Company/$metadata#{name}"
    return body["value"]


def test_legacy_gi_rows_are_the_current_gi_rows(sbx: Sandbox, legacy: Sandbox) -> None:
    """Same inquiry code: same rows, v3 JSON light around them."""
    now = get(sbx, "/t/Company/api/odata/gi/SalesOrders").json()["value"]
    assert v3_rows(legacy, "SalesOrders") == now
    page = v3_rows(legacy, "SalesOrders", **{"$skip": "3", "$top": "4", "$orderby": "OrderNbr"})
    assert page == sorted(now, key=lambda r: r["OrderNbr"])[3:7]
    sel = v3_rows(legacy, "SalesOrders", **{"$select": "OrderNbr,Status", "$top": "2"})
    assert [set(r) for r in sel] == [{"OrderNbr", "Status"}] * 2


def test_legacy_gi_filter_v3_literals(legacy: Sandbox) -> None:
    every = v3_rows(legacy, "SalesOrders")
    got = v3_rows(
        legacy, "SalesOrders", **{"$filter": "LastModifiedOn ge datetime'2024-01-01T00:00:00'"}
    )
    assert got == [r for r in every if r["LastModifiedOn"] >= "2024-01-01T00:00:00"]
    cut = sorted(r["LastModifiedOn"] for r in every)[len(every) // 2]
    got = v3_rows(legacy, "SalesOrders", **{"$filter": f"LastModifiedOn lt datetime'{cut}'"})
    assert got == [r for r in every if r["LastModifiedOn"] < cut]
    assert 0 < len(got) < len(every)
    names = v3_rows(legacy, "CustomerList", **{"$filter": "substringof('a',CustomerName)"})
    assert names
    assert all("a" in r["CustomerName"] for r in names)


@pytest.mark.parametrize(
    ("flt", "fragment"),
    [
        ("LastModifiedOn ge 2024-01-01T00:00:00", "Syntax error"),  # bare literal: v4 only
        ("contains(CustomerName,'a')", "Unknown function 'contains'"),  # v4 only
        ("Nope eq 1", "Nope"),
    ],
)
def test_legacy_gi_refuses_v4_syntax(legacy: Sandbox, flt: str, fragment: str) -> None:
    r = get(legacy, "/odata/Company/CustomerList", **{"$filter": flt})
    assert r.status_code == 400
    assert r.headers["DataServiceVersion"].startswith("3.0")
    message = r.json()["odata.error"]["message"]
    assert message["lang"] == "en-US"
    assert fragment in message["value"]


def test_legacy_auth_tenant_and_unknown_names(legacy: Sandbox) -> None:
    r = get(legacy, "/odata/Company/SalesOrders", auth=("admin", "wrong"))
    assert r.status_code == 401
    assert "Basic" in r.headers["WWW-Authenticate"]
    assert requests.get(f"{legacy.url}/odatav4/Company", timeout=30).status_code == 401
    token = password_grant(legacy, scope="api")["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for path in ("/odata/Company/CustomerList", "/odatav4/Company"):
        assert requests.get(f"{legacy.url}{path}", headers=bearer, timeout=30).status_code == 200
    requests.post(f"{legacy.url}/entity/auth/logout", headers=bearer, timeout=30)
    assert get(legacy, "/odata/Other/SalesOrders").status_code == 404
    missing = get(legacy, "/odata/Company/NoSuchInquiry")
    assert missing.status_code == 404
    assert "NoSuchInquiry" in missing.json()["odata.error"]["message"]["value"]
    assert get(legacy, "/odatav4/Company/NoSuchDac/px.GetDeletedRecords()").status_code == 404


def test_legacy_dac_service(legacy: Sandbox) -> None:
    """``/odatav4/{tenant}``: the DAC service (OData v4) at its old path."""
    base = f"{legacy.url}/odatav4/Company"
    r = get(legacy, "/odatav4/Company")
    assert r.headers["OData-Version"] == "4.0"
    doc = r.json()
    assert doc["@odata.context"] == f"{base}/$metadata"
    names = [v["name"] for v in doc["value"]]
    assert "PX_Objects_AR_Customer" in names
    root = ET.fromstring(get(legacy, "/odatav4/Company/$metadata").content)  # noqa: S314
    assert {t.get("Name") for t in root.iter(f"{EDM4}EntityType")} == set(names)
    gone = legacy.admin("POST", "mutate", {"entity": "Customer", "op": "delete", "count": 2})
    r = get(legacy, "/odatav4/Company/Customer/px.GetDeletedRecords()")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"].startswith(f"{base}/$metadata#")
    assert {v["RefNoteID"] for v in body["value"]} >= set(gone["ids"])


def test_legacy_odata_under_a_site_path(sandbox_factory: Callable[..., Sandbox]) -> None:
    box = sandbox_factory("--records", "10", "--site-path", "/AcumaticaERP", "--legacy-odata")
    assert box.url.endswith("/AcumaticaERP")
    assert v3_rows(box, "CustomerList", **{"$top": "2"})  # odata.metadata under the site path
    by_title = get(box, "/odata/Company/Customer List", **{"$top": "2"}).json()
    assert by_title["odata.metadata"].endswith("/$metadata#CustomerList")  # display name
    doc = get(box, "/odatav4/Company").json()
    assert doc["@odata.context"] == f"{box.url}/odatav4/Company/$metadata"
    assert requests.get(f"{box.root}/odata/Company", timeout=30).status_code == 404
