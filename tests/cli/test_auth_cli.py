"""The ``tap-acumatica`` wrapper: one clear line for bad input, config paths captured, --login."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tap_acumatica import cli

GOOD = {
    "base_url": "https://erp.example.com",
    "auth_method": "cookie",
    "username": "admin",
    "password": "sbxpw-secret-password",
}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def write(tmp_path: Path, content: Any, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON (line 1)"),
        ("[1, 2]", "must hold a JSON object"),
        ({**GOOD, "base_url": None}, "base_url"),
        ({k: v for k, v in GOOD.items() if k != "base_url"}, "'base_url' is a required property"),
        ({**GOOD, "page_size": "many"}, "page_size: 'many' is not of type 'integer'"),
        ({**GOOD, "base_url": "not a url"}, "not an http(s) URL"),
        ({**GOOD, "base_url": "http://erp.example.com"}, "https://"),
        ({**GOOD, "auth_method": "magic"}, "auth_method"),
        ({**GOOD, "password": None}, "password"),
        ({**GOOD, "auth_method": "oauth_code"}, "client_id"),
    ],
)
def test_bad_config_is_one_line_without_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: Any,
    expected: str,
) -> None:
    code, out, err = run_cli(["--config", write(tmp_path, content), "--discover"], capsys)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tap-acumatica: ")
    assert expected in lines[0]
    assert "sbxpw-" not in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--config", str(tmp_path / "nope.json"), "--discover"], capsys)
    assert code == 1
    assert err.strip() == f"tap-acumatica: config file {tmp_path / 'nope.json'} does not exist"


def test_config_paths_are_captured() -> None:
    args = ["--config", "a.json", "--config=b.json", "--discover", "--config", "ENV"]
    assert cli.config_paths(args) == ["a.json", "b.json", "ENV"]


def test_login_refuses_other_auth_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["--login", "--config", write(tmp_path, GOOD)], capsys)
    assert code == 1
    assert out == ""
    assert "--login is for auth_method oauth_code" in err


def test_login_needs_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--login"], capsys)
    assert code == 1
    assert "--login needs --config" in err


def test_env_config_is_validated_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAP_ACUMATICA_BASE_URL", "http://erp.example.com")
    monkeypatch.setenv("TAP_ACUMATICA_AUTH_METHOD", "cookie")
    monkeypatch.setenv("TAP_ACUMATICA_USERNAME", "admin")
    monkeypatch.setenv("TAP_ACUMATICA_PASSWORD", "sbxpw-from-env")
    code, _, err = run_cli(["--config", "ENV", "--discover"], capsys)
    assert code == 1
    assert "https://" in err
    assert "sbxpw-" not in err


def test_about_needs_no_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--about", "--format", "json"], capsys)
    assert code == 0
    about = json.loads(out)
    settings = about["settings"]["properties"]
    for name in (
        "auth_method",
        "client_id",
        "client_secret",
        "redirect_uri",
        "scope",
        "initiate_oauth",
        "oauth_settings_location",
        "access_token",
        "refresh_token",
        "username",
        "password",
    ):
        assert settings[name].get("description"), name
    for name in ("client_secret", "access_token", "refresh_token", "password"):
        assert settings[name].get("secret") is True, name
    assert settings["initiate_oauth"]["default"] == "GETANDREFRESH"
    assert settings["scope"]["default"] == "api offline_access"
