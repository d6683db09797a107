"""Fixtures of the end-to-end tests, shared by every module here (each created once)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.meltano_support import SANDBOX_ARGS, Meltano, demo_env, need
from tests.e2e.pg import PostgresServer, PostgresUnavailableError, postgres_server
from tests.support import Sandbox


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
    env = demo_env(sbx, tmp_path)
    yield sbx, env
    # Every run signed out: no API seat left behind.
    assert sbx.stats()["active_sessions"] == 0


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    try:
        with postgres_server(database="acumatica") as server:
            yield server
    except PostgresUnavailableError as exc:
        need(False, str(exc))
