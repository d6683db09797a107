"""The interactive code grant without a server: PKCE, the loopback listener, the paste flow."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import threading
import time
import urllib.parse

import pytest
import requests

from tap_acumatica.auth import browser as codegrant
from tap_acumatica.errors import AuthError, ConfigError
from tap_acumatica.settings import is_loopback
from tests.support import free_port


def test_pkce_s256_and_authorize_url() -> None:
    req = codegrant.authorization_request(
        base_url="https://erp.example.com/Site/",
        client_id="ABC@Company",
        redirect_uri="http://localhost:8765/callback",
        scope="api offline_access",
    )
    parts = urllib.parse.urlsplit(req.url)
    assert parts.path == "/Site/identity/connect/authorize"
    q = dict(urllib.parse.parse_qsl(parts.query))
    assert q["response_type"] == "code"
    assert q["client_id"] == "ABC@Company"
    assert q["scope"] == "api offline_access"
    assert q["state"] == req.state
    assert q["code_challenge_method"] == "S256"
    digest = hashlib.sha256(req.code_verifier.encode()).digest()
    assert q["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(req.code_verifier) <= 128
    other = codegrant.authorization_request(
        base_url="https://h", client_id="A@B", redirect_uri="http://127.0.0.1:1/", scope="api"
    )
    assert other.state != req.state
    assert other.code_verifier != req.code_verifier


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.5.0.1", True),
        ("[::1]", True),
        ("example.com", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, loop: bool) -> None:
    assert is_loopback(host) is loop


def _hit(
    url: str, after: threading.Thread | None = None, statuses: list[int] | None = None
) -> threading.Thread:
    """GET ``url`` from a thread, as a browser would, once the request ``after`` has ended.

    The listener is bound before this is called: the connection waits in its backlog until
    ``wait`` serves it, so no delay is needed to let the test reach ``wait``. The answer's
    status goes to ``statuses``.
    """

    def go() -> None:
        if after is not None:
            after.join(10)  # keep the order of two requests
        with contextlib.suppress(requests.RequestException):
            status = requests.get(url, timeout=10).status_code
            if statuses is not None:
                statuses.append(status)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_listener_serves_one_redirect_on_loopback_only() -> None:
    port = free_port()
    listener = codegrant.RedirectListener.open(f"http://127.0.0.1:{port}/callback")
    assert [s.server_address[0] for s in listener.servers] == ["127.0.0.1"]
    stray = _hit(f"http://127.0.0.1:{port}/favicon.ico")  # a stray request does not count
    _hit(f"http://127.0.0.1:{port}/callback?code=sbxcd-123456&state=S1", after=stray)
    assert listener.wait("S1", timeout=10) == "sbxcd-123456"
    with pytest.raises(requests.ConnectionError):  # served one redirect and closed
        requests.get(f"http://127.0.0.1:{port}/callback", timeout=2)


def test_listener_localhost_binds_loopback_addresses() -> None:
    port = free_port()
    listener = codegrant.RedirectListener.open(f"http://localhost:{port}/cb")
    try:
        assert {s.server_address[0] for s in listener.servers} <= {"127.0.0.1", "::1"}
    finally:
        listener.close()


def test_listener_answers_a_wrong_state_400_and_waits_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Any web page can send the browser to the loopback callback: neither a forged code nor a
    # forged error may end the sign-in, and neither code may be used.
    port = free_port()
    url = f"http://127.0.0.1:{port}/cb"
    listener = codegrant.RedirectListener.open(url)
    statuses: list[int] = []
    forged = _hit(f"{url}?code=sbxcd-999999&state=forged", statuses=statuses)
    cancel = _hit(f"{url}?error=access_denied", after=forged, statuses=statuses)
    _hit(f"{url}?code=sbxcd-real01&state=expected", after=cancel)
    assert listener.wait("expected", timeout=10) == "sbxcd-real01"
    cancel.join(10)
    assert statuses == [400, 400]
    assert capsys.readouterr().err.count("Ignored a request to /cb") == 2


def test_listener_reports_access_denied() -> None:
    port = free_port()
    listener = codegrant.RedirectListener.open(f"http://127.0.0.1:{port}/cb")
    _hit(f"http://127.0.0.1:{port}/cb?error=access_denied&state=S")
    with pytest.raises(AuthError, match="denied"):
        listener.wait("S", timeout=10)


def test_listener_times_out_with_a_clear_message() -> None:
    listener = codegrant.RedirectListener.open(f"http://127.0.0.1:{free_port()}/cb")
    start = time.monotonic()
    with pytest.raises(AuthError, match=r"no sign-in arrived within 1 s.*--login"):
        listener.wait("S", timeout=1)
    assert time.monotonic() - start < 5


def test_listener_refuses_non_loopback_redirect() -> None:
    with pytest.raises(ConfigError, match="not a loopback"):
        codegrant.RedirectListener.open("https://example.invalid/oauth/callback")


def test_paste_flow_for_a_non_loopback_redirect(capsys: pytest.CaptureFixture[str]) -> None:
    req = codegrant.authorization_request(
        base_url="https://h",
        client_id="A@B",
        redirect_uri="https://example.invalid/oauth/callback",
        scope="api",
    )
    pasted = io.StringIO(
        f"https://example.invalid/oauth/callback?code=sbxcd-pasted1&state={req.state}\n"
    )
    assert codegrant.read_pasted_url(req, 5, pasted) == "sbxcd-pasted1"
    assert "paste it here" in capsys.readouterr().err
    bad = io.StringIO("https://example.invalid/oauth/callback?code=sbxcd-x&state=nope\n")
    with pytest.raises(AuthError, match="wrong state"):
        codegrant.read_pasted_url(req, 5, bad)


def test_obtain_code_prints_the_url_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    req = codegrant.authorization_request(
        base_url="https://h",
        client_id="A@B",
        redirect_uri=f"http://127.0.0.1:{port}/cb",
        scope="api",
    )
    opened: list[str] = []

    def opener(url: str) -> bool:
        opened.append(url)
        _hit(f"http://127.0.0.1:{port}/cb?code=sbxcd-opened&state={req.state}")
        return True

    assert codegrant.obtain_code(req, timeout=10, opener=opener) == "sbxcd-opened"
    out = capsys.readouterr()
    assert opened == [req.url]
    assert req.url in out.err
    assert out.out == ""


def test_no_browser_without_a_desktop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")

    def boom(*args: object, **kwargs: object) -> bool:
        raise AssertionError("a console browser would take over the terminal")

    monkeypatch.setattr("webbrowser.open", boom)
    assert codegrant.open_browser("https://example.com") is False
