"""Bad ``--config``/``--state``/``--catalog`` files: one line naming the file and the fix.

Every case runs the real CLI against a sandbox with a working config, so a check that is
missing lets the run go on to the SDK (a catch-all "unexpected error", a multi-line SDK log, or
a silently ignored state). Files that are unusual but clear are accepted: a byte-order mark, a
whole STATE message, a catalog that selects nothing (with one warning).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests._taprun import discover, parse_messages, tap_config
from tests.support import REPO, Sandbox

GOOD_MARK = {"replication_key": "LastModifiedDateTime"}


class Run(NamedTuple):
    """One CLI run: exit code, stderr lines, Singer messages, and the files given."""

    code: int
    lines: list[str]
    messages: list[dict[str, Any]]
    files: dict[str, str]


def _run(
    tmp: Path,
    config: dict[str, Any] | str | bytes,
    *,
    state: Any = None,
    catalog: Any = None,
) -> Run:
    """Write the files (a str/bytes is written as is, anything else as JSON) and run a sync."""
    files: dict[str, str] = {}
    args = [sys.executable, "-m", "tap_acumatica"]
    for name, content in (("config", config), ("state", state), ("catalog", catalog)):
        if content is None:
            continue
        path = tmp / f"{name}.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
        files[name] = str(path)
        args += [f"--{name}", str(path)]
    proc = subprocess.run(
        args,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return Run(proc.returncode, lines, parse_messages(proc.stdout), files)


def _config(sandbox: Sandbox, **overrides: Any) -> dict[str, Any]:
    return tap_config(sandbox, entities=["Customer"], **overrides)


def _one_clear_line(run: Run, *needles: str) -> str:
    """Exit 1 and stderr exactly one ``tap-acumatica:`` line holding every needle."""
    assert run.code == 1, run.lines[-5:]
    assert len(run.lines) == 1, run.lines[-5:]
    line = run.lines[0]
    assert line.startswith("tap-acumatica: "), line
    assert "unexpected error" not in line, line
    for needle in needles:
        assert needle.format(**run.files) in line, line
    assert not run.messages
    return line


# -- refused, with one line --------------------------------------------------------------------

STATES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("not JSON", "{bookmarks: {}", ("state file {state}", "not valid JSON (line 1)")),
    ("empty", "", ("state file {state}", "(it is empty)")),
    ("a string", '"2024-01-31T00:00:00Z"', ("state file {state}", "not a string", "bookmarks")),
    ("a list", [{"bookmarks": {}}], ("state file {state}", "not an array")),
    ("bookmarks a list", {"bookmarks": ["Customer"]}, ("state file {state}", '"bookmarks"')),
    ("stream state a string", {"bookmarks": {"Customer": "2024"}}, ("stream Customer",)),
    (
        "bookmark not a date",
        {"bookmarks": {"Customer": {**GOOD_MARK, "replication_key_value": "yesterday"}}},
        ("state file {state}", "bookmark of stream Customer ('yesterday')", "2024-01-31T"),
    ),
    (
        "bookmark a number",
        {"bookmarks": {"Customer": {**GOOD_MARK, "replication_key_value": 1706659200000}}},
        ("state file {state}", "bookmark of stream Customer (1706659200000)"),
    ),
    (
        "bookmark an impossible date",
        {"bookmarks": {"Customer": {**GOOD_MARK, "replication_key_value": "2024-13-45"}}},
        ("state file {state}", "not an ISO-8601 date-time"),
    ),
]


@pytest.mark.parametrize(("state", "needles"), [s[1:] for s in STATES], ids=[s[0] for s in STATES])
def test_bad_state_file_is_one_line(
    sandbox: Sandbox, tmp_path: Path, state: Any, needles: tuple[str, ...]
) -> None:
    _one_clear_line(_run(tmp_path, _config(sandbox), state=state), *needles)


def _entry(schema: Any) -> dict[str, Any]:
    return {
        "tap_stream_id": "Customer",
        "stream": "Customer",
        "schema": schema,
        "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
    }


CATALOGS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("not JSON", "{streams: [", ("catalog file {catalog}", "not valid JSON")),
    ("an array", [_entry({"type": "object", "properties": {}})], ("catalog file {catalog}",)),
    ("no streams", {"Customer": {}}, ("catalog file {catalog}", '"streams"', "--discover")),
    ("stream not an object", {"streams": ["Customer"]}, ("catalog file {catalog}", "#1")),
    (
        "schema without properties",
        {"streams": [_entry({"type": "object"})]},
        ("catalog file {catalog}", "stream Customer", "without properties", "--discover"),
    ),
    (
        "metadata not a list",
        {"streams": [{**_entry({"properties": {}}), "metadata": {"selected": True}}]},
        ("catalog file {catalog}", '"metadata"'),
    ),
    ("too deep", "[" * 5000 + "]" * 5000, ("catalog file {catalog}", "deeper than 100")),
]


@pytest.mark.parametrize(
    ("catalog", "needles"), [c[1:] for c in CATALOGS], ids=[c[0] for c in CATALOGS]
)
def test_bad_catalog_file_is_one_line(
    sandbox: Sandbox, tmp_path: Path, catalog: Any, needles: tuple[str, ...]
) -> None:
    _one_clear_line(_run(tmp_path, _config(sandbox), catalog=catalog), *needles)


def _edit(config: dict[str, Any], tail: str) -> str:
    """The config's JSON with ``tail`` added as raw text before the closing brace."""
    return json.dumps(config)[:-1] + ", " + tail + "}"


