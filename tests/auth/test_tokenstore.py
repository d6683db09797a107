"""The token store: location rules, atomic 0600 writes, config write-back, the file lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tap_acumatica.auth.tokenstore import (
    CONFIG_KEY,
    MELTANO_DEFAULT,
    StoredTokens,
    TokenSet,
    TokenStore,
    fingerprint,
    resolve_location,
)
from tap_acumatica.errors import ConfigError
from tests.support import REPO

TOKENS = TokenSet("sbxat-aaaaaaaa", "sbxrt-bbbbbbbb", time.time() + 3600, "api offline_access")


def _stored(tokens: TokenSet = TOKENS) -> StoredTokens:
    return StoredTokens(tokens, fingerprint("X@Company", "https://h", "Company"))


def test_store_round_trip_mode_0600_and_utc_expiry(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sub" / "tokens.json")
    assert store.read() is None
    store.path.parent.mkdir()
    (store.path.parent / ".tokens.json.dead1234.tmp").write_text('{"half')  # a killed writer
    with store.lock():
        store.write(_stored(), meta={"client_id": "X@Company"})
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    doc = json.loads(store.path.read_text())
    assert doc["refresh_token"] == "sbxrt-bbbbbbbb"
    assert doc["expires_at"].endswith("Z")
    assert doc["client_id"] == "X@Company"
    assert len(doc["fingerprint"]) == 24
    got = store.read()
    assert got is not None
    assert got.tokens.refresh_token == TOKENS.refresh_token
    assert got.tokens.expires_at is not None
    assert abs(got.tokens.expires_at - TOKENS.expires_at) < 1  # type: ignore[operator]
    assert not [p for p in store.path.parent.iterdir() if p.suffix == ".tmp"]


def test_config_write_back_keeps_other_keys_and_mode(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    original = {"base_url": "https://h", "client_secret": "sbxcs-x", "nested": {"a": [1, 2.5]}}
    cfg.write_text(json.dumps(original))
    cfg.chmod(0o640)
    store = resolve_location(oauth_settings_location=None, config_files=[str(cfg)])
    assert store is not None
    assert store.in_config
    with store.lock():
        store.write(_stored())
    doc = json.loads(cfg.read_text())
    assert {k: doc[k] for k in original} == original
    assert list(doc)[:3] == list(original)
    assert doc[CONFIG_KEY]["refresh_token"] == "sbxrt-bbbbbbbb"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640


def test_write_back_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    store = TokenStore(link, in_config=True)
    with store.lock():
        store.write(_stored())
    assert link.is_symlink()
    assert CONFIG_KEY in json.loads(real.read_text())


def test_location_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MELTANO_PROJECT_ROOT", raising=False)
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    explicit = resolve_location(oauth_settings_location=str(tmp_path / "t.json"), config_files=[])
    assert explicit is not None
    assert explicit.path == tmp_path / "t.json"
    assert not explicit.in_config
    assert resolve_location(oauth_settings_location=None, config_files=[]) is None
    assert resolve_location(oauth_settings_location=None, config_files=["ENV"]) is None
    two = [str(cfg), str(cfg)]
    assert resolve_location(oauth_settings_location=None, config_files=two) is None
    # Meltano's temporary config file: the store goes into the project, not into that file.
    run = tmp_path / "proj" / ".meltano" / "run" / "tap-acumatica"
    run.mkdir(parents=True)
    tmp_cfg = run / "tap.123.config.json"
    tmp_cfg.write_text("{}")
    store = resolve_location(oauth_settings_location=None, config_files=[str(tmp_cfg)])
    assert store is not None
    assert store.path == tmp_path / "proj" / MELTANO_DEFAULT
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(tmp_path / "p2"))
    store = resolve_location(oauth_settings_location=None, config_files=[str(cfg)])
    assert store is not None
    assert store.path == tmp_path / "p2" / MELTANO_DEFAULT


def test_corrupt_store_is_a_clear_config_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TokenStore(path).read()


def test_lock_excludes_another_process(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    # The child holds the lock for a second: long enough that we must wait for it.
    script = (
        "import sys, time; from tap_acumatica.auth.tokenstore import TokenStore\n"
        "s = TokenStore(sys.argv[1])\n"
        "with s.lock():\n    print('locked', flush=True); time.sleep(1.0)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(store.path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with store.lock():
            waited = time.monotonic() - start
        assert waited > 0.3  # we had to wait for the other process to let go
    finally:
        proc.wait(timeout=10)
    assert os.path.exists(f"{store.path}.lock")


def test_settings_location_pointing_at_the_config_keeps_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"base_url": "https://h", "client_id": "X@Company"}))
    store = resolve_location(oauth_settings_location=str(cfg), config_files=[str(cfg)])
    assert store is not None
    assert store.in_config
    with store.lock():
        store.write(_stored())
    doc = json.loads(cfg.read_text())
    assert doc["client_id"] == "X@Company"
    assert doc[CONFIG_KEY]["refresh_token"] == "sbxrt-bbbbbbbb"
