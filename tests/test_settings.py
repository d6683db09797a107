"""settings.py: the checks every layer relies on (base_url, defaults)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tap_acumatica import settings
from tap_acumatica.errors import ConfigError

SECRET = "sbxpw-in-the-url-42"


@pytest.mark.parametrize(
    "url",
    [
        f"https://admin:{SECRET}@erp.example.com",
        f"http://admin:{SECRET}@127.0.0.1:8080/Site",
        "https://admin@erp.example.com",
        f"https://admin:{SECRET}@[::1",  # broken too: still never echoed
    ],
)
def test_base_url_with_user_info_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings.check_base_url(url)
    assert "user name or password" in str(info.value)
    assert SECRET not in str(info.value)
    assert "admin" not in str(info.value)


def test_at_sign_after_the_host_is_not_user_info() -> None:
    assert settings.check_base_url("https://erp.example.com/a@b") == "https://erp.example.com/a@b"


@pytest.mark.parametrize("flag", ["--discover", "--login"])
def test_cli_refuses_user_info_in_one_line(tmp_path: Path, flag: str) -> None:
    config = {
        "base_url": f"http://admin:{SECRET}@127.0.0.1:9",
        "client_id": "0a1b@Company",
        "client_secret": "sbxcs-x",
        "redirect_uri": "http://127.0.0.1:9/cb",
        "oauth_settings_location": str(tmp_path / "tokens.json"),
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "tap_acumatica", flag, "--config", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tap-acumatica: base_url must not contain a user name")
    assert SECRET not in proc.stderr


def test_every_default_is_in_the_schema_once() -> None:
    from tap_acumatica.settings_schema import config_schema  # noqa: PLC0415

    props = config_schema()["properties"]
    for name, default in settings.DEFAULTS.items():
        assert props[name].get("default") == default, name
