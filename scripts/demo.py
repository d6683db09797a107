"""The quick-start demo: a real ``meltano run tap-acumatica target-jsonl`` against the sandbox.

Starts the bundled Acumatica sandbox (``python -m tests.sandbox``) on a free loopback port, runs
``meltano --environment demo run tap-acumatica target-jsonl`` (Meltano installs the tap and the
loader into .meltano/ on first use), shows what landed and where, and stops the sandbox.
With ``--incremental`` it then changes a few records in the sandbox and runs again, to show that
the second run brings only the changes (through Meltano's saved state). Last, ``--check`` shows
which streams the user can read, and why not and what to do for the two it cannot.
With ``--odata`` the run also reads the DAC table SOLine, the Generic Inquiry SalesOrders and
deleted records (README "Streams").

Run it as ``./scripts/demo.sh`` (or ``uv run --all-groups python -m scripts.demo``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import Sandbox  # noqa: E402  (needs the repo on sys.path first)

OUTPUT = REPO / "output" / "demo"  # target-jsonl's destination_path in the demo environment
TOKEN_STORE = REPO / ".meltano" / "demo" / "acumatica-tokens.json"  # oauth_settings_location
STATE_ID = "demo:tap-acumatica-to-target-jsonl"
CHECK_CONFIG = REPO / ".meltano" / "demo" / "check-config.json"  # removed after use
DEMO_STREAMS = ("Customer", "SalesOrder", "StockItem", "Subaccount")  # meltano.yml's demo select


def say(text: str = "") -> None:
    """Print a line of the demo's own narration (stdout; Meltano's logs go to stderr)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def meltano_bin() -> str:
    """The meltano next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "meltano"
    if beside.exists():
        return str(beside)
    found = shutil.which("meltano")
    if not found:
        msg = "meltano is not installed: run this through ./scripts/demo.sh"
        raise SystemExit(msg)
    return found


def sandbox_env(sbx: Sandbox) -> dict[str, str]:
    """Environment for Meltano: the sandbox URL and its demo identities as TAP_ACUMATICA_*."""
    creds = sbx.credentials()
    return {
        **os.environ,
        "ACUMATICA_SANDBOX_URL": sbx.url,
        "TAP_ACUMATICA_TENANT": str(creds["tenant"]),
        "TAP_ACUMATICA_CLIENT_ID": str(creds["client_id"]),
        "TAP_ACUMATICA_CLIENT_SECRET": str(creds["client_secret"]),
        "TAP_ACUMATICA_USERNAME": str(creds["username"]),
        "TAP_ACUMATICA_PASSWORD": str(creds["password"]),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


#: ``--odata``: the OData streams next to the demo's REST ones (README "Streams"); Meltano reads
#: every setting, and the ``select`` extra, from these variables.
ODATA_ENV = {
    "TAP_ACUMATICA_ODATA_DACS": json.dumps(["SOLine"]),
    "TAP_ACUMATICA_ODATA_INQUIRIES": json.dumps(["SalesOrders"]),
    "TAP_ACUMATICA_ODATA_INQUIRY_OPTIONS": json.dumps(
        {"SalesOrders": {"replication_key": "LastModifiedOn"}}
    ),
    "TAP_ACUMATICA_TRACK_DELETIONS": "true",
    # GI date-times are the tenant's clock time (the sandbox's tenant zone).
    "TAP_ACUMATICA_DATE_ONLY_TIME_ZONE": "America/New_York",
    "TAP_ACUMATICA__SELECT": json.dumps(
        [f"{s}.*" for s in DEMO_STREAMS] + ["dac_SOLine.*", "gi_SalesOrders.*"]
    ),
}


def truth_path(stream: str) -> str | None:
    """The sandbox's ground-truth path of ``stream`` (None for a Generic Inquiry)."""
    if stream.startswith("gi_"):
        return None
    return f"dac/{stream[4:]}" if stream.startswith("dac_") else stream


def meltano_run(env: Mapping[str, str], *extra: str, log_level: str = "warning") -> None:
    """``meltano --environment demo run tap-acumatica target-jsonl`` (raises on failure)."""
    cmd = [
        meltano_bin(),
        f"--log-level={log_level}",
        "--environment=demo",
        "run",
        *extra,
        "tap-acumatica",
        "target-jsonl",
    ]
    shown = " ".join(["meltano --environment=demo run", *extra, "tap-acumatica target-jsonl"])
    say(f"$ {shown}")
    subprocess.run(cmd, cwd=REPO, env=dict(env), check=True, timeout=1800)


def landed() -> dict[str, list[dict[str, Any]]]:
    """Records per stream in output/demo/*.jsonl."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(OUTPUT.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            out[path.stem] = [json.loads(line) for line in fh if line.strip()]
    return out


def show(sbx: Sandbox, records: dict[str, list[dict[str, Any]]]) -> None:
    """A table of what landed, checked against the sandbox's ground truth, and one sample."""
    rel = OUTPUT.relative_to(REPO)
    say(f"\nWhat landed in {rel}/ (one JSON record per line):")
    say(f"  {'stream':<22}{'records':>9}{'in sandbox':>12}  file")
    for stream, rows in records.items():
        path = truth_path(stream)
        try:
            live: Any = len(sbx.ground_truth(path)["live"]) if path else "-"
        except Exception:  # a stream that is not a sandbox entity
            live = "-"
        say(f"  {stream:<22}{len(rows):>9}{live!s:>12}  {rel}/{stream}.jsonl")
    sample_stream = (
        "SalesOrder"
        if records.get("SalesOrder")
        else next((s for s in records if records[s]), None)
    )
    if sample_stream:
        say(f"\nA {sample_stream} record, abridged:")
        say("  " + json.dumps(abridged(records[sample_stream][0]), ensure_ascii=False))