CONFIGS: list[tuple[str, dict[str, Any], str | None, tuple[str, ...]]] = [
    ("NaN", {}, '"backoff_base_seconds": NaN', ("config file {config}", "NaN", "finite")),
    ("Infinity", {}, '"request_timeout": Infinity', ("config file {config}", "Infinity")),
    ("1e400", {}, '"page_size": 1e400', ("config file {config}", "1e400")),
    ("deep", {}, '"expand": ' + "[" * 3000 + "]" * 3000, ("config file {config}", "deeper")),
    ("page_size 1e308", {"page_size": 1e308}, None, ("page_size", "maximum of 100000")),
    ("max_tries 10**12", {"max_tries": 10**12}, None, ("max_tries", "maximum of 100")),
    ("lookback 1e15", {"lookback_minutes": 10**15}, None, ("lookback_minutes", "maximum")),
    ("backoff 1e300", {"backoff_base_seconds": 1e300}, None, ("backoff_base_seconds", "60")),
    ("login wait 10**9", {"login_limit_wait_seconds": 10**9}, None, ("login_limit_wait",)),
    ("safety lag 10**12", {"safety_lag_seconds": 10**12}, None, ("safety_lag_seconds",)),
    ("progress 10**12", {"progress_interval_seconds": 10**12}, None, ("progress_interval",)),
]


@pytest.mark.parametrize(
    ("patch", "tail", "needles"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS]
)
def test_absurd_config_is_one_line(
    sandbox: Sandbox,
    tmp_path: Path,
    patch: dict[str, Any],
    tail: str | None,
    needles: tuple[str, ...],
) -> None:
    config = _config(sandbox, **patch)
    _one_clear_line(_run(tmp_path, config if tail is None else _edit(config, tail)), *needles)


# -- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_config_with_a_byte_order_mark_is_read(
    sandbox: Sandbox, tmp_path: Path, encoding: str
) -> None:
    """Notepad writes UTF-8 with a BOM, Windows PowerShell's ``>`` UTF-16 with one."""
    run = _run(tmp_path, json.dumps(_config(sandbox)).encode(encoding))
    assert run.code == 0, run.lines[-5:]
    assert not [line for line in run.lines if line.startswith("tap-acumatica: ")]
    assert any(m["type"] == "RECORD" for m in run.messages)


