"""``tap-acumatica --login`` end to end in a real headless Chromium on the sandbox's page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, Sandbox, assert_no_secrets, free_port

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("TAP_ACUMATICA_REQUIRE_ALL") == "1":
            pytest.fail("chromium is required (TAP_ACUMATICA_REQUIRE_ALL=1) but not installed")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only when chromium exists

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Login:
    """A running ``tap-acumatica --login`` and the sign-in URL it printed."""

    def __init__(self, cfg: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tap_acumatica", "--login", "--config", str(cfg)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self.lines: list[str] = []
        self.url = ""
        for line in self.proc.stderr:
            self.lines.append(line)
            if "/identity/connect/authorize?" in line:
                self.url = line.strip()
                break
        assert self.url, "".join(self.lines)

    def finish(self) -> tuple[int, str]:
        out, err = self.proc.communicate(timeout=60)
        assert out == ""  # stdout is the Singer stream: nothing there
        return self.proc.returncode, "".join(self.lines) + err


@pytest.fixture
def setup(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> tuple[Sandbox, Path, Path]:
    port = free_port()
    box = sandbox_factory("--records", "5", "--redirect-port", str(port))
    c = box.credentials()
    store = tmp_path / "tokens.json"
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "base_url": box.url,
                "client_id": c["client_id"],
                "client_secret": c["client_secret"],
                "redirect_uri": f"http://localhost:{port}/callback",
                "oauth_settings_location": str(store),
                "open_browser": False,
                "login_timeout_seconds": 60,
            }
        )
    )
    return box, cfg, store


def test_code_grant_in_chromium(browser: Any, setup: tuple[Sandbox, Path, Path]) -> None:
    box, cfg, store = setup
    login = Login(cfg)
    page = browser.new_page()
    try:
        page.goto(login.url)
        page.fill("#username", "admin")
        page.fill("#password", "wrong-password")
        page.click("#approve")
        assert "Invalid credentials" in page.inner_text("#error")
        page.fill("#username", "admin")
        page.fill("#password", box.credentials()["password"])
        page.click("#approve")
        page.wait_for_selector("text=Signed in", timeout=30000)
        assert page.url.startswith(cfg_redirect(cfg))
    finally:
        page.close()
    code, text = login.finish()
    assert code == 0, text
    assert_no_secrets(text, box)
    doc = json.loads(store.read_text())
    assert doc["refresh_token"].startswith("sbxrt-")
    assert doc["scope"] == "api offline_access"
    assert oct(store.stat().st_mode & 0o777) == oct(0o600)
    stats = box.stats()
    assert stats["refresh_tokens"]["issued"] == 1
    assert stats["active_sessions"] == 0  # --login signed out of the session it opened


def test_a_stray_callback_does_not_end_the_login(
    browser: Any, setup: tuple[Sandbox, Path, Path]
) -> None:
    box, cfg, store = setup
    login = Login(cfg)
    page = browser.new_page()
    try:
        # Any web page can send the browser to the loopback callback (a forged code, a forged
        # cancel): each gets a 400 page and --login waits on for the real redirect.
        for stray in ("?code=sbxcd-forged1&state=forged", "?error=access_denied"):
            answer = page.goto(cfg_redirect(cfg) + stray)
            assert answer is not None
            assert answer.status == 400
            assert "Not this sign-in" in page.inner_text("h1")
        page.goto(login.url)
        page.fill("#username", "admin")
        page.fill("#password", box.credentials()["password"])
        page.click("#approve")
        page.wait_for_selector("text=Signed in", timeout=30000)
    finally:
        page.close()
    code, text = login.finish()
    assert code == 0, text
    assert text.count("Ignored a request to /callback") == 2
    assert_no_secrets(text, box)
    doc = json.loads(store.read_text())
    assert doc["refresh_token"].startswith("sbxrt-")
    assert doc["signed_in_at"].endswith("Z")  # the chain's start, for an expiry message later
    assert box.stats()["refresh_tokens"]["issued"] == 1


def test_deny_in_chromium_fails_cleanly(browser: Any, setup: tuple[Sandbox, Path, Path]) -> None:
    box, cfg, store = setup
    login = Login(cfg)
    page = browser.new_page()
    try:
        page.goto(login.url)
        page.click("#deny")
        page.wait_for_selector("text=Sign-in failed", timeout=30000)
    finally:
        page.close()
    code, text = login.finish()
    assert code == 1
    last = text.strip().splitlines()[-1]
    assert last.startswith("tap-acumatica: ")
    assert "denied" in last
    assert "Traceback" not in text
    assert_no_secrets(text, box)
    assert not store.exists()


def cfg_redirect(cfg: Path) -> str:
    return str(json.loads(cfg.read_text())["redirect_uri"])
