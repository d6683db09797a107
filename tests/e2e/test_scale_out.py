"""Scale-out end to end: three tenants x two stream groups under Dagster's multiprocess executor.

The Dagster code location in orchestration/ runs ``dagster job execute -m orchestration -j
acumatica_sync`` with the example tenants file (tenants.example.yml, one tenant limited to one
seat here): three sandboxes (tenants), each with its authorisation-code chain seeded once in a
shared PostgreSQL token store; Meltano's system database (state, run records) in the same
PostgreSQL. Checked: every tenant's records match its ground truth, the runs overlapped (but a
one-seat tenant's never did), a run that failed mid-way was retried by Dagster and resumed from
Meltano's saved state, no refresh token was rejected, no seat was left open, and a second run,
after a few changes per tenant, brings only those.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml

from tap_acumatica.auth.pgstore import PgTokenStore
from tap_acumatica.auth.tokenstore import StoredTokens, TokenSet, fingerprint
from tests.e2e.meltano_support import (
    SECRET_PREFIXES,
    Meltano,
    bookmark,
    change_value,
    need,
    parse_ts,
    truth_of,
)
from tests.e2e.pg import PostgresServer
from tests.support import REPO, Sandbox, password_grant, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

TENANTS = ("north", "south", "west")
GROUPS = {"core": ("Customer", "StockItem"), "orders": ("SalesOrder",)}
ONE_SEAT = "west"  # its two runs must never overlap
RETRIED = "north"  # its core run fails once, then resumes from Meltano's state
DAGSTER_ARGS = ("job", "execute", "-m", "orchestration", "-j", "acumatica_sync")
MUTATED = {"Customer": "core", "SalesOrder": "orders"}


def db_url(pg: PostgresServer) -> str:
    return f"postgresql+psycopg://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}"


def seed_chain(box: Sandbox, url: str) -> None:
    """A fresh refresh-token chain in the tenant's row, no access token (as tests/auth do)."""
    creds = box.credentials()
    key = fingerprint(creds["client_id"], box.url, "Company")
    body = password_grant(box)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    requests.post(f"{box.url}/entity/auth/logout", headers=headers, timeout=10)
    store = PgTokenStore(url, key=key)
    with store.lock():
        store.write(StoredTokens(TokenSet(None, body["refresh_token"]), key))


def tenants_file(tmp_path: Path) -> Path:
    """The example file, with one tenant held to a single seat."""
    example = yaml.safe_load((REPO / "orchestration" / "tenants.example.yml").read_text())
    for tenant in example["tenants"]:
        if tenant["name"] == ONE_SEAT:
            tenant["seats"] = 1
        if tenant["name"] == RETRIED:  # one 500 ends the tap's run (no retry of its own)
            tenant["env"]["TAP_ACUMATICA_MAX_TRIES"] = "1"
    path = tmp_path / "tenants.yml"
    path.write_text(yaml.safe_dump(example))
    return path


def dagster_run(env: dict[str, str], pg: PostgresServer) -> tuple[float, str]:
    """``dagster job execute -m orchestration -j acumatica_sync``: wall-clock seconds, output."""
    started = time.monotonic()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *DAGSTER_ARGS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=700,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    text = proc.stdout + proc.stderr
    (Path(env["DAGSTER_HOME"]) / f"run-{time.time_ns()}.log").write_text(text)  # for a post-mortem
    assert proc.returncode == 0, text[-8000:]
    assert "RUN_SUCCESS" in text, text[-4000:]
    for prefix in SECRET_PREFIXES:
        assert prefix not in text, f"a {prefix}… secret leaked into Dagster's output"
    assert pg.password not in text, "the database password leaked into Dagster's output"
    return time.monotonic() - started, text


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def meltano_runs(pg: PostgresServer) -> dict[str, list[tuple[datetime, datetime]]]:
    """Meltano's own run records in the shared system database: state id → (start, end)."""
    with psycopg.connect(pg.dsn, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT job_name, started_at, ended_at FROM runs WHERE state = 'SUCCESS'"
        ).fetchall()
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for job, start, end in rows:
        out.setdefault(job, []).append((start, end))
    return out


def windows_of(box: Sandbox, entity: str) -> list[tuple[datetime, datetime]]:
    """The [ge, lt) bounds of every window of ``entity`` the sandbox was asked for."""
    found = (
        re.search(r"ge (\S+) and LastModifiedDateTime lt (\S+)", q["params"].get("$filter", ""))
        for q in box.stats()["queries"]
        if q["path"].endswith(f"/{entity}")
    )
    return [(parse_ts(m.group(1)), parse_ts(m.group(2))) for m in found if m]


def overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_three_tenants_two_groups_under_dagster_then_only_changes(
    meltano: Meltano,
    sandbox_factory: Callable[..., Sandbox],
    pg: PostgresServer,
    tmp_path: Path,
) -> None:
    need(importlib.util.find_spec("dagster") is not None, "dagster missing: uv sync --all-groups")
    url = db_url(pg)
    out = tmp_path / "out"
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **meltano.env,
        "MELTANO_DATABASE_URI": url,  # Meltano's state and the token chains in one PostgreSQL
        "ACUMATICA_TENANTS_FILE": str(tenants_file(tmp_path)),
        "SCALE_OUTPUT": str(out),
        "DAGSTER_HOME": str(home),
        "MELTANO_EXECUTABLE": str(meltano.exe),
    }
    boxes: dict[str, Sandbox] = {}
    for n, name in enumerate(TENANTS):
        box = sandbox_factory(
            "--seed", str(21 + n), "--records", "60", "--burst-size", "40", "--api-seats", "2"
        )
        seed_chain(box, url)
        creds = box.credentials()
        env[f"{name.upper()}_BASE_URL"] = box.url
        env[f"{name.upper()}_CLIENT_ID"] = str(creds["client_id"])
        env[f"{name.upper()}_CLIENT_SECRET"] = str(creds["client_secret"])
        boxes[name] = box
    env.pop("TAP_ACUMATICA_OAUTH_SETTINGS_LOCATION", None)

    # One tenant's first StockItem request fails: its core step fails once, mid-way (after
    # Customer, the group's first stream, committed its bookmarks; issue 15 reads a small
    # stream in one window, so the way to fail "after some saved windows" is a later stream).
    fault = {"script": ["http_500"], "entities": ["StockItem"], "skip_first": 0, "max_faults": 1}
    boxes[RETRIED].admin("POST", "faults", fault)
    first, log = dagster_run(env, pg)
    print(f"first Dagster run: {first:.1f} s")
    assert boxes[RETRIED].stats()["faults"] == {"http_500": 1}
    assert f"{RETRIED}__core - STEP_UP_FOR_RETRY" in log, "the failed step was not retried"
    windows = windows_of(boxes[RETRIED], "Customer")
    retry_start = max(end for _, end in windows)  # the retry's sync start: its windows' end
    resumed_from = min(start for start, end in windows if end == retry_start)
    assert resumed_from > min(start for start, _ in windows), "the retry started over"
    runs = meltano_runs(pg)
    state_ids = {f"demo:tap-acumatica-to-target-jsonl:{t}-{g}" for t in TENANTS for g in GROUPS}
    assert state_ids <= set(runs), f"one Meltano run per tenant x group: {sorted(runs)}"
    spans = {sid: runs[sid][0] for sid in state_ids}
    pairs = [(a, b) for a in spans for b in spans if a < b]
    assert any(overlap(spans[a], spans[b]) for a, b in pairs), f"the runs never overlapped: {spans}"
    west = [spans[sid] for sid in state_ids if f":{ONE_SEAT}-" in sid]
    assert not overlap(*west), f"{ONE_SEAT} has one seat, but its two runs overlapped"

    counts: dict[tuple[str, str], int] = {}
    for name, box in boxes.items():
        for group, streams in GROUPS.items():
            folder = out / name / group
            assert {p.stem for p in folder.glob("*.jsonl")} == set(streams), f"{name}/{group}"
            for stream in streams:
                rows = read_lines(folder / f"{stream}.jsonl")
                truth = truth_of(box, stream)
                assert {r["id"] for r in rows} == set(truth), f"{name} {stream} differs"
                if (name, stream) != (RETRIED, "Customer"):
                    assert len(rows) == len(truth), f"{name} {stream}: duplicates"
                counts[name, stream] = len(rows)
        stats = box.stats()
        assert stats["refresh_tokens"]["rejected"] == 0, f"{name}: invalid_grant"
        assert wait_for(lambda b=box: b.stats()["active_sessions"] == 0, timeout=30), name

    # A few changes per tenant, just after each group's bookmark.
    changed: dict[tuple[str, str], set[str]] = {}
    since: dict[tuple[str, str], datetime] = {}
    for name, box in boxes.items():
        for stream, group in MUTATED.items():
            state = meltano.state(f"demo:tap-acumatica-to-target-jsonl:{name}-{group}", env)
            since[name, stream] = bookmark(state, stream)
            at = (since[name, stream] + timedelta(seconds=1)).isoformat()
            ids: set[str] = set()
            for op, count in (("update", 2), ("insert", 1)):
                reply = box.admin(
                    "POST",
                    "mutate",
                    {"entity": stream, "op": op, "count": count, "at": at.replace("+00:00", "Z")},
                )
                ids |= set(reply["ids"])
            changed[name, stream] = ids

    second, _ = dagster_run(env, pg)
    print(f"second Dagster run: {second:.1f} s")
    for name, box in boxes.items():
        for stream, group in MUTATED.items():
            rows = read_lines(out / name / group / f"{stream}.jsonl")[counts[name, stream] :]
            got = {r["id"]: change_value(r) for r in rows}
            truth = truth_of(box, stream)
            assert changed[name, stream] <= set(got), f"{name} {stream}: a change was missed"
            for rid, value in got.items():
                assert value is not None
                assert value >= since[name, stream], f"{name} {stream}: {rid} is old"
                assert truth[rid] == value
            assert len(got) < len(truth), f"{name} {stream}: the second run re-read everything"
        assert box.stats()["refresh_tokens"]["rejected"] == 0, f"{name}: invalid_grant"
        assert wait_for(lambda b=box: b.stats()["active_sessions"] == 0, timeout=30), name


