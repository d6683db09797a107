"""Regressions found by the chaos suite (docs/reliability.md "Findings")."""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests

from tap_acumatica import cli
from tap_acumatica.auth import factory as auth
from tap_acumatica.errors import AcumaticaAPIError, AuthError
from tap_acumatica.http.client import AcumaticaClient
from tests._taprun import parse_messages, read_until, start_tap, tap_config, write_json
from tests.support import Sandbox

GOOD = {
    "base_url": "https://erp.example.com",
    "auth_method": "cookie",
    "username": "admin",
    "password": "sbxpw-secret-password",
}

# -- 1. no API seat left open by a run stopped mid-request -------------------------------


class _Gate(requests.auth.AuthBase):
    """A stand-in authenticator recording the order of sends and the sign-out."""

    def __init__(self) -> None:
        self.hooks: list[Any] = []
        self.events: list[str] = []

    def before_sign_out(self, hook: Any) -> None:
        self.hooks.append(hook)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r

    def sign_out(self) -> None:
        for hook in self.hooks:
            hook()
        self.events.append("sign_out")


def test_connection_wires_the_sign_out_after_its_client() -> None:
    from tap_acumatica.connection import Connection  # noqa: PLC0415
    from tap_acumatica.settings import Settings  # noqa: PLC0415

    connection = Connection(Settings.from_config(GOOD), GOOD, config_files=())
    client = connection.client
    assert client.quiesce in connection.authenticator._quiesce_hooks
    connection.close()


def test_sign_out_waits_for_requests_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = _Gate()
    client = AcumaticaClient("http://127.0.0.1:9", gate, max_tries=1)
    gate.before_sign_out(client.quiesce)  # as Connection.client wires them
    release = threading.Event()
    started = threading.Event()

    def slow_send(url: str, *, authenticate: bool) -> requests.Response:
        started.set()
        release.wait(5)
        gate.events.append("answered")
        response = requests.Response()
        response.status_code = 200
        response._content = b"[]"
        return response

    monkeypatch.setattr(client, "_send_counted", slow_send)
    worker = threading.Thread(target=client.get_json, args=("/entity",))
    worker.start()
    assert started.wait(5)
    assert client.in_flight == 1
    threading.Timer(0.3, release.set).start()
    gate.sign_out()
    worker.join(5)
    assert gate.events == ["answered", "sign_out"]  # the logout goes after the last answer
    with pytest.raises(AcumaticaAPIError, match="shutting down"):
        client.get_json("/entity")  # and nothing is sent after it


def test_quiesce_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    client = AcumaticaClient("http://127.0.0.1:9", None)
    client._in_flight = 1  # a request that never ends
    began = time.monotonic()
    assert client.quiesce(0.2) is False
    assert time.monotonic() - began < 2


def test_closing_authenticator_hands_out_no_credential(fresh: Sandbox) -> None:

    c = fresh.credentials()
    a = auth.build_authenticator(
        {
            "base_url": fresh.url,
            "auth_method": "cookie",
            "username": c["username"],
            "password": c["password"],
            "tenant": c["tenant"],
        }
    )
    a.sign_out()
    request = requests.Request("GET", f"{fresh.url}/entity").prepare()
    with pytest.raises(AuthError, match="signing out"):
        a(request)
    assert fresh.stats()["logins"] == 0


@pytest.fixture
def fresh(sandbox_factory: Any) -> Sandbox:
    """A private sandbox."""
    box: Sandbox = sandbox_factory("--records", "5")
    return box


def _signal_mid_sync(config_path: str, sig: int, errfile: Any) -> tuple[int, str, str]:
    """Start a sync, send ``sig`` once a window is committed; return (exit code, stdout, stderr)."""
    errfile.seek(0)
    errfile.truncate()
    proc = start_tap(config_path, stderr=errfile)
    assert proc.stdout is not None
    # Signal once a window is committed (records, then its STATE): the first window's records
    # can take a while to leave while the workers decode the next pages (the GIL), and a
    # signal before any commit rightly leaves no bookmark to write.
    seen = read_until(proc, '"RECORD"', '"STATE"')
    assert seen[-1], "the tap ended before committing a window"
    time.sleep(0.2)  # let the workers put more GETs on the wire
    proc.send_signal(sig)
    out = "".join(seen) + proc.stdout.read()
    proc.wait(timeout=60)
    errfile.seek(0)
    return proc.returncode, out, errfile.read()


