"""The Dagster job: one op per tenant x stream group, each a ``meltano run``; seats as limits.

* ``prepare`` runs first, once: a ``meltano run --dry-run`` that installs missing plugins and
  migrates the system database, so the parallel runs never race on either.
* ``<tenant>__<group>`` ops then run at once in the multiprocess executor, each in its own
  process, tagged ``acumatica/tenant=<tenant>``; ``tag_concurrency_limits`` lets at most
  ``seats`` of one tenant's ops run together, because they share that tenant's licence.
* A failed run is retried (RetryPolicy, exponential backoff with jitter) and resumes from the
  state Meltano saved in its system database.
"""

# No `from __future__ import annotations` here: Dagster reads the `context` annotation of an op
# as a class, and refuses it as a string.
import os
from typing import Any

import dagster as dg
from dagster import OpExecutionContext

from orchestration import runs
from orchestration.tenants import Plan, Tenant

TENANT_TAG = "acumatica/tenant"
JOB_NAME = "acumatica_sync"


def op_name(tenant: Tenant, group: str) -> str:
    """The op of one tenant's stream group, e.g. ``acme__orders``."""
    return f"{tenant.name}__{group}"


def _fail(what: str, outcome: runs.Outcome) -> dg.Failure:
    return dg.Failure(
        description=f"{what} exited {outcome.returncode} after {outcome.seconds:.0f} s",
        metadata={
            "command": " ".join(outcome.command[1:]),
            "log_tail": dg.MetadataValue.md(f"```\n{outcome.tail}\n```"),
        },
    )


def _prepare_op(plan: Plan) -> dg.OpDefinition:
    @dg.op(name="prepare", out=dg.Out(dg.Nothing), retry_policy=_retry(plan))
    def prepare(context: OpExecutionContext) -> None:
        """Install the plugins and migrate Meltano's system database (once, before the runs)."""
        outcome = runs.execute(runs.prepare_command(plan), os.environ, runs.project_dir(plan))
        if outcome.returncode != 0:
            context.log.error(f"meltano run --dry-run failed; its last lines:\n{outcome.tail}")
            raise _fail("meltano run --dry-run", outcome)
        context.log.info(f"Meltano project ready in {outcome.seconds:.1f} s")

    return prepare


def _retry(plan: Plan) -> dg.RetryPolicy:
    return dg.RetryPolicy(
        max_retries=plan.max_retries,
        delay=plan.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def _sync_op(plan: Plan, tenant: Tenant, group: str) -> dg.OpDefinition:
    name = op_name(tenant, group)
    state = runs.state_id(plan, tenant, group)

    @dg.op(
        name=name,
        ins={"ready": dg.In(dg.Nothing)},
        tags={TENANT_TAG: tenant.name},
        retry_policy=_retry(plan),
        description=f"meltano run of {tenant.name}'s {group} streams (state id {state})",
    )
    def sync(context: OpExecutionContext) -> dg.Output[None]:
        env = runs.run_env(plan, tenant, group)
        outcome = runs.execute(runs.sync_command(plan, tenant, group), env, runs.project_dir(plan))
        if outcome.returncode != 0:
            # A retry starts from the bookmarks the loader already committed under `state`.
            context.log.error(f"{name}: meltano run failed; its last lines:\n{outcome.tail}")
            raise _fail(f"meltano run for {name} (attempt {context.retry_number + 1})", outcome)
        context.log.info(f"{name}: done in {outcome.seconds:.1f} s, state id {state}")
        return dg.Output(None, metadata={"state_id": state, "seconds": outcome.seconds})

    return sync


def executor(plan: Plan) -> dg.ExecutorDefinition:
    """The multiprocess executor, at most ``seats`` steps of one tenant at a time."""
    limits: list[dict[str, Any]] = [
        {"key": TENANT_TAG, "value": t.name, "limit": t.seats} for t in plan.tenants
    ]
    return dg.multiprocess_executor.configured(
        {"max_concurrent": plan.concurrency, "tag_concurrency_limits": limits}
    )


def build(plan: Plan) -> dg.Definitions:
    """The code location: the job, and an hourly schedule that starts switched off."""

    @dg.graph(name=JOB_NAME)
    def sync_all() -> None:
        ready = _prepare_op(plan)()
        for tenant in plan.tenants:
            for group in tenant.groups:
                _sync_op(plan, tenant, group)(ready)

    job = sync_all.to_job(
        executor_def=executor(plan),
        description="Every tenant's stream groups, seats-limited per tenant (docs/scale-out.md)",
    )
    schedule = dg.ScheduleDefinition(
        job=job, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.STOPPED
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])