def test_tenants_file_expands_variables_per_run_and_builds_each_command(tmp_path: Path) -> None:
    need(importlib.util.find_spec("dagster") is not None, "dagster missing: uv sync --all-groups")
    # Imported here: the package's __init__ builds the Dagster definitions.
    from orchestration import runs  # noqa: PLC0415
    from orchestration.tenants import TenantsFileError, load  # noqa: PLC0415

    spec = {
        "meltano_environment": "prod",
        "loader": "target-postgres",
        "loader_env": {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "acumatica_{tenant}"},
        "meltano_project_dir": "project",
        "groups": {"orders": ["SalesOrder.*"]},
        "tenants": [{"name": "acme", "seats": 3, "env": {"TAP_ACUMATICA_CLIENT_ID": "${ID}"}}],
    }
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(spec))
    plan = load(path)
    acme = plan.tenants[0]
    assert (plan.concurrency, plan.project_dir) == (3, tmp_path / "project")
    with pytest.raises(TenantsFileError, match=r"\$\{ID\}, which is not set"):
        runs.run_env(plan, acme, "orders", {})
    env = runs.run_env(plan, acme, "orders", {"ID": "abc@Acme"})
    assert env["TAP_ACUMATICA_CLIENT_ID"] == "abc@Acme"
    assert env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] == "acumatica_acme"
    assert json.loads(env["TAP_ACUMATICA__SELECT"]) == ["SalesOrder.*"]
    own = Path(env["MELTANO_SYS_DIR_ROOT"])
    assert own == tmp_path / "project" / ".meltano" / "scale-out" / "acme-orders"
    assert (own / "extractors").resolve() == tmp_path / "project" / ".meltano" / "extractors"
    assert runs.sync_command(plan, acme, "orders")[1:] == (
        "--environment=prod",
        "run",
        "--state-id-suffix=acme-orders",
        "tap-acumatica",
        "target-postgres",
    )
    assert (
        runs.state_id(plan, acme, "orders") == "prod:tap-acumatica-to-target-postgres:acme-orders"
    )
    spec["tenants"] = [{"name": "Acme Corp", "env": {}}]
    path.write_text(json.dumps(spec))
    with pytest.raises(TenantsFileError, match="lower-case"):
        load(path)


def test_the_documented_and_the_example_tenants_files_load() -> None:
    need(importlib.util.find_spec("dagster") is not None, "dagster missing: uv sync --all-groups")
    from orchestration.tenants import EXAMPLE, load, parse  # noqa: PLC0415

    doc = (REPO / "docs" / "scale-out.md").read_text(encoding="utf-8")
    block = doc.split("## The tenants file", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    documented = parse(yaml.safe_load(block))
    assert [t.name for t in documented.tenants] == ["acme", "globex"]
    assert documented.tenants[1].groups == {"everything": ("Customer.*", "SalesOrder.*")}
    example = load(EXAMPLE)
    assert [(t.name, t.seats) for t in example.tenants] == [(n, 2) for n in TENANTS]
    assert {g: tuple(p.split(".")[0] for p in v) for g, v in example.tenants[0].groups.items()} == (
        GROUPS
    )
