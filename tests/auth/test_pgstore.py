"""The PostgreSQL token store: real tap processes share one refresh-token chain in a real database.

``oauth_settings_location`` is a ``postgresql+psycopg://`` URL (as Meltano writes
``MELTANO_DATABASE_URI``) to the throw-away server of tests/e2e/pg.py. Every process's output is
scanned for the sandbox's secrets and for the database password.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_acumatica import redact
from tap_acumatica.auth.factory import build_authenticator
from tap_acumatica.auth.oauth import OAuthAuthenticator
from tap_acumatica.auth.pgstore import TABLE, PgTokenStore
from tap_acumatica.auth.tokenstore import StoredTokens, TokenSet, fingerprint, resolve_location
from tap_acumatica.errors import ConfigError
from tests.e2e.pg import REQUIRE_ALL, PostgresServer, PostgresUnavailableError, postgres_server
from tests.support import REPO, Sandbox, assert_no_secrets, free_port, password_grant, wait_for

psycopg = pytest.importorskip("psycopg")

TAP = [sys.executable, "-m", "tap_acumatica"]
DEBUG = {"LOGLEVEL": "DEBUG", "TAP_ACUMATICA_LOGLEVEL": "DEBUG"}
HOUR_AND_MORE = 3700  # past the sandbox's one-hour access tokens


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    try:
        with postgres_server(database="tokens") as server:
            yield server
    except PostgresUnavailableError as exc:
        if REQUIRE_ALL:
            raise
        pytest.skip(str(exc))


def url(pg: PostgresServer, *, password: str | None = None, port: int | None = None) -> str:
    secret = pg.password if password is None else password
    return f"postgresql+psycopg://{pg.user}:{secret}@{pg.host}:{port or pg.port}/{pg.database}"


class Tenant:
    """A sandbox, its client and the PostgreSQL row that holds its chain."""

    def __init__(self, box: Sandbox, pg: PostgresServer) -> None:
        self.box, self.pg = box, pg
        self.c = box.credentials()
        self.key = fingerprint(self.c["client_id"], box.url, "Company")
        self.store = PgTokenStore(url(pg), key=self.key)
        self.redirect_uri = "http://127.0.0.1:1/callback"

    def seed(self) -> str:
        """A fresh chain in the row (no access token: the next run must refresh)."""
        body = password_grant(self.box)
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        requests.post(f"{self.box.url}/entity/auth/logout", headers=headers, timeout=10)
        with self.store.lock():
            self.store.write(StoredTokens(TokenSet(None, body["refresh_token"]), self.key))
        return str(body["refresh_token"])

    def config(self, directory: Path, location: str | None = None, **extra: Any) -> Path:
        cfg = {
            "base_url": self.box.url,
            "client_id": self.c["client_id"],
            "client_secret": self.c["client_secret"],
            "initiate_oauth": "REFRESH",
            "oauth_settings_location": location or url(self.pg),
            "entities": ["Customer"],
            "start_date": "2000-01-01T00:00:00Z",
            "redirect_uri": self.redirect_uri,
            "open_browser": False,
            **extra,
        }
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "config.json"
        path.write_text(json.dumps(cfg))
        return path

    def refreshes(self) -> dict[str, int]:
        return dict(self.box.stats()["refresh_tokens"])

    def check(self, text: str) -> None:
        assert_no_secrets(text, self.box)
        assert self.pg.password not in text, "the database password leaked into the output"


def run(args: list[str], t: Tenant, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*TAP, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **DEBUG, "PYTHONPATH": str(REPO)},
        check=False,
    )
    t.check(proc.stdout + proc.stderr)
    return proc


@pytest.fixture
def tenant(sandbox_factory: Callable[..., Sandbox], pg: PostgresServer) -> Tenant:
    port = free_port()
    box = sandbox_factory(
        "--records",
        "30",
        "--api-seats",
        "100",
        "--auto-approve",
        "admin",
        "--redirect-port",
        str(port),
    )
    t = Tenant(box, pg)
    t.redirect_uri = f"http://127.0.0.1:{port}/callback"
    return t


def login(t: Tenant, cfg: Path) -> None:
    """``tap-acumatica --login`` once, an HTTP client in place of the browser (auto-approve)."""
    proc = subprocess.Popen(
        [*TAP, "--login", "--config", str(cfg)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "/identity/connect/authorize?" in line:
            requests.get(line.strip(), timeout=30)  # follows the redirect to the listener
            break
    out, err = proc.communicate(timeout=60)
    text = out + "".join(lines) + err
    t.check(text)
    assert proc.returncode == 0, text
    assert f"OAuth tokens saved to {t.store.describe}" in text


def test_concurrent_processes_refresh_once_per_expiry(
    sandbox_factory: Callable[..., Sandbox], pg: PostgresServer, tmp_path: Path
) -> None:
    # A slow token answer (1.5 s): the four processes reach the refresh while it is in flight.
    box = sandbox_factory("--records", "30", "--api-seats", "100", "--token-delay-ms", "1500")
    tenant = Tenant(box, pg)
    tenant.seed()
    cfg = tenant.config(tmp_path)
    for expiry in (1, 2):
        procs: list[subprocess.CompletedProcess[str]] = []

        def one() -> None:
            procs.append(run(["--config", str(cfg), "--discover"], tenant))  # noqa: B023

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert [p.returncode for p in procs] == [0] * 4, [p.stderr[-800:] for p in procs]
        # Four processes, one expired access token: one refresh, shared through the row.
        assert tenant.refreshes() == {"issued": 1 + expiry, "consumed": expiry, "rejected": 0}
        tenant.box.admin("POST", "clock", {"advance_seconds": HOUR_AND_MORE})
    stored = tenant.store.read()
    assert stored is not None
    assert stored.fingerprint == tenant.key
    assert wait_for(lambda: tenant.box.stats()["active_sessions"] == 0, timeout=10)


def _sessions(pg: PostgresServer, condition: str) -> int:
    """How many token-store sessions of pg_stat_activity meet ``condition``."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND " + condition  # noqa: S608
    with psycopg.connect(pg.dsn, connect_timeout=10) as conn:
        row = conn.execute(query, ("tap-acumatica token store",)).fetchone()
    return int(row[0]) if row else 0


