"""End to end: real ``meltano run`` of this repo's meltano.yml against the sandbox.

* ``tap-acumatica target-jsonl``: what lands matches the sandbox's ground truth
  (``/_sandbox/records``), record for record; a second run, after changes made through
  ``POST /_sandbox/mutate``, brings exactly the changed records, through Meltano's saved state.
* ``tap-acumatica target-postgres`` into a real PostgreSQL (tests/e2e/pg.py): row counts per table
  match the ground truth, expanded details land as JSON, and a second run upserts only the changes.

Meltano installs the tap (``pip_url: -e .``) and the pinned loaders from PyPI into the repo's
.meltano/ (git-ignored) once per session; its system database (state) is a temp file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.e2e.pg import (
    REQUIRE_ALL,
    PostgresServer,
    PostgresUnavailableError,
    postgres_server,
)
from tests.support import REPO, Sandbox, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

# The demo environment's `select` in meltano.yml; Subaccount has no change field (FULL_TABLE).
STREAMS = ("Customer", "SalesOrder", "StockItem", "Subaccount")
#: The default sandbox gives Subaccount session-scoped ids (``--unstable-ids``, api.md §3); the
#: tap keys it by its natural key (docs/acumatica-api.md §2.1).
SESSION_IDS = {"Subaccount": "SubaccountCD"}
INCREMENTAL = ("Customer", "SalesOrder", "StockItem")
CHANGE_FIELDS = ("LastModifiedDateTime", "LastModified")
SECRET_PREFIXES = ("sbxpw-", "sbxcs-", "sbxat-", "sbxrt-", "sbxcd-", "sbxck-")
SANDBOX_ARGS = ("--seed", "11", "--records", "60", "--burst-size", "40")


def need(condition: bool, why: str) -> None:
    """Skip when something optional is missing, but fail in CI (TAP_ACUMATICA_REQUIRE_ALL=1)."""
    if not condition:
        if REQUIRE_ALL:
            pytest.fail(why)
        pytest.skip(why)


_FRACTION = re.compile(r"\.(\d+)")


def parse_ts(value: str) -> datetime:
    """An ISO-8601 date-time (``Z`` or an offset) as an aware UTC datetime."""
    text = value.replace("Z", "+00:00")
    # Python 3.10's fromisoformat wants exactly 3 or 6 fraction digits.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, f"date-time without offset: {value!r}"
    return parsed.astimezone(timezone.utc)


def truth_of(sbx: Sandbox, stream: str) -> dict[str, datetime | None]:
    """Ground truth: live record id → change timestamp (None for entities without one)."""
    return {
        r["id"]: parse_ts(r["changed"]) if r.get("changed") else None
        for r in sbx.ground_truth(stream)["live"]
    }


def change_value(record: dict[str, Any]) -> datetime | None:
    for name in CHANGE_FIELDS:
        if record.get(name):
            return parse_ts(str(record[name]))
    return None


@dataclass
class Meltano:
    """Runs meltano from the project's venv with a private system database."""

    exe: Path
    home: Path
    env: dict[str, str]
    logs: list[str] = field(default_factory=list)

    def __call__(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            [str(self.exe), "--environment=demo", *args],
            cwd=REPO,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        self.logs.append(proc.stderr)
        for prefix in SECRET_PREFIXES:  # the sandbox's secrets never reach Meltano's output
            assert prefix not in proc.stdout + proc.stderr, f"a {prefix}… secret leaked"
        assert proc.returncode == 0, (
            f"meltano {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-6000:]}"
        )
        return proc.stdout

    def state(self, state_id: str, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
        out = self("state", "get", state_id, extra_env=extra_env)
        return json.loads(out[out.index("{") :])


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    """Meltano with the tap and both loaders installed (once; later sessions reuse .meltano/)."""
    exe = Path(sys.executable).parent / "meltano"
    need(exe.exists(), "meltano is not installed in this environment (uv sync --all-groups)")
    home = tmp_path_factory.mktemp("meltano")
    env = {
        **os.environ,
        "MELTANO_DATABASE_URI": f"sqlite:///{home}/meltano.db",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_LOG_LEVEL": "info",
    }
    m = Meltano(exe, home, env)
    # A dry run installs whatever is missing or changed (Meltano compares pip_url fingerprints).
    m("run", "--dry-run", "tap-acumatica", "target-jsonl", "tap-acumatica", "target-postgres")
    return m


@pytest.fixture
def sandbox_env(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    """A private sandbox and the environment that points the demo environment at it."""
    sbx = sandbox_factory(*SANDBOX_ARGS)
    creds = sbx.credentials()
    env = {
        "ACUMATICA_SANDBOX_URL": sbx.url,
        "TAP_ACUMATICA_TENANT": str(creds["tenant"]),
        "TAP_ACUMATICA_CLIENT_ID": str(creds["client_id"]),
        "TAP_ACUMATICA_CLIENT_SECRET": str(creds["client_secret"]),
        "TAP_ACUMATICA_USERNAME": str(creds["username"]),
        "TAP_ACUMATICA_PASSWORD": str(creds["password"]),
        # Keep the developer's demo token store untouched.
        "TAP_ACUMATICA_OAUTH_SETTINGS_LOCATION": str(tmp_path / "tokens.json"),
        # Exact second-run expectations: re-read nothing before the bookmark.
        "TAP_ACUMATICA_LOOKBACK_MINUTES": "0",
        # State of this test only (state ids repeat across tests).
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
    }
    yield sbx, env
    # Every run signed out: no API seat left behind.
    assert sbx.stats()["active_sessions"] == 0


def read_jsonl(folder: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            out[path.stem] = [json.loads(line) for line in fh if line.strip()]
    return out


def bookmark(state: dict[str, Any], stream: str) -> datetime:
    """The replication-key bookmark Meltano saved for ``stream``."""
    entry = state["singer_state"]["bookmarks"][stream]
    value = entry.get("replication_key_value")
    assert value, f"no bookmark saved for {stream}: {entry}"
    return parse_ts(str(value))


def mutate_after(
    sbx: Sandbox, state: dict[str, Any], *, inserts: int = 2, updates: int = 3
) -> dict[str, set[str]]:
    """Change records just after each stream's bookmark (before the next run's sync start)."""
    changed: dict[str, set[str]] = {}
    for stream in ("Customer", "SalesOrder"):
        at = (bookmark(state, stream) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        ids: set[str] = set()
        for op, count in (("update", updates), ("insert", inserts)):
            reply = sbx.admin(
                "POST", "mutate", {"entity": stream, "op": op, "count": count, "at": at}
            )
            ids |= set(reply["ids"])
        changed[stream] = ids
    return changed


def test_meltano_run_into_jsonl_matches_ground_truth_then_only_changes(
    meltano: Meltano, sandbox_env: tuple[Sandbox, dict[str, str]], tmp_path: Path
) -> None:
    sbx, env = sandbox_env
    out1, out2 = tmp_path / "run1", tmp_path / "run2"

    meltano(
        "run",
        "tap-acumatica",
        "target-jsonl",
        extra_env={**env, "TARGET_JSONL_DESTINATION_PATH": str(out1)},
    )
    landed = read_jsonl(out1)
    assert set(landed) == set(STREAMS), "exactly the streams selected in meltano.yml"
    for stream in STREAMS:
        truth = truth_of(sbx, stream)
        rows = landed[stream]
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)), f"{stream}: duplicates within one run"
        if stream in SESSION_IDS:  # ids of one session: compared by natural key and count
            keys = {r[SESSION_IDS[stream]] for r in rows}
            assert len(keys) == len(rows) == len(truth), f"{stream}: landed rows differ"
            continue
        assert set(ids) == set(truth), f"{stream}: landed ids differ from the sandbox's"
        if stream in INCREMENTAL:
            for row in rows:
                assert change_value(row) == truth[row["id"]], f"{stream} {row['id']}"
    # Expanded details arrive nested, as arrays of objects with unwrapped values.
    details = [d for order in landed["SalesOrder"] for d in (order.get("Details") or [])]
    assert details, "SalesOrder.Details expanded (meltano.yml demo: expand)"
    assert all(isinstance(d, dict) and "_links" not in d for d in details)
    assert not any(isinstance(v, dict) and "value" in v for d in details for v in d.values())

    state = meltano.state("demo:tap-acumatica-to-target-jsonl", env)
    changed = mutate_after(sbx, state)

    meltano(
        "run",
        "tap-acumatica",
        "target-jsonl",
        extra_env={**env, "TARGET_JSONL_DESTINATION_PATH": str(out2)},
    )
    second = read_jsonl(out2)
    for stream in INCREMENTAL:
        since = bookmark(state, stream)
        truth = truth_of(sbx, stream)
        got = {r["id"]: change_value(r) for r in second.get(stream, [])}
        assert changed.get(stream, set()) <= set(got), f"{stream}: a change was missed"
        for rid, value in got.items():
            assert value is not None
            assert value >= since, f"{stream}: {rid} is older than the bookmark"
            assert truth[rid] == value
        assert len(got) < len(truth), f"{stream}: the second run re-read everything"
    # FULL_TABLE streams are read whole every time.
    assert len(second["Subaccount"]) == len(sbx.ground_truth("Subaccount")["live"])


def test_quick_start_demo_runs_and_reports_what_landed(meltano: Meltano) -> None:
    """README quick-start command 1 (``./scripts/demo.sh`` = this module under uv)."""
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--records", "30", "--incremental"],
        cwd=REPO,
        env={**meltano.env, "MELTANO_DATABASE_URI": f"sqlite:///{meltano.home}/demo.db"},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    rows = re.findall(r"^  (\w+) +(\d+) +(\d+)  output/demo/\1\.jsonl$", out, re.MULTILINE)
    first = {stream: (int(n), int(live)) for stream, n, live in rows[: len(STREAMS)]}
    assert set(first) == set(STREAMS)
    assert all(n == live for n, live in first.values()), first
    second = {stream: int(n) for stream, n, _ in rows[len(STREAMS) :]}
    assert second.get("Customer") == 3, "the incremental run brings exactly the 3 updated"
    assert "SalesOrder" not in second
    assert re.search(r"^  Customer +LastModifiedDateTime >= \d{4}-", out, re.MULTILINE), "bookmarks"
    assert "Sandbox stopped." in out
    # The preflight names the unreadable streams, why, and what to do (403, module not set up).
    employee = next(line for line in out.splitlines() if line.strip().startswith("Employee"))
    assert " no " in employee
    assert "403" in employee
    project = next(line for line in out.splitlines() if line.strip().startswith("Project"))
    assert "Preferences" in project
    assert "API sessions left open on the sandbox: 0" in out
    for prefix in ("sbxpw-", "sbxcs-", "sbxat-", "sbxrt-"):
        assert prefix not in out + proc.stderr


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    try:
        with postgres_server(database="acumatica") as server:
            yield server
    except PostgresUnavailableError as exc:
        need(False, str(exc))


def pg_env(server: PostgresServer) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_HOST": server.host,
        "TARGET_POSTGRES_PORT": str(server.port),
        "TARGET_POSTGRES_USER": server.user,
        "TARGET_POSTGRES_PASSWORD": server.password,
        "TARGET_POSTGRES_DATABASE": server.database,
    }


def test_meltano_run_into_postgres_counts_json_details_and_upserts_changes(
    meltano: Meltano, sandbox_env: tuple[Sandbox, dict[str, str]], pg: PostgresServer
) -> None:
    sbx, env = sandbox_env
    run_env = {**env, **pg_env(pg)}
    meltano("run", "tap-acumatica", "target-postgres", extra_env=run_env)

    def one(conn: Any, query: str, *idents: str, params: list[Any] | None = None) -> Any:
        composed = sql.SQL(query).format(*(sql.Identifier(i) for i in idents))
        return conn.execute(composed, params).fetchall()

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        tables = {
            name.lower(): name
            for (name,) in one(
                conn,
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'acumatica'",
            )
        }
        for stream in STREAMS:
            [(count,)] = one(conn, "SELECT count(*) FROM acumatica.{}", tables[stream.lower()])
            assert count == len(sbx.ground_truth(stream)["live"]), stream
        so = tables["salesorder"]
        cols = {
            name.lower(): (name, udt)
            for name, udt in one(
                conn,
                "SELECT column_name, udt_name FROM information_schema.columns "
                "WHERE table_schema = 'acumatica' AND table_name = %s",
                params=[so],
            )
        }
        details_col, details_type = cols["details"]
        # target-postgres stores an array of objects as jsonb[] (one JSON document per line).
        assert details_type in ("_jsonb", "jsonb", "json"), f"details land as JSON: {details_type}"
        query = (
            "SELECT jsonb_typeof(line), line FROM acumatica.{}, unnest({}) AS line"
            if details_type == "_jsonb"
            else "SELECT jsonb_typeof(line), line FROM acumatica.{}, "
            "jsonb_array_elements({}::jsonb) AS line"
        )
        lines = one(conn, query, so, details_col)
        assert lines, "SalesOrder details landed"
        assert {kind for kind, _ in lines} == {"object"}
        assert all("id" in line and "_links" not in line for _, line in lines)

        state = meltano.state("demo:tap-acumatica-to-target-postgres", env)
        changed = mutate_after(sbx, state)
        [(before,)] = one(conn, "SELECT now()")

    meltano("run", "tap-acumatica", "target-postgres", extra_env=run_env)

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for stream in STREAMS:
            truth = sbx.ground_truth(stream)["live"]
            [(count,)] = one(conn, "SELECT count(*) FROM acumatica.{}", tables[stream.lower()])
            assert count == len(truth), f"{stream}: upserts, no duplicate rows"
        for stream, ids in changed.items():
            touched = {
                rid
                for (rid,) in one(
                    conn,
                    "SELECT id FROM acumatica.{} WHERE _sdc_batched_at >= %s",
                    tables[stream.lower()],
                    params=[before],
                )
            }
            assert ids <= touched, f"{stream}: changes missing after the second run"
            assert len(touched) < len(sbx.ground_truth(stream)["live"]), (
                f"{stream}: the second run rewrote everything"
            )


def test_code_grant_login_under_meltano_then_unattended_runs_rotate_through_the_store(
    meltano: Meltano, sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """``meltano invoke tap-acumatica --login`` once, then scheduled-style runs with REFRESH.

    Meltano deletes the tap's config file after each run and starts separate discovery and sync
    processes; the rotating refresh token must survive in the token store, and one run must
    refresh at most once (the two processes share the access token through the store).
    """
    port = free_port()
    sbx = sandbox_factory(*SANDBOX_ARGS, "--auto-approve", "admin", "--redirect-port", str(port))
    creds = sbx.credentials()
    store = tmp_path / "tokens.json"
    env = {
        **meltano.env,
        "ACUMATICA_SANDBOX_URL": sbx.url,
        "TAP_ACUMATICA_AUTH_METHOD": "oauth_code",
        "TAP_ACUMATICA_CLIENT_ID": str(creds["client_id"]),
        "TAP_ACUMATICA_CLIENT_SECRET": str(creds["client_secret"]),
        "TAP_ACUMATICA_REDIRECT_URI": f"http://127.0.0.1:{port}/callback",
        "TAP_ACUMATICA_OPEN_BROWSER": "false",
        "TAP_ACUMATICA_OAUTH_SETTINGS_LOCATION": str(store),
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
    }
    login = subprocess.Popen(
        [str(meltano.exe), "--environment=demo", "invoke", "tap-acumatica", "--login"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert login.stderr is not None
        url = None
        for line in login.stderr:
            found = re.search(r"https?://\S+/identity/connect/authorize\?\S+", line)
            if found:
                url = found.group(0)
                break
        assert url, "the tap printed the sign-in URL"
        # The person's browser: the sandbox auto-approves and redirects to the tap's listener.
        with urllib.request.urlopen(url, timeout=60) as page:
            assert page.status == 200
            assert b"Signed in" in page.read()
        _, err = login.communicate(timeout=300)
    finally:
        if login.poll() is None:
            login.kill()
    assert login.returncode == 0, err[-3000:]
    assert store.stat().st_mode & 0o777 == 0o600
    first_refresh = json.loads(store.read_text())["refresh_token"]

    # Later, unattended: the access token from --login has expired, so this run (a discovery
    # process, then a sync process) must refresh, i.e. rotate the refresh token, exactly once.
    sbx.admin("POST", "clock", {"advance_seconds": 7200})
    before = sbx.stats()["refresh_tokens"]
    out = tmp_path / "out"
    meltano(
        "run",
        "tap-acumatica",
        "target-jsonl",
        extra_env={
            **env,
            "TAP_ACUMATICA_INITIATE_OAUTH": "REFRESH",  # never interactive
            "TARGET_JSONL_DESTINATION_PATH": str(out),
        },
    )
    assert len(read_jsonl(out)["Customer"]) == len(sbx.ground_truth("Customer")["live"])
    after = sbx.stats()
    assert after["refresh_tokens"]["rejected"] == 0, "no invalid_grant anywhere"
    assert after["refresh_tokens"]["consumed"] - before["consumed"] == 1, (
        "discovery and sync shared one refresh"
    )
    assert json.loads(store.read_text())["refresh_token"] != first_refresh, "rotated and saved"
    assert after["active_sessions"] == 0
    # Tokens never travel through Singer state.
    state = json.dumps(meltano.state("demo:tap-acumatica-to-target-jsonl", env))
    assert "sbxrt-" not in state
    assert "sbxat-" not in state