def test_whole_number_as_a_float_is_the_same_number(sandbox: Sandbox, tmp_path: Path) -> None:
    """``1000.0`` passes the CLI's check; the SDK must not re-read it as a Decimal and refuse."""
    run = _run(tmp_path, _edit(_config(sandbox), '"page_size": 100.0'))
    assert run.code == 0, run.lines[-5:]
    assert any(m["type"] == "RECORD" for m in run.messages)


def test_number_setting_from_env_is_a_number(sandbox: Sandbox) -> None:
    """``--config ENV``: the SDK leaves ``TAP_ACUMATICA_BACKOFF_BASE_SECONDS`` as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name, value in _config(sandbox).items():
        env[f"TAP_ACUMATICA_{name.upper()}"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
    assert env["TAP_ACUMATICA_BACKOFF_BASE_SECONDS"] == "0.05"
    proc = subprocess.run(
        [sys.executable, "-m", "tap_acumatica", "--config", "ENV"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"type":"RECORD"' in proc.stdout.replace(" ", "")


@pytest.mark.parametrize("wrapper", ["STATE message", "meltano state get"])
def test_pasted_state_message_is_unwrapped_with_one_warning(
    sandbox: Sandbox, tmp_path: Path, wrapper: str
) -> None:
    """The bookmark inside is honoured (a future one: nothing to read), not silently dropped."""
    state = {"bookmarks": {"Customer": {**GOOD_MARK, "replication_key_value": "2999-01-01"}}}
    pasted = (
        {"type": "STATE", "value": state} if wrapper == "STATE message" else {"singer_state": state}
    )
    run = _run(tmp_path, _config(sandbox), state=pasted)
    assert run.code == 0, run.lines[-5:]
    warnings = [line for line in run.lines if run.files["state"] in line]
    assert len(warnings) == 1, run.lines
    assert "WARNING" in warnings[0]
    assert not [m for m in run.messages if m["type"] == "RECORD"]


def test_catalog_that_selects_nothing_warns_once(sandbox: Sandbox, tmp_path: Path) -> None:
    """Meltano users hit this after a typo in ``select``: the run is empty, and says why."""
    catalog = discover(_config(sandbox))
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = False
    run = _run(tmp_path, _config(sandbox), catalog=catalog)
    assert run.code == 0, run.lines[-5:]
    warnings = [line for line in run.lines if "selects no stream" in line]
    assert len(warnings) == 1, run.lines
    assert run.files["catalog"] in warnings[0]
    assert not [m for m in run.messages if m["type"] == "RECORD"]


# -- the selection rule matches the SDK's ------------------------------------------------------

_ROOTS: list[list[dict[str, Any]]] = [
    [],
    [{"breadcrumb": [], "metadata": {}}],
    [{"breadcrumb": [], "metadata": {"selected": True}}],
    [{"breadcrumb": [], "metadata": {"selected": False}}],
    [{"breadcrumb": [], "metadata": {"selected-by-default": True}}],
    [{"breadcrumb": [], "metadata": {"selected-by-default": True, "selected": False}}],
    [{"breadcrumb": [], "metadata": {"inclusion": "automatic", "selected": False}}],
    [{"breadcrumb": [], "metadata": {"inclusion": "unsupported", "selected": True}}],
    [{"breadcrumb": [], "metadata": {"inclusion": "available"}}],
    [{"breadcrumb": ["properties", "id"], "metadata": {"selected": False}}],
    [
        {"breadcrumb": [], "metadata": {"selected": True}},
        {"breadcrumb": [], "metadata": {"selected": False}},
    ],
]


@pytest.mark.parametrize("metadata", _ROOTS)
def test_selects_nothing_uses_the_sdk_rule(metadata: list[dict[str, Any]]) -> None:
    from singer_sdk.singerlib.catalog import MetadataMapping  # noqa: PLC0415

    from tap_acumatica import inputs  # noqa: PLC0415

    sdk = MetadataMapping.from_iterable(metadata).resolve_selection().get((), True)
    assert inputs._selected({"metadata": metadata}) is sdk
