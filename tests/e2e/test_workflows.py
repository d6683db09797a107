"""The GitHub workflows parse, pin actions by commit SHA, stay read-only and keep secrets out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO

WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
USES_LINE = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\b")
SECRETISH = re.compile(r"(SECRET|PASSWORD|TOKEN|_KEY|DATABASE_URI)$")
CRON_FIELD = re.compile(r"^[\d*/,-]+$")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def test_both_workflows_exist() -> None:
    assert {p.name for p in FILES} >= {"ci.yml", "scheduled-sync.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_parses_with_jobs_and_steps(path: Path) -> None:
    wf = load(path)
    assert wf.get("name"), "every workflow has a name"
    assert wf.get("on"), "every workflow has triggers"
    assert wf["jobs"], "every workflow has jobs"
    for name, job in wf["jobs"].items():
        assert job.get("runs-on"), f"{name}: runs-on"
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: a timeout bounds every job"
        assert job.get("steps"), f"{name}: steps"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_pinned_by_full_sha_with_version_comment(path: Path) -> None:
    found = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        m = USES_LINE.match(line)
        if not m:
            continue
        found += 1
        ref, rest = m.group(1), m.group(2)
        assert PINNED.match(ref), f"not pinned to a 40-hex commit: {line.strip()}"
        assert VERSION_COMMENT.search(rest), f"no '# vX.Y.Z' comment: {line.strip()}"
    assert found, "expected at least one action"
    # Every action in the parsed YAML is one of the lines checked above.
    parsed = [s["uses"] for s in steps(load(path)) if "uses" in s]
    assert len(parsed) == found


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_read_only(path: Path) -> None:
    wf = load(path)
    assert wf.get("permissions") == {"contents": "read"}
    for name, job in wf["jobs"].items():
        perms = job.get("permissions", {})
        assert perms in ({}, "read-all") or all(v in ("read", "none") for v in perms.values()), (
            f"{name} asks for write permissions: {perms}"
        )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkout_never_persists_credentials(path: Path) -> None:
    checkouts = [
        s for s in steps(load(path)) if str(s.get("uses", "")).startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_secrets_are_referenced_never_inlined(path: Path) -> None:
    wf = load(path)
    envs: list[dict[str, Any]] = [wf.get("env", {})]
    for job in wf["jobs"].values():
        envs.append(job.get("env", {}))
        envs.extend(s.get("env", {}) for s in job.get("steps", []))
    for env in envs:
        for key, value in env.items():
            if SECRETISH.search(key):
                assert re.fullmatch(r"\$\{\{\s*secrets\.[A-Z0-9_]+\s*\}\}", str(value)), (
                    f"{key} must come from repository secrets, not be written in the file"
                )
    text = path.read_text(encoding="utf-8")
    for prefix in ("sbxpw-", "sbxcs-", "sbxat-", "sbxrt-", "ghp_", "AKIA"):
        assert prefix not in text


def test_ci_runs_readme_test_command_on_every_supported_python() -> None:
    wf = load(WORKFLOWS / "ci.yml")
    trig = wf["on"]
    assert "push" in trig
    assert "pull_request" in trig
    tests = wf["jobs"]["tests"]
    assert tests["strategy"]["matrix"]["python"] == ["3.10", "3.11", "3.12", "3.13"]
    runs = "\n".join(s.get("run", "") for s in tests["steps"])
    assert "./scripts/test.sh" in runs, "the test job runs the README's test command"
    assert "postgresql" in runs
    assert "chromium" in runs
    assert tests["env"]["TAP_ACUMATICA_REQUIRE_ALL"] == "1"
    lint_runs = "\n".join(s.get("run", "") for s in wf["jobs"]["lint"]["steps"])
    for tool in ("ruff check", "ruff format --check", "mypy"):
        assert tool in lint_runs


def test_scheduled_sync_runs_meltano_on_a_cron_with_secrets() -> None:
    wf = load(WORKFLOWS / "scheduled-sync.yml")
    crons = [entry["cron"] for entry in wf["on"]["schedule"]]
    assert crons
    for cron in crons:
        fields = cron.split()
        assert len(fields) == 5
        assert all(CRON_FIELD.match(f) for f in fields), cron
    assert "workflow_dispatch" in wf["on"]
    # Never two syncs at once (they would spend the same token chain and API seats).
    assert wf["concurrency"]["cancel-in-progress"] is False
    job = wf["jobs"]["sync"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert re.search(r"meltano run tap-acumatica target-postgres", runs)
    env = job["env"]
    assert env["MELTANO_ENVIRONMENT"] == "prod"
    referenced = set(re.findall(r"secrets\.([A-Z0-9_]+)", yaml.safe_dump(env)))
    assert {"ACUMATICA_CLIENT_ID", "ACUMATICA_CLIENT_SECRET"} <= referenced
    # A durable home for Meltano's state and documentation of the token-store options.
    assert "MELTANO_DATABASE_URI" in env
    text = (WORKFLOWS / "scheduled-sync.yml").read_text(encoding="utf-8")
    assert "oauth_settings_location" in text
    assert "password grant" in text
