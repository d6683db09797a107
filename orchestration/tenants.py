"""The tenants file: which Acumatica tenants to sync, in which stream groups, with how many seats.

A small YAML (or JSON) file, its path in ``ACUMATICA_TENANTS_FILE`` (default: the example for the
bundled sandbox beside this module). Values may name environment variables as ``${NAME}``; they
are expanded when a sync starts, in the worker that runs it, so secrets stay in the worker's
environment and never reach Dagster's run configuration, logs or UI. docs/scale-out.md
describes every key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TENANTS_FILE_ENV = "ACUMATICA_TENANTS_FILE"
EXAMPLE = Path(__file__).resolve().parent / "tenants.example.yml"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TenantsFileError(ValueError):
    """The tenants file is missing, malformed, or names a variable that is not set."""


@dataclass(frozen=True)
class Tenant:
    """One Acumatica tenant: its licence's API seats and the environment of its runs."""

    name: str
    seats: int
    env: Mapping[str, str]
    groups: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Plan:
    """Everything the Dagster code location is built from."""

    tenants: tuple[Tenant, ...]
    meltano_environment: str = "prod"
    loader: str = "target-postgres"
    loader_env: Mapping[str, str] = field(default_factory=dict)
    max_concurrent: int = 0
    max_retries: int = 2
    retry_delay_seconds: float = 30.0
    project_dir: Path | None = None

    @property
    def concurrency(self) -> int:
        """Steps at once: the file's ``max_concurrent``, else every tenant's seats together."""
        return self.max_concurrent or sum(t.seats for t in self.tenants)


def expand(value: str, environ: Mapping[str, str]) -> str:
    """``${NAME}`` replaced by the variable's value; an unset variable is an error."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            msg = f"the tenants file uses ${{{name}}}, which is not set in this worker"
            raise TenantsFileError(msg)
        return environ[name]

    return _VAR.sub(one, value)


def _strings(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        msg = f"{where} must be a mapping of variable names to values"
        raise TenantsFileError(msg)
    return {k: str(v) for k, v in raw.items()}


def _groups(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict) or not raw:
        msg = f"{where} must map group names to lists of Meltano select patterns"
        raise TenantsFileError(msg)
    out: dict[str, tuple[str, ...]] = {}
    for name, patterns in raw.items():
        if not _NAME.match(str(name)):
            msg = f"{where}: group name {name!r} must be lower-case letters, digits and _"
            raise TenantsFileError(msg)
        if not isinstance(patterns, list) or not patterns:
            msg = f"{where}.{name} must be a non-empty list of select patterns"
            raise TenantsFileError(msg)
        out[str(name)] = tuple(str(p) for p in patterns)
    return out


def _tenant(raw: Any, default_groups: dict[str, tuple[str, ...]] | None) -> Tenant:
    if not isinstance(raw, dict):
        msg = "each entry of tenants must be a mapping"
        raise TenantsFileError(msg)
    name = str(raw.get("name", ""))
    if not _NAME.match(name):
        msg = f"tenant name {name!r} must be lower-case letters, digits and _ (it names state ids)"
        raise TenantsFileError(msg)
    seats = raw.get("seats", 1)
    if not isinstance(seats, int) or seats < 1:
        msg = f"tenant {name}: seats must be a positive integer"
        raise TenantsFileError(msg)
    groups = _groups(raw["groups"], f"tenant {name}: groups") if "groups" in raw else default_groups
    if groups is None:
        msg = f"tenant {name}: no groups, and the file has no top-level groups"
        raise TenantsFileError(msg)
    return Tenant(name, seats, _strings(raw.get("env"), f"tenant {name}: env"), groups)


def parse(document: Any, *, base: Path | None = None) -> Plan:
    """A validated :class:`Plan` from the decoded file (variables are not expanded here)."""
    if not isinstance(document, dict) or not isinstance(document.get("tenants"), list):
        msg = "the tenants file must be a mapping with a list under 'tenants'"
        raise TenantsFileError(msg)
    defaults = _groups(document["groups"], "groups") if "groups" in document else None
    tenants = tuple(_tenant(t, defaults) for t in document["tenants"])
    names = [t.name for t in tenants]
    if not tenants or len(set(names)) != len(names):
        msg = f"tenants must be a non-empty list of distinct names, got {names}"
        raise TenantsFileError(msg)
    project = document.get("meltano_project_dir")
    return Plan(
        tenants=tenants,
        meltano_environment=str(document.get("meltano_environment", "prod")),
        loader=str(document.get("loader", "target-postgres")),
        loader_env=_strings(document.get("loader_env"), "loader_env"),
        max_concurrent=int(document.get("max_concurrent", 0)),
        max_retries=int(document.get("max_retries", 2)),
        retry_delay_seconds=float(document.get("retry_delay_seconds", 30)),
        project_dir=(base / str(project)).resolve() if project and base else None,
    )


def load(path: Path | None = None) -> Plan:
    """Read the tenants file named by ``ACUMATICA_TENANTS_FILE`` (or ``path``, or the example)."""
    chosen = path or Path(os.environ.get(TENANTS_FILE_ENV) or EXAMPLE)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the tenants file {chosen}: {exc.strerror}"
        raise TenantsFileError(msg) from exc
    try:
        document = json.loads(text) if chosen.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        msg = f"the tenants file {chosen} is not valid YAML/JSON: {exc}"
        raise TenantsFileError(msg) from exc
    return parse(document, base=chosen.resolve().parent)
