"""The token store: location rules, atomic 0600 writes, config write-back, the file lock, and
the chain's age that tells an expired refresh token from a revoked one."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from tap_acumatica.auth.base import AcumaticaAuthenticator
from tap_acumatica.auth.expiry import rejected_chain_text
from tap_acumatica.auth.factory import build_authenticator
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
from tests.support import REPO, Sandbox, assert_no_secrets, password_grant

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


# -- the chain's age: an expired refresh token is told from a revoked one ------------------

DAY = 86400.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_old_store_without_signed_in_at_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    old = {"format": "tap-acumatica/oauth-tokens/v1", "refresh_token": "sbxrt-old", "scope": "api"}
    path.write_text(json.dumps(old))
    got = TokenStore(path).read()
    assert got is not None
    assert got.tokens.signed_in_at is None
    assert got.tokens.refresh_token == "sbxrt-old"


@pytest.mark.parametrize(
    ("signed", "issued", "says", "not_says"),
    [
        (31.2, 31.2, "has expired (invalid_grant; signed in 31 days ago; Acumatica's", "revoked"),
        (40.0, 2.0, "signed in 40 days ago; last refreshed 2 days ago; Acumatica's", "revoked"),
        (None, 33.0, "has expired (invalid_grant; token issued 33 days ago;", "revoked"),
        (20.0, 16.0, "expired if the connected application uses sliding expiration", "has exp"),
        (2.5, 1.0, "revoked on Acumatica, or already used by another copy", "expired"),
        (0.2, 0.2, "already used by another copy of the token store; signed in less than", "exp"),
        (None, None, "(invalid_grant: expired, revoked or already used)", "days"),
    ],
)
def test_rejected_chain_text_by_age(
    signed: float | None, issued: float | None, says: str, not_says: str
) -> None:
    now = time.time()
    tokens = TokenSet(
        refresh_token="sbxrt-x",
        issued_at=None if issued is None else now - issued * DAY,
        signed_in_at=None if signed is None else now - signed * DAY,
    )
    text = rejected_chain_text(tokens, now)
    assert says in text
    assert not_says not in text


def _seed(box: Sandbox, path: Path, *, signed_days: float, issued_days: float) -> None:
    """A store (written as JSON, as any version reads it) holding a chain of the given age."""
    c = box.credentials()
    body = password_grant(box)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    requests.post(f"{box.url}/entity/auth/logout", headers=headers, timeout=10)
    now = time.time()
    doc = {
        "format": "tap-acumatica/oauth-tokens/v1",
        "fingerprint": fingerprint(c["client_id"], box.url, "Company"),
        "access_token": None,
        "refresh_token": body["refresh_token"],
        "issued_at": _iso(now - issued_days * DAY),
        "expires_at": _iso(now - issued_days * DAY + 3600),
        "signed_in_at": _iso(now - signed_days * DAY),
        "scope": "api offline_access",
    }
    path.write_text(json.dumps(doc))


def _refresh_run(box: Sandbox, store: Path, tmp_path: Path) -> str:
    """A non-interactive run that must refresh; its last stderr line."""
    c = box.credentials()
    cfg = {
        "base_url": box.url,
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "initiate_oauth": "REFRESH",
        "oauth_settings_location": str(store),
        "entities": ["Customer"],
    }
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "tap_acumatica", "--config", str(tmp_path / "c.json"), "--discover"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert_no_secrets(proc.stdout + proc.stderr, box)
    return proc.stderr.strip().splitlines()[-1]


def test_an_expired_chain_says_expired(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = sandbox_factory("--records", "5")  # --refresh-lifetime-days 30: the default
    store = tmp_path / "t.json"
    _seed(box, store, signed_days=31, issued_days=31)
    box.admin("POST", "clock", {"advance_seconds": 31 * DAY})  # the server's 31 days
    line = _refresh_run(box, store, tmp_path)
    assert "the refresh token has expired (invalid_grant; signed in 31 days ago;" in line
    assert "live 30 days from sign-in" in line
    assert "--login --config" in line
    assert "revoked" not in line
    assert box.stats()["refresh_tokens"]["rejected"] == 1


def test_a_revoked_young_chain_is_not_called_expired(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = sandbox_factory("--records", "5")
    store = tmp_path / "t.json"
    _seed(box, store, signed_days=2, issued_days=2)
    box.admin("POST", "revoke", {"what": "refresh_tokens"})  # SM303010's "Revoke Access"
    line = _refresh_run(box, store, tmp_path)
    assert "revoked on Acumatica, or already used" in line
    assert "signed in 2 days ago" in line
    assert "expired" not in line
    assert "--login --config" in line


def test_a_lapsed_sliding_chain_names_sliding_expiration(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = sandbox_factory("--records", "5", "--sliding-days", "15")
    store = tmp_path / "t.json"
    _seed(box, store, signed_days=16, issued_days=16)
    box.admin("POST", "clock", {"advance_seconds": 16 * DAY})
    line = _refresh_run(box, store, tmp_path)
    assert "signed in 16 days ago" in line
    assert "sliding expiration (15 unused days by default)" in line
    assert "--login --config" in line


def _one_call(a: AcumaticaAuthenticator, box: Sandbox) -> None:
    url = f"{box.url}/entity/Default/24.200.001/Customer"
    assert requests.get(url, params={"$top": "1"}, auth=a, timeout=30).status_code == 200
    a.sign_out()


def test_the_chain_start_is_recorded_by_a_grant_and_kept_by_refreshes(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = sandbox_factory("--records", "5")
    c = box.credentials()
    base = {
        "base_url": box.url,
        "client_id": c["client_id"],
        "client_secret": c["client_secret"],
        "oauth_settings_location": str(tmp_path / "t.json"),
    }
    grant = {**base, "auth_method": "oauth_password", "username": "admin"}
    before = time.time()
    _one_call(build_authenticator({**grant, "password": c["password"]}), box)
    stored = TokenStore(tmp_path / "t.json").read()
    assert stored is not None
    signed = stored.tokens.signed_in_at
    assert signed is not None
    assert before - 2 <= signed <= time.time() + 2
    # A refresh continues the chain: a new token, the same start.
    doc = json.loads((tmp_path / "t.json").read_text())
    doc["expires_at"] = _iso(time.time() - 10)
    (tmp_path / "t.json").write_text(json.dumps(doc))
    _one_call(build_authenticator({**base, "initiate_oauth": "REFRESH"}), box)
    again = TokenStore(tmp_path / "t.json").read()
    assert again is not None
    assert again.tokens.refresh_token != stored.tokens.refresh_token
    assert again.tokens.signed_in_at == signed
    assert box.stats()["refresh_tokens"] == {"issued": 2, "consumed": 1, "rejected": 0}