def _holding(pg: PostgresServer) -> bool:
    """A session is inside its transaction: it holds the row across the token POST."""
    return _sessions(pg, "state = 'idle in transaction'") > 0


def _waiting(pg: PostgresServer) -> bool:
    """A session waits for the row lock another one holds."""
    return _sessions(pg, "wait_event_type = 'Lock'") > 0


def test_kill_9_during_a_slow_refresh_leaves_a_usable_chain(
    sandbox_factory: Callable[..., Sandbox], pg: PostgresServer, tmp_path: Path
) -> None:
    # The sandbox holds the token answer back 12 s and grants nothing to a client killed meanwhile.
    box = sandbox_factory("--records", "30", "--api-seats", "100", "--token-delay-ms", "12000")
    tenant = Tenant(box, pg)
    before = tenant.seed()
    cfg = tenant.config(tmp_path)
    holder = subprocess.Popen(
        [*TAP, "--config", str(cfg), "--discover"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: _holding(pg), timeout=60), "the refresh never started"
        # A second process waits for the row while the first one's refresh is in flight.
        waiter: list[subprocess.CompletedProcess[str]] = []
        thread = threading.Thread(
            target=lambda: waiter.append(run(["--config", str(cfg), "--discover"], tenant))
        )
        thread.start()
        assert wait_for(lambda: _waiting(pg), timeout=30), "the second process did not wait"
        assert holder.poll() is None
        box.admin("POST", "faults", {"token_delay_ms": 0})  # the waiter's own refresh is quick
        holder.send_signal(signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    thread.join(180)
    # The server dropped the dead holder's row lock; the waiter found the old token and used it.
    assert waiter
    assert waiter[0].returncode == 0, waiter[0].stderr[-2000:]
    stored = tenant.store.read()
    assert stored is not None
    assert stored.tokens.refresh_token not in (None, before)
    assert tenant.refreshes() == {"issued": 2, "consumed": 1, "rejected": 0}
    assert _mark(tenant) is None  # the waiter's refresh was saved: no mark left behind


def _mark(t: Tenant) -> Any:
    """The "refresh in flight" row of the tenant's key, if any."""
    with psycopg.connect(t.pg.dsn, connect_timeout=10) as conn:
        row = conn.execute(
            f"SELECT document FROM {TABLE} WHERE store_key = %s",  # noqa: S608
            (f"{t.key}:refresh-in-flight",),
        ).fetchone()
    return row[0] if row else None


def test_kill_9_after_the_server_rotated_says_the_refresh_was_cut_short(
    tenant: Tenant, tmp_path: Path
) -> None:
    # The server rotates, then holds the answer back: a client killed now loses the chain (no
    # store can prevent that), and the next run must say why, as it does with a token file.
    tenant.seed()
    cfg = tenant.config(tmp_path)
    tenant.box.admin("POST", "faults", {"token_delay_ms": 15000, "token_delay_after": True})
    holder = subprocess.Popen(
        [*TAP, "--config", str(cfg), "--discover"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: tenant.refreshes()["consumed"] == 1, timeout=60)
        assert _mark(tenant) is not None
        assert holder.poll() is None
        holder.send_signal(signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    tenant.box.admin("POST", "faults", {"token_delay_ms": 0})
    line = _one_line(run(["--config", str(cfg), "--discover"], tenant))
    assert "a refresh was interrupted before its answer was saved" in line
    assert "--login --config" in line
    assert tenant.pg.password not in line
    assert tenant.refreshes()["rejected"] == 1


def test_ten_scheduled_runs_each_in_a_fresh_directory(tenant: Tenant) -> None:
    """As CI would run it: nothing survives a run but the database, tokens expire in between.

    Authorised once with ``--login`` (which leaves a valid access token), then ten runs of a
    discovery and a sync process, each run in a new directory deleted afterwards.
    """
    first = Path(tempfile.mkdtemp(prefix="tap-acumatica-login-"))
    try:
        login(tenant, tenant.config(first, initiate_oauth="GETANDREFRESH"))
    finally:
        shutil.rmtree(first)
    assert tenant.refreshes() == {"issued": 1, "consumed": 0, "rejected": 0}
    tenant.box.admin("POST", "clock", {"advance_seconds": HOUR_AND_MORE})
    live = len(tenant.box.ground_truth("Customer")["live"])
    for n in range(1, 11):
        workdir = Path(tempfile.mkdtemp(prefix="tap-acumatica-run-"))
        try:
            cfg = tenant.config(workdir, location=url(tenant.pg))
            disc = run(["--config", str(cfg), "--discover"], tenant, cwd=workdir)
            assert disc.returncode == 0, disc.stderr[-2000:]
            (workdir / "catalog.json").write_text(disc.stdout)
            sync = run(
                ["--config", str(cfg), "--catalog", str(workdir / "catalog.json")],
                tenant,
                cwd=workdir,
            )
            assert sync.returncode == 0, sync.stderr[-2000:]
            records = [
                m
                for m in map(json.loads, sync.stdout.splitlines())
                if m["type"] == "RECORD" and m["stream"] == "Customer"
            ]
            assert len({r["record"]["id"] for r in records}) == live, f"run {n}"
        finally:
            shutil.rmtree(workdir)
        # Discovery refreshed (the access token had expired), the sync shared its token.
        assert tenant.refreshes() == {"issued": 1 + n, "consumed": n, "rejected": 0}, f"run {n}"
        tenant.box.admin("POST", "clock", {"advance_seconds": HOUR_AND_MORE})
    assert wait_for(lambda: tenant.box.stats()["active_sessions"] == 0, timeout=10)


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("tap-acumatica: "), line
    return line


def test_bad_url_wrong_password_unreachable_and_no_privileges_are_one_line(
    tenant: Tenant, tmp_path: Path
) -> None:
    tenant.seed()
    pg = tenant.pg
    wrong = tenant.config(tmp_path / "wrong", url(pg, password="not-the-password"))
    line = _one_line(run(["--config", str(wrong), "--discover"], tenant))
    assert "password authentication failed" in line
    assert f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.database}" in line
    assert "not-the-password" not in line
    down = tenant.config(tmp_path / "down", url(pg, port=free_port()))
    assert "Connection refused" in _one_line(run(["--config", str(down), "--discover"], tenant))
    bad = tenant.config(tmp_path / "bad", url(pg) + "?no_such_option=1")
    line = _one_line(run(["--config", str(bad), "--discover"], tenant))
    assert "is not a valid PostgreSQL URL" in line
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'reader-pass-1234'")
    limited = f"postgresql://reader:reader-pass-1234@{pg.host}:{pg.port}/{pg.database}"
    line = _one_line(
        run(["--config", str(tenant.config(tmp_path / "ro", limited)), "--discover"], tenant)
    )
    assert "may not lock" in line
    assert f"grant SELECT, INSERT, UPDATE, DELETE on {TABLE}" in line
    assert "reader-pass-1234" not in line
    assert tenant.refreshes()["rejected"] == 0


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg → ImportError
    store = PgTokenStore("postgresql://u:secret-pass@h/db", key="k")
    with pytest.raises(ConfigError, match=r"pip install 'tap-acumatica\[postgres\]'"):
        store.check_kind()
    assert "secret-pass" not in store.describe
    assert "secret-pass" not in repr(store)


@pytest.mark.parametrize(
    "location",
    [
        "postgresql+psycopg://tap:s3cret%2Fpass@db.example:5433/meltano",
        "postgres://tap:s3cret%2Fpass@db.example:5433/meltano",
        "postgresql://tap@db.example:5433/meltano?password=s3cret%2Fpass&sslmode=require",
    ],
)
def test_a_database_url_picks_the_table_and_hides_the_password(location: str) -> None:
    cfg = {
        "base_url": "https://erp.example.com",
        "client_id": "ABC@Company",
        "client_secret": "client-secret-value",
        "initiate_oauth": "REFRESH",
        "oauth_settings_location": location,
    }
    a = build_authenticator(cfg, config_files=[])  # no network: nothing connects yet
    assert isinstance(a, OAuthAuthenticator)
    store = a.store
    assert isinstance(store, PgTokenStore)
    assert store.key == a.fingerprint  # one row per client and instance
    assert store.describe == (
        f"postgresql://tap@db.example:5433/meltano (table {TABLE}, key {a.fingerprint})"
    )
    for text in (store.describe, repr(store), redact.redact(f"url={location} pw=s3cret/pass")):
        assert "s3cret" not in text
    with pytest.raises(ConfigError, match=r"needs auth\.pgstore"):  # never a file named like it
        resolve_location(oauth_settings_location=location, config_files=[])
