"""odata/service.py against a sandbox process: detection, entity sets, $metadata streamed,
literals, names; and the client's streaming GET (http/body.py ``Sink``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import urllib3

from tap_acumatica.connection import Connection
from tap_acumatica.errors import AcumaticaAPIError, ConfigError, RetriableError
from tap_acumatica.http.body import Sink
from tap_acumatica.odata.model import Service
from tap_acumatica.odata.service import ODataServices, entity_path, literal
from tap_acumatica.settings import Settings
from tap_acumatica.stamps import to_ms
from tests._taprun import tap_config
from tests.support import Sandbox

Factory = Callable[..., Sandbox]


@pytest.fixture
def connect() -> Iterator[Callable[..., Connection]]:
    """Connections (cookie sign-in) to sandboxes, signed out after the test."""
    made: list[Connection] = []

    def make(box: Sandbox, **extra: Any) -> Connection:
        config = tap_config(box, **extra)
        connection = Connection(Settings.from_config(config), config, config_files=())
        made.append(connection)
        return connection

    yield make
    for connection in made:
        connection.close()


def test_modern_services_are_found_once(sandbox: Sandbox, connect: Any) -> None:
    connection = connect(sandbox)
    services = ODataServices(connection, "Company")
    assert "client" not in connection.__dict__  # nothing sent, nothing built yet
    assert services.service("dac") == Service("dac", "/t/Company/api/odata/dac", "4")
    assert services.service("gi") == Service("gi", "/t/Company/api/odata/gi", "4")
    sent = connection.client.sent.of("")
    assert "PX_Objects_SO_SOLine" in services.entity_sets("dac")
    assert "SalesOrders" in services.entity_sets("gi")
    assert services.service("dac").root == "/t/Company/api/odata/dac"
    assert connection.client.sent.of("") == sent  # detected once: no request again


def test_legacy_services_are_found_with_one_info_line(
    sandbox_factory: Factory, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    box = sandbox_factory("--seed", "7", "--records", "50", "--legacy-odata")
    services = ODataServices(connect(box), "Company")
    with caplog.at_level(logging.INFO, logger="tap-acumatica"):
        assert services.service("gi") == Service("gi", "/odata/Company", "3")
        assert services.service("dac") == Service("dac", "/odatav4/Company", "4")
        services.service("gi")
    lines = [r.getMessage() for r in caplog.records if "legacy" in r.getMessage()]
    assert len(lines) == 2
    assert "/t/Company/api/odata/gi answers 404" in lines[0]
    assert "/odata/Company (OData v3)" in lines[0]
    assert "SalesOrders" in services.entity_sets("gi")  # the v3 service document
    got = services.metadata("gi", lambda name: name == "SalesOrders")
    date = got["SalesOrders"].property("Date")
    assert date is not None
    assert date.edm == "Edm.DateTime"  # the v3 CSDL
    assert "PX_Objects_SO_SOOrder" in services.metadata("dac", lambda n: n.endswith("SOOrder"))


def test_no_service_at_either_path_is_one_clear_error(sandbox: Sandbox, connect: Any) -> None:
    services = ODataServices(connect(sandbox), "Elsewhere")
    with pytest.raises(ConfigError) as caught:
        services.service("dac")
    text = str(caught.value)
    assert "/t/Elsewhere/api/odata/dac or /odatav4/Elsewhere" in text
    assert "2024 R2" in text
    assert "'Elsewhere'" in text
    with pytest.raises(ConfigError, match="tenant"):
        ODataServices(connect(sandbox), "").service("gi")


def test_metadata_is_streamed_and_counted(sandbox_factory: Factory, connect: Any) -> None:
    box = sandbox_factory("--seed", "7", "--records", "20", "--big-metadata")
    connection = connect(box)
    services = ODataServices(connection, "Company")
    services.service("dac")
    before = connection.client.sent.of("")
    tracemalloc.start()
    try:
        got = services.metadata("dac", lambda name: name == "PX_Objects_SO_SOLine")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert connection.client.sent.of("") == before + 1  # one GET, in the client's tally
    assert got["PX_Objects_SO_SOLine"].keys == ("OrderType", "OrderNbr", "LineNbr")
    size = len(connection.client.get_bytes("/t/Company/api/odata/dac/$metadata"))
    assert size > 15_000_000  # --big-metadata: ~20 MB, like a real instance's
    assert peak < size / 4, f"peak {peak} for a {size}-byte $metadata"


def test_literals() -> None:
    ms = to_ms(dt.datetime(2024, 7, 15, 10, 0, 0, 3000, tzinfo=dt.timezone.utc))
    v4, v3 = Service("gi", "/t/C/api/odata/gi"), Service("gi", "/odata/C", "3")
    assert literal(ms, v4) == "2024-07-15T10:00:00.003Z"  # on a 1/300 s tick: exact
    assert literal(ms, v4, ZoneInfo("America/New_York")) == "2024-07-15T10:00:00.003Z"
    assert literal(ms, v3) == "datetime'2024-07-15T10:00:00.003'"
    assert literal(ms, v3, ZoneInfo("America/New_York")) == "datetime'2024-07-15T06:00:00.003'"
    assert literal(0, v4) == "1970-01-01T00:00:00.000Z"
    assert ODataServices.literal(ms, v4) == literal(ms, v4)


def test_literals_and_paths_are_accepted_by_the_service(
    sandbox: Sandbox, sandbox_factory: Factory, connect: Any
) -> None:
    legacy = sandbox_factory("--seed", "7", "--records", "50", "--legacy-odata")
    for box in (sandbox, legacy):
        connection = connect(box)
        services = ODataServices(connection, "Company")
        service = services.service("gi")
        path = services.path("gi", "SalesOrders")
        assert path == f"{service.root}/SalesOrders"
        everything = connection.client.get_json(path)["value"]
        cut = to_ms(dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))
        query = {"$filter": f"LastModifiedOn lt {literal(cut, service)}"}
        assert len(connection.client.get_json(path, query)["value"]) == len(everything) > 0
        query = {"$filter": f"LastModifiedOn lt {literal(0, service)}"}
        assert connection.client.get_json(path, query)["value"] == []


def test_entity_path_quotes_names_and_parameters() -> None:
    gi = Service("gi", "/t/C/api/odata/gi")
    assert entity_path(gi, "Customer Contacts") == "/t/C/api/odata/gi/Customer%20Contacts"
    assert (
        entity_path(gi, "Orders", {"Status": "Open", "Who": "O'Neil"})
        == "/t/C/api/odata/gi/Orders_WithParameters(Status='Open',Who='O''Neil')"
    )


def test_resolve_names(sandbox: Sandbox, connect: Any) -> None:
    services = ODataServices(connect(sandbox), "Company")
    assert services.resolve("dac", "PX_Objects_SO_SOLine") == "PX_Objects_SO_SOLine"
    assert services.resolve("dac", "SOLine") == "PX_Objects_SO_SOLine"  # the short name
    assert services.resolve("dac", "px_objects_so_soline") == "PX_Objects_SO_SOLine"
    assert services.resolve("gi", "Sales Orders") == "SalesOrders"  # a display name
    with pytest.raises(ConfigError) as caught:
        services.resolve("gi", "SalesOrdrs")
    assert "close matches: SalesOrders" in str(caught.value)
    ambiguous: Any = ODataServices(None, "C")  # type: ignore[arg-type]
    ambiguous._services["dac"] = Service("dac", "/t/C/api/odata/dac")
    ambiguous._sets["dac"] = ["PX_Objects_AR_Customer", "PX_Objects_XX_Customer"]
    with pytest.raises(ConfigError, match="ambiguous: PX_Objects_AR_Customer, PX_Objects_XX"):
        ambiguous.resolve("dac", "Customer")
    with pytest.raises(ConfigError, match=r"no OData DAC named 'Nothing\.At\.All'"):
        services.resolve("dac", "Nothing.At.All")


def test_a_broken_stream_starts_over(sandbox_factory: Factory, connect: Any) -> None:
    box = sandbox_factory("--seed", "7", "--records", "300")
    connection = connect(box)
    services = ODataServices(connection, "Company")
    path = services.path("gi", "SalesOrders")
    clean = connection.client.get_bytes(path)
    box.admin("POST", "faults", {"script": ["reset"]})
    pieces: list[bytes] = []
    restarts: list[int] = []

    def restart() -> None:
        restarts.append(len(pieces))
        pieces.clear()

    before = connection.client.sent.of("gi")
    assert connection.client.get_chunks(path, consume=pieces.append, restart=restart, stream="gi")
    assert connection.client.sent.of("gi") == before + 2  # the reset try and the good one
    assert json.loads(b"".join(pieces)) == json.loads(clean)
    assert len(restarts) == 1  # the reset came after a third of the body had been handed over
    assert restarts[0] > 0


class _Raw:
    """``response.raw`` giving ``pieces`` and then, if ``fail``, a broken connection."""

    def __init__(self, pieces: list[bytes], *, fail: bool) -> None:
        self.pieces, self.fail, self.closed = list(pieces), fail, False

    def close(self) -> None:
        self.closed = True

    def read1(self, size: int, decode_content: bool = True) -> bytes:
        del size, decode_content
        if self.pieces:
            return self.pieces.pop(0)
        if self.fail:
            raise urllib3.exceptions.ProtocolError("connection broken")
        return b""


def _response(pieces: list[bytes], *, fail: bool = False) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.raw = _Raw(pieces, fail=fail)
    response.url = "http://x/odata"
    return response


def test_sink_restarts_before_a_second_pour_and_caps_the_body() -> None:
    got: list[bytes] = []
    restarts: list[int] = []

    def restart() -> None:
        restarts.append(len(got))
        got.clear()

    sink = Sink(got.append, restart)
    broken = _response([b"ab", b"cd"], fail=True)
    with pytest.raises(RetriableError):
        sink.pour(broken, started=0.0, seconds=1e12, limit=100)
    assert got == [b"ab", b"cd"]
    assert broken.raw.closed
    sink.pour(_response([b"ab", b"cd", b"ef"]), started=0.0, seconds=1e12, limit=100)
    assert restarts == [2]
    assert b"".join(got) == b"abcdef"
    bare = Sink(got.append)
    with pytest.raises(RetriableError):
        bare.pour(_response([b"x"], fail=True), started=0.0, seconds=1e12, limit=100)
    with pytest.raises(AcumaticaAPIError, match="cannot start over"):
        bare.pour(_response([b"x"]), started=0.0, seconds=1e12, limit=100)
    capped = Sink(got.append, limit=3)
    with pytest.raises(AcumaticaAPIError, match="grew past"):
        capped.pour(_response([b"ab", b"cd"]), started=0.0, seconds=1e12, limit=10**9)