@pytest.mark.parametrize("auth_method", ["oauth_password", "cookie"])
def test_signalled_run_leaves_no_api_seat_and_exits_128_plus_signum(
    sandbox_factory: Any, tmp_path: Path, auth_method: str
) -> None:
    box = sandbox_factory(
        "--records",
        "100",
        "--big-entity",
        "SalesOrder",
        "--big-records",
        "20000",  # more than one window (issue 15: up to 16 pages of 1,000 before a split)
        "--latency-ms",
        "100",
        "--api-seats",
        "4",
    )
    config = tap_config(box, entities=["SalesOrder"], page_size=1000, max_concurrent_requests=4)
    if auth_method == "oauth_password":
        creds = box.credentials()
        config.update(
            auth_method="oauth_password",
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
        )
    path = write_json(config, tmp_path, "config.json")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        with tempfile.TemporaryFile("w+") as errfile:
            code, out, err = _signal_mid_sync(path, sig, errfile)
        assert code == 128 + sig, err[-2000:]  # never 0: the sync is not complete
        assert "Traceback" not in err
        assert "Signed out of Acumatica" in err
        assert "Gracefully shutting down" in err
        # A committed window leaves a resumable bookmark, and the output is whole Singer lines.
        states = [m["value"] for m in parse_messages(out) if m["type"] == "STATE"]
        assert states[-1]["bookmarks"]["SalesOrder"]["replication_key_value"] >= "2000"
        time.sleep(1.0)  # a GET arriving after the logout would have opened a session by now
        assert box.stats()["active_sessions"] == 0, err[-2000:]