PREFERRED = (
    "id", "OrderType", "OrderNbr", "CustomerID", "CustomerName", "InventoryID", "Description",
    "Status", "OrderTotal", "OrderQty", "Amount", "LastModified", "LastModifiedDateTime",
)  # fmt: skip


def abridged(record: dict[str, Any], keys: int = 8) -> dict[str, Any]:
    """A few telling fields of a record, and of its first nested detail line."""
    scalars = [k for k, v in record.items() if not isinstance(v, (dict, list))]
    chosen = [k for k in PREFERRED if k in scalars] + [k for k in scalars if k not in PREFERRED]
    out: dict[str, Any] = {k: record[k] for k in chosen[:keys]}
    for name, value in record.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            out[name] = [abridged(value[0], keys=4), f"… {len(value)} lines"]
    return out


def show_check(sbx: Sandbox) -> None:
    """``tap-acumatica --check`` over the demo's streams plus two this user cannot read.

    The sandbox, like many real instances, denies the user one screen (Employee: 403) and has
    a module that is not set up (Project): a sync skips such streams and names the fix; the
    preflight shows it before anything runs.
    """
    creds = sbx.credentials()
    config = {
        "base_url": sbx.url,
        "auth_method": "cookie",
        "username": creds["username"],
        "password": creds["password"],
        "tenant": creds["tenant"],
        "entities": [*DEMO_STREAMS, "Employee", "Project"],
    }
    CHECK_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CHECK_CONFIG.write_text(json.dumps(config), encoding="utf-8")
    CHECK_CONFIG.chmod(0o600)
    say("\n$ tap-acumatica --config <demo config + Employee, Project> --check")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tap_acumatica", "--config", str(CHECK_CONFIG), "--check"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        CHECK_CONFIG.unlink(missing_ok=True)
    for line in proc.stdout.splitlines():
        say(f"  {line}")
    if proc.returncode != 0:
        say("  (a sync skips the unreadable streams with this explanation and exits 1)")


def show_bookmarks(env: Mapping[str, str]) -> None:
    """The bookmarks Meltano saved: where the next run of each stream starts."""
    proc = subprocess.run(
        [meltano_bin(), "--log-level=warning", "--environment=demo", "state", "get", STATE_ID],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        state = json.loads(proc.stdout[proc.stdout.index("{") :])
        bookmarks = state["singer_state"]["bookmarks"]
    except (ValueError, KeyError):
        return
    say(f"Meltano saved these bookmarks (state id {STATE_ID!r}); the next run starts there:")
    for stream, mark in sorted(bookmarks.items()):
        if isinstance(mark, dict) and mark.get("replication_key_value"):
            field = mark.get("replication_key", "")
            say(f"  {stream:<22}{field} >= {mark['replication_key_value']}")
        if isinstance(mark, dict) and mark.get("deletions_until"):
            say(f"  {stream:<22}deletions >= {mark['deletions_until']}")
    say(f"  (uv run meltano --environment=demo state get {STATE_ID})")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(description="tap-acumatica quick-start demo")
    parser.add_argument("--records", type=int, default=200, help="records per core entity")
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="then change records in the sandbox and run again (only the changes land)",
    )
    parser.add_argument(
        "--odata",
        action="store_true",
        help="also read the DAC table SOLine, the Generic Inquiry SalesOrders and deletions",
    )
    parser.add_argument("--verbose", action="store_true", help="show Meltano's info logs")
    args = parser.parse_args(argv)
    log_level = "info" if args.verbose else "warning"

    # A new sandbox every time: old output and the old sandbox's tokens are meaningless now.
    shutil.rmtree(OUTPUT, ignore_errors=True)
    TOKEN_STORE.unlink(missing_ok=True)

    say("Starting the bundled Acumatica sandbox …")
    sbx = Sandbox("--seed", "1", "--records", str(args.records))
    try:
        say(f"  sandbox at {sbx.url} (tenant time zone America/New_York, OAuth + cookie auth)")
        env = {**sandbox_env(sbx), **(ODATA_ENV if args.odata else {})}
        say("Running Meltano (the first run installs the tap and target-jsonl into .meltano/) …")
        # --full-refresh: each demo has a new sandbox, so a bookmark from an earlier demo is stale.
        meltano_run(env, "--full-refresh", log_level=log_level)
        show(sbx, landed())
        if args.incremental:
            change = {"entity": "Customer", "op": "update", "count": 3}
            changed = sbx.admin("POST", "mutate", change)
            say(f"\nUpdated {len(changed['ids'])} Customer records in the sandbox; running again …")
            shutil.rmtree(OUTPUT, ignore_errors=True)
            meltano_run(env, log_level=log_level)
            show(sbx, landed())
        show_check(sbx)
        say(f"\nOAuth tokens (password grant) were kept in {TOKEN_STORE.relative_to(REPO)}")
        show_bookmarks(env)
        sessions = sbx.stats().get("active_sessions", "?")
        say(f"API sessions left open on the sandbox: {sessions} (the tap signs out).")
    finally:
        sbx.stop()
        say("Sandbox stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
