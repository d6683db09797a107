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
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.e2e.meltano_support import (
    INCREMENTAL,
    SANDBOX_ARGS,
    SESSION_IDS,
    STREAMS,
    Meltano,
    bookmark,
    change_value,
    mutate_after,
    pg_env,
    read_jsonl,
    truth_of,
)
from tests.e2e.pg import PostgresServer
from tests.support import REPO, Sandbox, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


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