# -- 2. bad input: one clear line, never "unexpected error" -------------------------------


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    # The CLI's safety net signs out every authenticator of the process; taps that other
    # in-process tests left alive would log to streams pytest has closed since.
    from tap_acumatica.auth import base  # noqa: PLC0415

    with mock.patch.object(base, "_LIVE", weakref.WeakSet()), pytest.raises(SystemExit) as info:
        cli.main(args)
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"base_url": "https://exa mple.com"},
            "base_url 'https://exa mple.com' is not a valid URL",
        ),
        ({"base_url": "http://[::1"}, "base_url 'http://[::1' is not a valid URL"),
        ({"base_url": "https://erp.example.com:port"}, "is not a valid URL"),
        ({"start_date": "yesterday"}, "start_date 'yesterday' is not an ISO-8601 date-time"),
        ({"start_date": "2024-13-45T00:00:00Z"}, "is not an ISO-8601 date-time"),
        ({"request_timeout": -1}, "request_timeout: -1 is less than the minimum of 1"),
        ({"request_timeout": 0}, "request_timeout: 0 is less than the minimum of 1"),
        ({"page_size": 0}, "page_size: 0 is less than the minimum of 2"),
        ({"max_concurrent_requests": 0}, "max_concurrent_requests: 0 is less than the minimum"),
        ({"max_tries": -3}, "max_tries: -3 is less than the minimum of 1"),
        ({"backoff_base_seconds": -1}, "backoff_base_seconds: -1 is less than the minimum"),
        ({"login_limit_wait_seconds": -1}, "login_limit_wait_seconds: -1 is less than"),
        ({"lookback_minutes": -10}, "lookback_minutes: -10 is less than the minimum of 0"),
        ({"safety_lag_seconds": -60}, "safety_lag_seconds: -60 is less than the minimum of 0"),
        ({"progress_interval_seconds": 0}, "progress_interval_seconds: 0 is less than"),
        ({"login_timeout_seconds": 0}, "login_timeout_seconds: 0 is less than the minimum"),
        ({"request_timeout": 10**12}, "request_timeout: 1000000000000 is greater than the maximum"),
        ({"max_concurrent_requests": 10**6}, "max_concurrent_requests: 1000000 is greater than"),
        ({"login_timeout_seconds": 10**12}, "login_timeout_seconds: 1000000000000 is greater"),
        ({"user_agent": "etl\nX-Injected: 1"}, "user_agent 'etl\\nX-Injected: 1' cannot be sent"),
        ({"branch": " HQ"}, "branch ' HQ' cannot be sent as an HTTP header value"),
        (
            {
                "auth_method": "oauth_code",
                "client_id": "x@Company",
                "client_secret": "s",
                "redirect_uri": "http://[::1/callback",
            },
            "redirect_uri 'http://[::1/callback' is not a valid URL",
        ),
    ],
)
def test_bad_setting_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**GOOD, **change}))
    code, err = _run_cli(["--config", str(path)], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tap-acumatica: ")
    assert "unexpected error" not in lines[0]
    assert expected in lines[0]


@pytest.fixture
def own_signals() -> Any:
    """Restore pytest's SIGINT/SIGTERM handlers after a tap installed its own."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _tap(**config: Any) -> Any:
    from tap_acumatica.tap import TapAcumatica  # noqa: PLC0415

    return TapAcumatica(config={**GOOD, **config}, validate_config=False, setup_mapper=False)


class _MainSending:
    """A client whose main thread is waiting for an answer."""

    after_main_send: Any = None
    stopped = False

    def stop_sending(self) -> None:
        self.stopped = True

    def call_after_main_request(self, callback: Any) -> bool:
        self.after_main_send = callback
        return True


@pytest.mark.usefixtures("own_signals")
def test_signal_during_a_main_thread_get_waits_for_its_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tap = _tap()
    client = _MainSending()
    tap.connection.__dict__["client"] = client
    tap._handle_termination(signal.SIGTERM, None)  # deferred: no exit yet
    assert client.stopped
    assert client.after_main_send is not None
    with pytest.raises(SystemExit) as info:
        client.after_main_send()  # the GET was answered: now end
    assert info.value.code == 143
    tap._handle_termination(signal.SIGINT, None)  # a second signal while ending: ignored
    assert '"STATE"' in capsys.readouterr().out


@pytest.mark.usefixtures("own_signals")
def test_deferred_signal_ends_after_a_bounded_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from tap_acumatica import connection  # noqa: PLC0415

    monkeypatch.setattr(connection, "QUIESCE_SECONDS", 0.2)
    tap = _tap()
    tap.connection.__dict__["client"] = _MainSending()  # an answer that never comes
    tap._handle_termination(signal.SIGINT, None)
    with pytest.raises(SystemExit) as info:
        time.sleep(5)  # the timer re-raises the signal in the main thread after 0.2 s
    assert info.value.code == 130


@pytest.mark.usefixtures("own_signals")
@pytest.mark.parametrize("name", ["max_tries", "request_timeout", "page_size", "lookback_minutes"])
def test_null_numeric_setting_means_the_default(name: str) -> None:
    from tap_acumatica import settings  # noqa: PLC0415

    tap = _tap(**{name: None})
    assert settings.value(tap.config, name) == settings.DEFAULTS[name]
    assert tap.connection.client.max_tries >= 1
    assert tap.settings.page_size >= 2


def test_pasted_text_that_is_not_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    import io  # noqa: PLC0415

    from tap_acumatica.auth import browser as codegrant  # noqa: PLC0415

    request = codegrant.authorization_request(
        base_url="https://erp.example.com",
        client_id="x@Company",
        redirect_uri="https://example.invalid/cb",
        scope="api",
    )
    with pytest.raises(AuthError, match="not the redirected URL"):
        codegrant.read_pasted_url(request, 1, io.StringIO("http://[::1?code=x\n"))


def test_lookback_never_starts_after_the_bookmark_nor_overflows() -> None:
    import datetime as dt  # noqa: PLC0415

    from tap_acumatica.stamps import DEFAULT_START  # noqa: PLC0415
    from tap_acumatica.sync.stream import minus_lookback as _minus_lookback  # noqa: PLC0415

    mark = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    assert _minus_lookback(mark, 0) == mark
    assert _minus_lookback(mark, 60) == mark - dt.timedelta(hours=1)
    assert _minus_lookback(mark, -60) == mark  # never after the bookmark (records skipped)
    assert _minus_lookback(mark, 1e15) == DEFAULT_START  # no OverflowError
    early = dt.datetime(1800, 1, 1, tzinfo=dt.timezone.utc)
    assert _minus_lookback(early, 10) == early  # an early start_date is honoured


def test_login_timeout_is_bounded_for_login_too() -> None:
    from tap_acumatica.auth.config import validate_auth_config  # noqa: PLC0415
    from tap_acumatica.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match="from 1 to 86400"):
        validate_auth_config({**GOOD, "login_timeout_seconds": 10**12})
