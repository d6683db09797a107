"""Helpers of the Meltano end-to-end tests: the Meltano runner, ground truth, bookmarks."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.pg import (
    REQUIRE_ALL,
    PostgresServer,
)
from tests.support import REPO, Sandbox

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


def demo_env(sbx: Sandbox, tmp_path: Path) -> dict[str, str]:
    """The environment that points meltano.yml's demo environment at ``sbx`` (private state)."""
    creds = sbx.credentials()
    return {
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


def pg_env(server: PostgresServer) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_HOST": server.host,
        "TARGET_POSTGRES_PORT": str(server.port),
        "TARGET_POSTGRES_USER": server.user,
        "TARGET_POSTGRES_PASSWORD": server.password,
        "TARGET_POSTGRES_DATABASE": server.database,
    }
