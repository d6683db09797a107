"""Scale-out demo: three bundled sandboxes (tenants) x two stream groups, run by Dagster.

``uv run --group orchestration python -m orchestration.demo`` starts a throw-away PostgreSQL
(or uses ``MELTANO_DATABASE_URI`` when it is a PostgreSQL URL) for Meltano's state and the token
chains, three sandboxes, signs each tenant in once with ``meltano invoke tap-acumatica --login``
(the sandbox approves at once; a person would use the browser), runs ``dagster job execute -m
orchestration -j acumatica_sync`` with tenants.example.yml, shows what landed in
output/scale-out/ next to each sandbox's own counts, and stops everything. Test code (the
sandbox, the PostgreSQL helper) comes from tests/, so run it from a clone. docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestration import runs
from orchestration.tenants import EXAMPLE, TENANTS_FILE_ENV, load

if TYPE_CHECKING:
    from tests.support import Sandbox

REPO = runs.REPO
OUTPUT = REPO / "output" / "scale-out"
TENANTS = ("north", "south", "west")


def say(text: str = "") -> None:
    """The demo's own narration (stdout; Meltano and Dagster log to stderr)."""
    print(text, flush=True)  # noqa: T201


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A PostgreSQL URL for Meltano's system database and the token store."""
    given = os.environ.get("MELTANO_DATABASE_URI", "")
    if given.startswith(("postgresql", "postgres:")):
        yield given
        return
    sys.path.insert(0, str(REPO))
    from tests.e2e.pg import postgres_server  # noqa: PLC0415  (test helper, from a clone)

    with postgres_server(database="scale_out") as pg:
        yield f"postgresql+psycopg://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}"


def sign_in(env: dict[str, str]) -> None:
    """``meltano invoke tap-acumatica --login``; the sandbox plays the person in the browser."""
    cmd = [runs.meltano_executable(), "--environment=demo", "invoke", "tap-acumatica", "--login"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"https?://\S+/identity/connect/authorize\?\S+", line)
        if found:  # the sandbox's --auto-approve redirects straight to the tap's listener
            with urllib.request.urlopen(found.group(0), timeout=60) as page:  # noqa: S310
                page.read()
            break
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        msg = f"--login failed: {err[-2000:]}"
        raise SystemExit(msg)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every tenant's records match its sandbox."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200, help="records per core entity")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.support import Sandbox, free_port  # noqa: PLC0415  (test helper, from a clone)

    shutil.rmtree(OUTPUT, ignore_errors=True)
    home = Path(os.environ.get("DAGSTER_HOME") or tempfile.mkdtemp(prefix="dagster-home-"))
    home.mkdir(parents=True, exist_ok=True)
    boxes: dict[str, Sandbox] = {}
    try:
        with database() as url:
            env = {
                **os.environ,
                "MELTANO_DATABASE_URI": url,
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                TENANTS_FILE_ENV: os.environ.get(TENANTS_FILE_ENV, str(EXAMPLE)),
                "SCALE_OUTPUT": str(OUTPUT),
                "DAGSTER_HOME": str(home),
            }
            plan = load(Path(env[TENANTS_FILE_ENV]))
            say("Installing the plugins (meltano run --dry-run) …")
            outcome = runs.execute(runs.prepare_command(plan), env, REPO)
            if outcome.returncode != 0:
                raise SystemExit(outcome.tail)
            for n, name in enumerate(TENANTS):
                port = free_port()
                box = Sandbox("--seed", str(31 + n), "--records", str(args.records),
                              "--api-seats", "2", "--auto-approve", "admin",
                              "--redirect-port", str(port))  # fmt: skip
                boxes[name] = box
                creds = box.credentials()
                env |= {
                    f"{name.upper()}_BASE_URL": box.url,
                    f"{name.upper()}_CLIENT_ID": str(creds["client_id"]),
                    f"{name.upper()}_CLIENT_SECRET": str(creds["client_secret"]),
                }
                tenant = next(t for t in plan.tenants if t.name == name)
                login_env = runs.run_env(plan, tenant, next(iter(tenant.groups)), env)
                login_env |= {
                    "TAP_ACUMATICA_INITIATE_OAUTH": "GETANDREFRESH",
                    "TAP_ACUMATICA_REDIRECT_URI": f"http://127.0.0.1:{port}/callback",
                    "TAP_ACUMATICA_OPEN_BROWSER": "false",
                }
                sign_in(login_env)
                say(f"Tenant {name}: sandbox at {box.url}, signed in once (chain in PostgreSQL)")
            say("Running: dagster job execute -m orchestration -j acumatica_sync")
            dagster = str(Path(sys.executable).parent / "dagster")
            cmd = [dagster, "job", "execute", "-m", "orchestration", "-j", "acumatica_sync"]
            done = subprocess.run(cmd, cwd=REPO, env=env, check=False)
            return report(boxes, plan.tenants[0].groups) if done.returncode == 0 else 1
    finally:
        for box in boxes.values():
            box.stop()
        if not os.environ.get("DAGSTER_HOME"):
            shutil.rmtree(home, ignore_errors=True)


def report(boxes: Mapping[str, Sandbox], groups: Mapping[str, tuple[str, ...]]) -> int:
    """What landed per tenant and group, next to each sandbox's own counts."""
    ok = True
    for name, box in boxes.items():
        stats = box.stats()
        say(f"\n{name}: refresh tokens rejected {stats['refresh_tokens']['rejected']}, "
            f"sessions left open {stats['active_sessions']}")  # fmt: skip
        for group in groups:
            for path in sorted((OUTPUT / name / group).glob("*.jsonl")):
                with path.open(encoding="utf-8") as fh:
                    ids = {json.loads(line)["id"] for line in fh if line.strip()}
                live = {r["id"] for r in box.ground_truth(path.stem)["live"]}
                ok &= ids == live
                say(f"  {group:8} {path.stem:12} {len(ids):5} records (sandbox: {len(live)})")
    say(f"\nOutput: {OUTPUT}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
