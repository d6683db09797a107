"""``tap-acumatica --check``: a preflight table of which selected streams can be read."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests._taprun import discover, only_streams, tap_config, write_json
from tests.support import REPO

ENTITIES = ["Customer", "Employee", "Project", "SalesOrder"]


def _check(config: dict[str, Any], catalog: dict[str, Any] | None = None) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "tap_acumatica", "--config"]
        cmd += [write_json(config, Path(tmp), "c.json"), "--check"]
        if catalog is not None:
            cmd += ["--catalog", write_json(catalog, Path(tmp), "cat.json")]
        proc = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
    return proc.returncode, proc.stdout, proc.stderr


def _rows(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    assert lines[0].split() == ["stream", "readable", "why", "not", "what", "to", "do"]
    return {line.split()[0]: line for line in lines[1:]}


def test_check_prints_a_table_and_fails_when_a_stream_is_unreadable(
    sandbox_factory: Any,
) -> None:
    sbx = sandbox_factory(
        "--seed", "3", "--records", "60", "--forbidden", "Employee", "--not-set-up", "Project"
    )
    code, stdout, stderr = _check(tap_config(sbx, entities=ENTITIES))
    assert code == 1, stderr[-2000:]
    rows = _rows(stdout)
    assert sorted(rows) == sorted(ENTITIES)
    assert rows["Customer"].split()[1] == "yes"
    assert rows["SalesOrder"].split()[1] == "yes"
    assert rows["Employee"].split()[1] == "no"
    assert "HTTP 403" in rows["Employee"]
    assert "Access Rights by Screen" in rows["Employee"]
    assert rows["Project"].split()[1] == "no"
    assert "Projects Preferences form" in rows["Project"]
    assert "Traceback" not in stderr
    # One $top=1 list GET per selected stream, nothing more on the entities.
    queries = [q for q in sbx.stats()["queries"] if q["path"].rsplit("/", 1)[-1] in ENTITIES]
    assert all(q["params"].get("$top") == "1" for q in queries)


def test_check_respects_the_catalog_and_exits_0_when_all_are_readable(
    sandbox_factory: Any,
) -> None:
    sbx = sandbox_factory("--seed", "3", "--records", "60", "--forbidden", "Employee")
    config = tap_config(sbx, entities=ENTITIES)
    catalog = only_streams(discover(config), {"Customer", "SalesOrder"})
    code, stdout, stderr = _check(config, catalog)
    assert code == 0, stdout + stderr[-2000:]
    rows = _rows(stdout)
    assert sorted(rows) == ["Customer", "SalesOrder"]
    assert all(row.split()[1] == "yes" for row in rows.values())


def test_check_needs_a_config(capsys: Any) -> None:
    from tap_acumatica import cli  # noqa: PLC0415

    with pytest.raises(SystemExit) as info:
        cli.main(["--check"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert (
        err
        == "tap-acumatica: --check needs --config (the file with base_url and the credentials)\n"
    )
