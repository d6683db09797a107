"""Bounds on one response: a whole-response deadline and a cap on the decompressed body.

``request_timeout`` bounds each socket read only, so a server that trickles its answer never
timed out; a gzip body that inflates to gigabytes was held whole in memory. Stub servers show
the client's bounds; the sandbox's ``trickle`` and ``gzip_bomb`` faults show the tap's.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tap_acumatica.errors import AcumaticaAPIError, ResponseLimitError
from tap_acumatica.http.body import MIN_BODY_BYTES, max_body_bytes
from tap_acumatica.http.client import AcumaticaClient
from tests._taprun import tap_config, write_json
from tests.sandbox.faults import gzip_bomb
from tests.support import REPO, Sandbox, wait_for, wait_with_peak_mib

PAGE = json.dumps([{"id": f"r{i}", "Note": {"value": "x" * 40}} for i in range(20)]).encode()


class Slow:
    """A server whose answer is ``body``, written in ``pieces`` with ``pause`` s between them."""

    def __init__(self, body: bytes, *, pause: float, piece: int = 1, gzipped: bool = False) -> None:
        self.requests = 0
        slow = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                slow.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if gzipped:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for at in range(0, len(body), piece):
                        self.wfile.write(body[at : at + piece])
                        if pause:
                            time.sleep(pause)
                except OSError:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow() -> Iterator[Any]:
    servers: list[Slow] = []

    def make(body: bytes, **kw: Any) -> Slow:
        servers.append(Slow(body, **kw))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _no_sleep(seconds: float) -> None:
    del seconds


def _in_thread(call: Any, timeout: float) -> tuple[bool, BaseException | None, Any]:
    """Run ``call`` on a daemon thread; (ended within ``timeout``, what it raised, result)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:  # handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), out.get("error"), out.get("value")


def test_a_trickled_answer_ends_at_the_deadline_in_one_line(slow: Any) -> None:
    """One byte every 50 ms of a 2 KB page: each read is quick, the whole is not (100 s)."""
    server = slow(PAGE, pause=0.05)
    client = AcumaticaClient(server.url, None, timeout=30, deadline=1, max_tries=3, sleep=_no_sleep)
    ended, error, _ = _in_thread(lambda: client.get_json("/entity/X", stream="X"), timeout=20)
    assert ended, "the client was still reading the trickle after 20 s"
    assert isinstance(error, ResponseLimitError)
    text = str(error)
    assert text.startswith("X: GET /entity/X failed: the response was not complete after 1s")
    assert "response_deadline_seconds" in text
    assert "\n" not in text
    assert server.requests == 1  # not retried


def test_no_read_waits_longer_than_the_deadline(slow: Any) -> None:
    """Headers, then nothing for 60 s: the read times out at the deadline, not request_timeout."""
    server = slow(PAGE, pause=60, piece=len(PAGE) // 2)
    client = AcumaticaClient(
        server.url, None, timeout=600, deadline=1, max_tries=2, sleep=_no_sleep
    )
    ended, error, _ = _in_thread(lambda: client.get_json("/x"), timeout=20)
    assert ended, "a stalled answer outlived the deadline"
    assert isinstance(error, AcumaticaAPIError)
    assert "timed out" in str(error)


def test_a_gzip_bomb_stops_at_the_cap_without_holding_it(slow: Any) -> None:
    """A 2.7 MB gzip body inflating to 1 GiB: refused past the cap, memory stays near it."""
    length, pieces = gzip_bomb(1024)
    body = b"".join(pieces)
    assert len(body) == length < 4 * 1024 * 1024
    server = slow(body, pause=0, piece=1 << 20, gzipped=True)
    client = AcumaticaClient(server.url, None, page_size=100, max_tries=3, sleep=_no_sleep)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseLimitError) as info:
            client.get_json("/entity/X", stream="X")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert max_body_bytes(100) == MIN_BODY_BYTES
    assert peak < 3 * MIN_BODY_BYTES, f"peak {peak >> 20} MiB while reading a bomb"
    text = str(info.value)
    assert "grew past 64 MiB after gzip decoding" in text
    assert "\n" not in text
    assert server.requests == 1


def test_a_gzip_page_still_decodes(slow: Any) -> None:
    server = slow(gzip.compress(PAGE), pause=0, piece=100, gzipped=True)
    client = AcumaticaClient(server.url, None, deadline=30)
    assert client.get_json("/x") == json.loads(PAGE)
    assert client.get_bytes("/x") == PAGE
    assert client.sent.of("") == 2


def test_the_sandbox_bomb_is_a_valid_gzip_stream() -> None:
    length, pieces = gzip_bomb(3)
    body = b"".join(pieces)
    assert len(body) == length < 3 * 1024 * 1024 // 100
    inflated = gzip.decompress(body)  # the trailer's CRC and size hold
    assert inflated.startswith(b'[{"id":')
    assert 3 * 1024 * 1024 <= len(inflated) < 4 * 1024 * 1024


# -- the tap against the sandbox's adversarial faults ------------------------------------------


def _start(box: Sandbox, tmp_path: Path, **settings: Any) -> subprocess.Popen[bytes]:
    config = tap_config(box, entities=["Customer"], max_tries=3, **settings)
    with (tmp_path / "err").open("wb") as err:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "tap_acumatica", "--config", write_json(config, tmp_path, "c")],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _last_line(tmp_path: Path) -> str:
    lines = (tmp_path / "err").read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[-1] if lines else ""


def test_the_tap_stops_a_trickling_server_within_its_deadline(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    """Every Customer answer trickles (a byte per 500 ms); the run ends with one line."""
    faults = {"trickle": 100, "trickle_ms": 500, "entities": ["Customer"]}
    box = sandbox_factory("--records", "40", "--faults", json.dumps(faults))
    proc = _start(box, tmp_path, response_deadline_seconds=2)
    try:
        assert wait_for(lambda: proc.poll() is not None, timeout=60), "the tap hung on a trickle"
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1
    last = _last_line(tmp_path)
    assert "Customer: GET " in last
    assert "not complete after 2s (response_deadline_seconds" in last


def test_the_tap_refuses_a_decompression_bomb_with_bounded_memory(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    """A Customer answer inflating to 512 MiB: one line, and the process never held it."""
    faults = {"gzip_bomb": 100, "bomb_mb": 512, "entities": ["Customer"]}
    box = sandbox_factory("--records", "40", "--faults", json.dumps(faults))
    proc = _start(box, tmp_path, page_size=50)
    peak_mib = wait_with_peak_mib(proc, timeout=90)
    assert proc.returncode == 1
    assert peak_mib < 400, f"the tap peaked at {peak_mib:.0f} MiB"
    last = _last_line(tmp_path)
    assert "Customer: GET " in last
    assert "grew past 64 MiB after gzip decoding" in last
    assert box.stats()["faults"] == {"gzip_bomb": 1}  # refused once, not retried
