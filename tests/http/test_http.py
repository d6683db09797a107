"""HTTP behaviour: retries, Retry-After, 401, API Login Limit, error messages (stub server)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
import requests

from tap_acumatica.errors import AcumaticaAPIError, AuthError, ConfigError, LoginLimitError
from tap_acumatica.http.client import AcumaticaClient
from tap_acumatica.http.messages import html_to_text
from tap_acumatica.settings import check_base_url
from tests._taprun import discover, run_tap, select_fields, tap_config

Reply = tuple[int, dict[str, str], bytes]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


def _error(status: int, message: str) -> Reply:
    return _json(
        status,
        {
            "message": "An error has occurred.",
            "exceptionMessage": message,
            "exceptionType": "PX.Data.PXException",
            "stackTrace": "   at PX.Api...",
        },
    )


class Stub:
    """A scripted HTTP server: each request pops the next reply (the last one repeats)."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests.append({"path": self.path, "headers": dict(self.headers)})
                status, headers, body = (
                    stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeAuth(requests.auth.AuthBase):
    """Adds a cookie; counts re-authentications; can fail logins with the seat limit."""

    def __init__(self, limit_failures: int = 0) -> None:
        self.renewals = 0
        self.limit_failures = limit_failures
        self.token = "c1"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.limit_failures:
            self.limit_failures -= 1
            raise LoginLimitError
        r.headers["Cookie"] = f"s={self.token}"
        return r

    def handle_unauthorized(self, r: requests.PreparedRequest) -> None:
        self.renewals += 1
        self.token = f"c{self.renewals + 1}"


@pytest.fixture
def stub() -> Iterator[Any]:
    servers: list[Stub] = []

    def make(*replies: Reply) -> Stub:
        s = Stub(list(replies))
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def client(url: str, auth: Any = None, **kw: Any) -> tuple[AcumaticaClient, list[float]]:
    sleeps: list[float] = []
    options: dict[str, Any] = {"max_tries": 4, "backoff_base": 0.01, "login_limit_wait": 1.0}
    options.update(kw)
    return AcumaticaClient(url, auth or FakeAuth(), sleep=sleeps.append, **options), sleeps


def test_retries_5xx_then_succeeds(stub: Any) -> None:
    s = stub(_error(500, "boom"), _error(503, "busy"), _json(200, [{"id": "a"}]))
    c, sleeps = client(s.url)
    assert c.get_json("/entity/X", {"$top": 1}) == [{"id": "a"}]
    assert len(s.requests) == 3
    assert len(sleeps) == 2
    assert sleeps[1] >= sleeps[0] * 0.5  # exponential with jitter


def test_honours_retry_after(stub: Any) -> None:
    s = stub(_json(429, {"message": "license limit"}, {"Retry-After": "7"}), _json(200, []))
    c, sleeps = client(s.url)
    assert c.get_json("/x") == []
    assert sleeps == [7.0]


@pytest.mark.parametrize("value", ["nan", "-5", "Thu, 01 Jan 1970 00:00:00 GMT", "soon"])
def test_meaningless_retry_after_is_treated_as_absent(stub: Any, value: str) -> None:
    """NaN, negative, a past date: back off as without the header (not 0 s, not NaN)."""
    s = stub(_json(429, {"message": "license limit"}, {"Retry-After": value}), _json(200, []))
    c, sleeps = client(s.url, backoff_base=0.01)
    assert c.get_json("/x") == []
    assert len(sleeps) == 1
    assert 0.005 <= sleeps[0] <= 0.01  # the backoff of a first retry


@pytest.mark.parametrize("value", ["1000000", "inf"])
def test_retry_after_beyond_the_wait_is_reported_once(stub: Any, value: str) -> None:
    """A Retry-After longer than the tap waits ends the request at once, in one line."""
    s = stub(_json(429, {"message": "license limit"}, {"Retry-After": value}), _json(200, []))
    c, sleeps = client(s.url, max_tries=8)
    with pytest.raises(AcumaticaAPIError) as info:
        c.get_json("/entity/Default/24.200.001/SalesOrder", stream="SalesOrder")
    text = str(info.value)
    assert len(s.requests) == 1
    assert sleeps == []
    assert f"Retry-After: {value}" in text
    assert "run the tap again later" in text
    assert "\n" not in text


def test_truncated_json_is_retried(stub: Any) -> None:
    s = stub((200, {"Content-Type": "application/json"}, b'[{"id": "a"'), _json(200, [1]))
    c, sleeps = client(s.url)
    assert c.get_json("/x") == [1]
    assert len(sleeps) == 1


def test_decimals_stay_exact(stub: Any) -> None:
    s = stub(
        (200, {}, b'[{"Amount": {"value": 0.1}}, {"Amount": {"value": 12345678901234.56789}}]')
    )
    c, _ = client(s.url)
    rows = c.get_json("/x")
    assert str(rows[0]["Amount"]["value"]) == "0.1"
    assert str(rows[1]["Amount"]["value"]) == "12345678901234.56789"


def test_typed_decoder_falls_back_to_plain_json_for_another_shape(stub: Any) -> None:
    class Row(msgspec.Struct):
        Amount: int

    s = stub(_json(200, [{"Amount": 3}]), _json(200, [{"Amount": "three"}]), _json(200, {"x": 1}))
    c, sleeps = client(s.url)
    decoder = msgspec.json.Decoder(list[Row])
    assert c.get_json("/x", decoder=decoder) == [Row(Amount=3)]
    assert c.get_json("/x", decoder=decoder) == [{"Amount": "three"}]  # no retry: valid JSON
    assert c.get_json("/x", decoder=decoder) == {"x": 1}
    assert sleeps == []
    assert len(s.requests) == 3


def test_fatal_error_names_stream_path_query_status_and_message(stub: Any) -> None:
    s = stub(_error(500, "kaput"))
    c, _ = client(s.url, max_tries=2)
    with pytest.raises(AcumaticaAPIError) as info:
        c.get_json("/entity/Default/24.200.001/SalesOrder", {"$top": 5}, stream="SalesOrder")
    text = str(info.value)
    assert text.startswith("SalesOrder: GET /entity/Default/24.200.001/SalesOrder?$top=5")
    assert "after 2 tries" in text
    assert "HTTP 500" in text
    assert "kaput" in text
    assert "\n" not in text


def test_optimization_error_is_fatal_and_explains_the_fix(stub: Any) -> None:
    s = stub(
        _error(
            500,
            "Optimization cannot be performed.The following fields cause the error: "
            "ApplicationHistory.AmountPaid",
        )
    )
    c, sleeps = client(s.url)
    with pytest.raises(AcumaticaAPIError) as info:
        c.get_json(
            "/entity/Default/24.200.001/Payment",
            {"$expand": "ApplicationHistory"},
            stream="Payment",
        )
    text = str(info.value)
    assert len(s.requests) == 1  # deterministic: not retried
    assert not sleeps
    assert "ApplicationHistory.AmountPaid" in text
    assert "`expand`" in text
    assert "$expand=ApplicationHistory" in text


def test_html_error_page_is_reduced_to_text(stub: Any) -> None:
    page = (
        b"<html><head><title>x</title><style>p{}</style></head><body><h1>Service "
        b"Unavailable</h1><p>HTTP Error 503. The service is unavailable.</p></body></html>"
    )
    s = stub((503, {"Content-Type": "text/html"}, page))
    c, _ = client(s.url, max_tries=2)
    with pytest.raises(AcumaticaAPIError) as info:
        c.get_json("/x")
    text = str(info.value)
    assert "Service Unavailable HTTP Error 503. The service is unavailable." in text
    assert "<" not in text
    assert html_to_text("<b>a</b>&amp; b") == "a & b"


def test_401_reauthenticates_once(stub: Any) -> None:
    s = stub(_json(401, {"message": "You are not logged in."}), _json(200, ["ok"]))
    auth = FakeAuth()
    c, _ = client(s.url, auth)
    assert c.get_json("/x") == ["ok"]
    assert auth.renewals == 1
    assert s.requests[0]["headers"]["Cookie"] == "s=c1"
    assert s.requests[1]["headers"]["Cookie"] == "s=c2"


def test_401_twice_is_an_auth_error(stub: Any) -> None:
    s = stub(_json(401, {"message": "You are not logged in."}))
    auth = FakeAuth()
    c, _ = client(s.url, auth)
    with pytest.raises(AuthError, match="401 again"):
        c.get_json("/x")
    assert auth.renewals == 1


@pytest.mark.parametrize(
    "reply",
    [
        _error(500, "API Login Limit"),
        (
            429,
            {"Content-Type": "text/html"},
            b"<html><body>The custom error module does not recognize this error.</body></html>",
        ),
    ],
)
def test_api_login_limit_both_shapes_wait_and_retry(stub: Any, reply: Reply) -> None:
    s = stub(reply, _json(200, ["in"]))
    c, sleeps = client(s.url, login_limit_wait=100.0)
    assert c.get_json("/x") == ["in"]
    assert sleeps
    assert sleeps[0] >= 1


def test_api_login_limit_from_the_authenticator(stub: Any) -> None:
    s = stub(_json(200, ["in"]))
    c, sleeps = client(s.url, FakeAuth(limit_failures=2), login_limit_wait=100.0)
    assert c.get_json("/x") == ["in"]
    assert len(sleeps) == 2


def test_api_login_limit_gives_up_with_a_clear_message(stub: Any) -> None:
    s = stub(_error(500, "API Login Limit"))
    c, _ = client(s.url, login_limit_wait=0.0)
    with pytest.raises(AcumaticaAPIError, match=r"API Login Limit.*login_limit_wait_seconds"):
        c.get_json("/x", stream="Customer")


def test_connection_errors_are_retried(stub: Any) -> None:
    s = stub(_json(200, []))
    port = s.url.rsplit(":", 1)[1]
    s.close()
    c, sleeps = client(f"http://127.0.0.1:{port}", max_tries=3)
    with pytest.raises(AcumaticaAPIError, match="after 3 tries: connection error"):
        c.get_json("/x")
    assert len(sleeps) == 2


def test_base_url_rules() -> None:
    assert check_base_url("https://x.example.com/Site/") == "https://x.example.com/Site"
    assert check_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    with pytest.raises(ConfigError, match="loopback"):
        check_base_url("http://erp.example.com")
    with pytest.raises(ConfigError):
        check_base_url("ftp://x")


def test_sandbox_faults_are_survived(sandbox_factory: Any) -> None:
    """Injected 500/429/HTML/reset/truncate/revoke faults: every record still arrives."""
    faults = {
        "http_500": 6,
        "http_429": 6,
        "html_error": 4,
        "reset": 4,
        "truncate": 4,
        "revoke": 2,
        "entities": ["Customer", "StockItem"],
    }
    sbx = sandbox_factory("--seed", "3", "--records", "150", "--faults", json.dumps(faults))
    run = run_tap(tap_config(sbx, entities=["Customer", "StockItem"], page_size=40, max_tries=12))
    assert run.returncode == 0, run.stderr[-3000:]
    for entity in ("Customer", "StockItem"):
        truth = {r["id"] for r in sbx.ground_truth(entity)["live"]}
        assert {r["id"] for r in run.records[entity]} == truth
    stats = sbx.stats()
    assert sum(stats["faults"].values()) > 0
    assert stats["active_sessions"] == 0


_PROGRESS = re.compile(r"(\w+): \d+ windows \((\d+) requests\).*, done$", re.MULTILINE)


def _served(stats: dict[str, Any], entity: str) -> int:
    """GETs the sandbox answered on ``entity``'s list path (any version, any status)."""
    return sum(
        row["count"]
        for row in stats["requests"]
        if row["method"] == "GET" and row["path"].endswith(f"/{entity}")
    )


def test_progress_counts_every_request_the_server_served(sandbox_factory: Any) -> None:
    """Retries, the probe's sample and offset read, split re-reads, a read without $select.

    The final progress line of each stream says as many requests as the server answered on its
    path; before, it counted one per emitted window (plus tie pages) and nothing else.
    """
    faults = {"http_500": 8, "reset": 4, "truncate": 4, "revoke": 2, "entities": ["SalesOrder"]}
    sbx = sandbox_factory("--seed", "4", "--records", "260", "--faults", json.dumps(faults))
    config = tap_config(sbx, entities=["SalesOrder", "Payment"], page_size=40, max_tries=12)
    # Payment with fields deselected: its $select cannot be optimized (the sandbox's default
    # --optimization-error Payment), so the stream reads again without it.
    catalog = select_fields(discover(config), "Payment", {"id", "LastModifiedDateTime", "Type"})
    sbx.admin("POST", "reset")
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    logged = {m.group(1): int(m.group(2)) for m in _PROGRESS.finditer(run.stderr)}
    stats = sbx.stats()
    assert set(logged) == {"SalesOrder", "Payment"}, run.stderr[-3000:]
    assert logged == {e: _served(stats, e) for e in logged}
    assert sum(stats["faults"].values()) > 0
    assert "reading without $select" in run.stderr
