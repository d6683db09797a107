"""Shared fixtures: a sandbox process per session, and a factory for tests that need their own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from tests.support import OPENAPI_24, Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One shared sandbox with default options; tests must not mutate it (use sandbox_factory)."""
    sbx = Sandbox("--seed", "7", "--records", "300")
    yield sbx
    sbx.stop()


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Start private sandboxes with custom options; all are stopped after the test."""
    started: list[Sandbox] = []

    def start(*args: str) -> Sandbox:
        sbx = Sandbox(*args)
        started.append(sbx)
        return sbx

    yield start
    for sbx in started:
        sbx.stop()


@pytest.fixture(scope="session")
def real_openapi_path() -> str:
    """Path to Acumatica's real Default/24.200.001 document in ../shared (skip if absent)."""
    if not OPENAPI_24.is_file():
        pytest.skip("../shared/acumatica/Default_24.200.001.openapi.json is not available")
    return str(OPENAPI_24)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Taps built in-process sign out at interpreter exit, after pytest closed its capture.

    Their "Signed out" log line then has no open stream to go to; that is not a failure of
    the tap, so logging may drop it quietly instead of printing a "Logging error" trace.
    """
    del config
    logging.raiseExceptions = False
