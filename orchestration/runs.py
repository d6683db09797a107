"""What one step runs: ``meltano run tap-acumatica <loader>`` for one tenant and stream group.

Everything a run needs reaches Meltano through environment variables (Meltano reads
``TAP_ACUMATICA_<SETTING>`` for every setting and ``TAP_ACUMATICA__SELECT`` for the select
extra), so one extractor in meltano.yml serves every tenant. The state id is the pipeline's
plus ``--state-id-suffix <tenant>-<group>``, kept in Meltano's system database, so any worker
resumes any tenant and a retry carries on from the last STATE the loader committed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestration.tenants import Plan, Tenant, expand

REPO = Path(__file__).resolve().parent.parent
EXTRACTOR = "tap-acumatica"
TAIL_LINES = 40


@dataclass(frozen=True)
class Outcome:
    """How one ``meltano`` command ended."""

    command: tuple[str, ...]
    returncode: int
    seconds: float
    tail: str


def meltano_executable() -> str:
    """``MELTANO_EXECUTABLE``, else ``meltano`` on PATH, else the one beside this Python."""
    chosen = os.environ.get("MELTANO_EXECUTABLE") or shutil.which("meltano")
    return chosen or str(Path(sys.executable).parent / "meltano")


def project_dir(plan: Plan) -> Path:
    """The Meltano project: the file's ``meltano_project_dir``, else this repository."""
    return plan.project_dir or REPO


def state_suffix(tenant: Tenant, group: str) -> str:
    """The part of the state id that names the tenant and the stream group."""
    return f"{tenant.name}-{group}"


def state_id(plan: Plan, tenant: Tenant, group: str) -> str:
    """The full Meltano state id of one tenant's stream group (``meltano state get`` takes it)."""
    pipeline = f"{plan.meltano_environment}:{EXTRACTOR}-to-{plan.loader}"
    return f"{pipeline}:{state_suffix(tenant, group)}"


def sys_dir(plan: Plan, tenant: Tenant, group: str) -> Path:
    """A private ``.meltano`` for one tenant's group that shares the installed plugins.

    ``meltano run`` writes an extractor's config, catalog and state files to
    ``.meltano/run/<plugin>/``, one directory per plugin name, so two runs of tap-acumatica at
    once in one project overwrite each other's files (one fails with "No such file or
    directory: …/tap.properties.json"; meltano/meltano issue 8763, still so in Meltano 4.4).
    Each run gets its own system directory (``MELTANO_SYS_DIR_ROOT``) whose ``extractors`` and
    ``loaders`` link to the project's, where ``prepare`` installed them.
    """
    shared = project_dir(plan) / ".meltano"
    own = shared / "scale-out" / state_suffix(tenant, group)
    own.mkdir(parents=True, exist_ok=True)
    for kind in ("extractors", "loaders"):
        (shared / kind).mkdir(exist_ok=True)
        link = own / kind
        if not link.is_symlink():
            link.symlink_to(shared / kind, target_is_directory=True)
    return own


def run_env(
    plan: Plan, tenant: Tenant, group: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of one run: the worker's, the tenant's, the loader's and the select."""
    base = dict(os.environ if environ is None else environ)
    env = {**base, **{k: expand(v, base) for k, v in tenant.env.items()}}
    for key, template in plan.loader_env.items():
        filled = template.replace("{tenant}", tenant.name).replace("{group}", group)
        env[key] = expand(filled, base)
    env["TAP_ACUMATICA__SELECT"] = json.dumps(list(tenant.groups[group]))
    env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir(plan, tenant, group))
    return env


def sync_command(plan: Plan, tenant: Tenant, group: str) -> tuple[str, ...]:
    """``meltano --environment=E run --state-id-suffix=<tenant>-<group> tap-acumatica <loader>``."""
    return (
        meltano_executable(),
        f"--environment={plan.meltano_environment}",
        "run",
        f"--state-id-suffix={state_suffix(tenant, group)}",
        EXTRACTOR,
        plan.loader,
    )


def prepare_command(plan: Plan) -> tuple[str, ...]:
    """A dry run: installs missing plugins and migrates the system database, once per job."""
    return (
        meltano_executable(),
        f"--environment={plan.meltano_environment}",
        "run",
        "--dry-run",
        EXTRACTOR,
        plan.loader,
    )


def execute(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> Outcome:
    """Run ``command`` to its end, its log passed on to this process's stderr as it comes.

    Dagster keeps a step's stderr as its compute log (the UI shows it); the last lines are kept
    for the step's failure report. Nothing is held beyond them, however long the run.
    """
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # meltano run writes nothing useful there
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
    return Outcome(tuple(command), proc.returncode, time.monotonic() - started, "\n".join(tail))
