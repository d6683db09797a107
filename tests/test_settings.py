"""settings.py: the checks every layer relies on (base_url, defaults)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


# -- OData streams and deletions -------------------------------------------------------------

BASE = {"base_url": "https://erp.example.com"}


def _settings(**config: object) -> settings.Settings:
    return settings.Settings.from_config({**BASE, **config})


def _refused(**config: object) -> str:
    with pytest.raises(ConfigError) as info:
        _settings(**config)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_odata_settings_default_to_nothing_and_no_deletions() -> None:
    got = _settings()
    assert not got.odata_selected
    assert (got.odata_dacs, got.odata_inquiries, got.odata_all_inquiries) == ((), (), False)
    assert dict(got.odata_inquiry_options) == {}
    assert got.track_deletions is False
    assert got.deleted_records_keep_days == 10.0
    assert dict(got.deletion_dacs) == {}


def test_odata_names_are_trimmed_and_kept_once_in_order() -> None:
    got = _settings(odata_dacs=["SOLine", " ARTran", "SOLine"], odata_inquiries=["A", "B"])
    assert got.odata_dacs == ("SOLine", "ARTran")
    assert got.odata_inquiries == ("A", "B")
    assert got.odata_selected
    assert not got.odata_all_inquiries


@pytest.mark.parametrize("word", ["all", "ALL", " All ", ["all"]])
def test_odata_inquiries_all_selects_every_inquiry(word: object) -> None:
    got = _settings(odata_inquiries=word)
    assert got.odata_all_inquiries
    assert got.odata_inquiries == ()
    assert got.odata_selected


def test_odata_inquiries_other_text_is_refused() -> None:
    assert _refused(odata_inquiries="SalesOrders") == (
        "odata_inquiries must be \"all\" or a list of generic inquiry names, not 'SalesOrders'"
    )


@pytest.mark.parametrize("bad", [[""], ["ok", 3], {"a": 1}])
def test_odata_dacs_must_be_a_list_of_names(bad: object) -> None:
    assert _refused(odata_dacs=bad).startswith("odata_dacs must be a list of names such as")


def test_inquiry_options_are_normalised() -> None:
    got = _settings(
        odata_inquiries=["SalesOrders", "CustomerList"],
        odata_inquiry_options={
            "SalesOrders": {
                "replication_key": " LastModifiedOn ",
                "primary_keys": ["OrderType", "OrderNbr"],
                "parameters": {"Status": "Open"},
            },
            "CustomerList": {},
        },
    )
    assert dict(got.odata_inquiry_options) == {
        "SalesOrders": {
            "replication_key": "LastModifiedOn",
            "primary_keys": ("OrderType", "OrderNbr"),
            "parameters": {"Status": "Open"},
        },
        "CustomerList": {"replication_key": None, "primary_keys": (), "parameters": {}},
    }


def test_inquiry_options_for_an_inquiry_not_selected_are_refused() -> None:
    text = _refused(odata_inquiries=["SalesOrders"], odata_inquiry_options={"Other": {}})
    assert text == (
        "odata_inquiry_options.Other: Other is not in odata_inquiries (SalesOrders); add it "
        "there or drop this"
    )
    # With "all" any inquiry may have options: discovery checks that it exists.
    every = _settings(odata_inquiries="all", odata_inquiry_options={"Other": {}})
    assert "Other" in every.odata_inquiry_options


@pytest.mark.parametrize(
    ("options", "start"),
    [
        ({"primary_keys": "OrderNbr"}, "odata_inquiry_options.G.primary_keys must be a list"),
        ({"parameters": {"Status": 1}}, "odata_inquiry_options.G.parameters must be an object"),
        ({"parameters": ["Open"]}, "odata_inquiry_options.G.parameters must be an object"),
        ({"replication_key": 5}, "odata_inquiry_options.G.replication_key must be a column"),
        ({"replication_keys": "X"}, "odata_inquiry_options.G must be an object with only"),
        ("X", "odata_inquiry_options.G must be an object with only"),
    ],
)
def test_bad_inquiry_options_get_one_line_naming_the_option(options: object, start: str) -> None:
    text = _refused(odata_inquiries=["G"], odata_inquiry_options={"G": options})
    assert text.startswith(start), text


def test_deletion_settings_are_read() -> None:
    got = _settings(
        track_deletions=True,
        deleted_records_keep_days=2.5,
        deletion_dacs={"Shipment": "SOShipment", "Customer": ""},
    )
    assert got.track_deletions is True
    assert got.deleted_records_keep_days == 2.5
    assert dict(got.deletion_dacs) == {"Shipment": "SOShipment", "Customer": ""}


def test_streams_overlap_unless_turned_off() -> None:
    assert _settings().overlap_streams is True
    assert _settings(overlap_streams=False).overlap_streams is False


def test_bad_deletion_settings_are_refused() -> None:
    assert _refused(deleted_records_keep_days=0).startswith(
        "deleted_records_keep_days must be more than 0"
    )
    assert _refused(deletion_dacs={"Shipment": 3}).startswith("deletion_dacs must map REST")


def test_the_schema_refuses_bad_shapes_in_one_line_before_the_settings() -> None:
    from tap_acumatica import cli  # noqa: PLC0415
    from tap_acumatica.settings_schema import config_schema  # noqa: PLC0415

    schema = config_schema()
    config: dict[str, Any] = {
        **BASE,
        "auth_method": "cookie",
        "username": "u",
        "password": "p",
        "odata_inquiries": ["G"],
        "odata_inquiry_options": {"G": {"primary_keys": "OrderNbr"}},
    }
    with pytest.raises(ConfigError) as info:
        cli.validate_config(config, schema)
    assert str(info.value) == (
        "invalid config: odata_inquiry_options.G.primary_keys: 'OrderNbr' is not of type "
        "'array', 'null'"
    )
    config["odata_inquiry_options"] = {"G": {"replication_key": "A"}}
    config["deleted_records_keep_days"] = -1
    with pytest.raises(ConfigError) as info:
        cli.validate_config(config, schema)
    assert "deleted_records_keep_days: -1 is less than or equal to the minimum of 0" in str(
        info.value
    )
