"""Chaos for inputs: generated bad configs and malformed server answers.

Every case runs the real CLI and must end with a non-zero exit, no traceback, and exactly one
``tap-acumatica: <message>`` line — the last line of stderr (a run that got as far as the
SDK may have logged INFO lines before it), and not the CLI's catch-all "unexpected error".
Nothing printed may contain a sandbox secret.

CI runs a fixed sample of the generated cases, and every bad --state/--catalog file and
absurd number (:func:`input_file_cases`: cheap, caught before any request); ``CHAOS_FULL=1``
runs all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_acumatica.tap import TapAcumatica
from tests.chaos.support import FULL, child_env, record_figure, scan, tap_config
from tests.support import REPO, Sandbox

pytestmark = pytest.mark.chaos

SandboxFactory = Callable[..., Sandbox]
_DROP = object()

#: Wrong values per JSON-schema type.
_WRONG: dict[str, list[Any]] = {
    "string": [12345, ["x"]],
    "integer": ["ten", 2.5],
    "number": ["fast", [1]],
    "boolean": ["yes", 3],
    "array": ["Customer", {"a": 1}],
    "object": ["Customer", [1, 2]],
}


@dataclass
class Case:
    """One bad input: a config patch (or a raw file text), and where it should be caught."""

    name: str
    kind: str
    patch: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None  # the config file's text instead of JSON
    early: bool = True  # caught before the SDK starts: stderr is exactly one line
    faults: dict[str, Any] | None = None
    args: tuple[str, ...] = ()
    tail: str | None = None  # raw JSON text added to the config object (NaN, 1e400, ...)
    state: Any = None  # a --state file: text as is, anything else as JSON
    catalog: Any = None  # a --catalog file: text as is, anything else as JSON
    always: bool = False  # cheap and caught early: run in CI too, not only in the sample


def generated_cases() -> list[Case]:
    """Every generated bad config and malformed-answer case."""
    cases: list[Case] = []
    props = TapAcumatica.config_jsonschema["properties"]
    for name, prop in props.items():
        types = prop.get("type") or []
        types = types if isinstance(types, list) else [types]
        cases.extend(
            Case(f"{name}={json.dumps(value)}", "wrong type", {name: value})
            for value in _wrong_values(types)
        )
        if prop.get("enum"):
            cases.append(Case(f"{name}=bogus", "unknown value", {name: "bogus"}))
    cases += [
        Case("base_url missing", "missing value", {"base_url": _DROP}),
        Case("username missing", "missing value", {"username": _DROP}),
        Case("password missing", "missing value", {"password": _DROP}),
        Case("password empty", "missing value", {"password": ""}),
        Case("oauth client_id missing", "missing value",
             {"auth_method": "oauth_password", "client_secret": "x"}),
        Case("oauth client_secret missing", "missing value",
             {"auth_method": "oauth_password", "client_id": "A@Company"}),
        Case("client_id without tenant", "malformed value",
             {"auth_method": "oauth_password", "client_id": "ABC", "client_secret": "x"}),
        Case("initiate_oauth OFF without access_token", "missing value",
             {"auth_method": "oauth_code", "client_id": "A@Company", "client_secret": "x",
              "initiate_oauth": "OFF"}),
        Case("REFRESH with no token anywhere", "missing value",
             {"auth_method": "oauth_code", "client_id": "A@Company", "client_secret": "x",
              "initiate_oauth": "REFRESH", "oauth_settings_location": "{tmp}/none.json"},
             early=False),
        Case("redirect_uri not absolute", "malformed URL",
             {"auth_method": "oauth_code", "client_id": "A@Company", "client_secret": "x",
              "redirect_uri": "callback", "oauth_settings_location": "{tmp}/t.json"}),
        Case("redirect_uri http to a remote host", "malformed URL",
             {"auth_method": "oauth_code", "client_id": "A@Company", "client_secret": "x",
              "redirect_uri": "http://example.com/cb", "oauth_settings_location": "{tmp}/t.json"}),
        Case("password as a list (secret in the message?)", "wrong type",
             {"password": ["{password}"]}),
    ]  # fmt: skip
    for url in [
        "",
        "   ",
        "example.com",
        "ftp://example.com",
        "http://example.com",
        "https://",
        "https://exa mple.com",
        "https://example.com?company=x",
        "https://example.com/#frag",
        "not a url",
        "http://[::1",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "HTTP://",
    ]:
        cases.append(Case(f"base_url={url!r}", "malformed URL", {"base_url": url}))
    cases.append(
        Case("base_url refuses connections", "unreachable",
             {"base_url": "http://127.0.0.1:9", "max_tries": 2}, early=False)
    )  # fmt: skip
    cases += [
        Case("endpoint_version unknown", "unknown version",
             {"endpoint_version": "99.999.999"}, early=False),
        Case("endpoint_version malformed", "unknown version",
             {"endpoint_version": "latest"}, early=False),
        Case("endpoint_name unknown", "unknown version", {"endpoint_name": "Nope"}, early=False),
        Case("entity unknown", "unknown entity", {"entities": ["NoSuchEntity"]}, early=False),
        Case("entity misspelt", "unknown entity", {"entities": ["customer"]}, early=False),
        Case("expand on an unknown entity", "unknown entity",
             {"expand": {"NoSuch": ["Details"]}}, early=False),
        Case("expand of an unknown member", "unknown entity",
             {"entities": ["SalesOrder"], "expand": {"SalesOrder": ["NoSuchDetail"]}},
             early=False),
        Case("custom field unknown", "unknown entity",
             {"custom_fields": {"Customer": ["Nope.Field"]}}, early=False),
        Case("page_size 0", "bad value", {"page_size": 0}),
        Case("page_size 1", "bad value", {"page_size": 1}),
        Case("page_size negative", "bad value", {"page_size": -5}),
        Case("start_date not a date", "bad value", {"start_date": "yesterday"}),
        Case("start_date impossible", "bad value", {"start_date": "2024-13-45T00:00:00Z"}),
        Case("request_timeout negative", "bad value", {"request_timeout": -1}),
        Case("lookback_minutes negative", "bad value", {"lookback_minutes": -10}),
        Case("wrong password", "bad value", {"password": "wrong"}, early=False),
        Case("unknown tenant", "bad value", {"tenant": "NoSuchCompany"}, early=False),
        Case("config not JSON", "bad file", raw="{base_url: nope"),
        Case("config a JSON list", "bad file", raw="[1, 2, 3]"),
        Case("config empty", "bad file", raw=""),
        Case("config binary", "bad file", raw="\x00\x01\x02"),
        Case("config file missing", "bad file", raw=None, args=("--config", "{tmp}/absent.json")),
    ]  # fmt: skip
    cases += input_file_cases()
    for kind in ("truncate", "html_error", "http_500", "reset"):
        cases.append(
            Case(f"every answer {kind}", "malformed response", {"max_tries": 2},
                 early=False, faults={kind: 100})
        )  # fmt: skip
    cases += [
        Case("endpoint document is an HTML page", "malformed response", {"max_tries": 2},
             early=False, faults={"html_error": 100, "include_discovery": True}),
        Case("endpoint document truncated", "malformed response", {"max_tries": 2},
             early=False, faults={"truncate": 100, "include_discovery": True}),
        Case("Optimization cannot be performed", "malformed response",
             {"entities": ["SalesOrder"], "expand": {"SalesOrder": ["Details"]}}, early=False,
             faults={"optimization": {"SalesOrder": ["Details"]}}),
        Case("every token revoked at once", "malformed response", {"max_tries": 2},
             early=False, faults={"revoke": 100}),
    ]  # fmt: skip
    return cases


def input_file_cases() -> list[Case]:
    """Bad --state/--catalog files, and config files no JSON reader should take as numbers."""
    mark = {"replication_key": "LastModifiedDateTime"}
    entry = {"tap_stream_id": "Customer", "schema": {"type": "object"}, "metadata": []}
    cases = [
        Case("config with NaN", "bad file", tail='"backoff_base_seconds": NaN'),
        Case("config with Infinity", "bad file", tail='"request_timeout": Infinity'),
        Case("config with 1e400", "bad file", tail='"page_size": 1e400'),
        Case("config nested 5000 deep", "bad file", raw="[" * 5000 + "]" * 5000),
        Case("page_size 1e308", "bad value", {"page_size": 1e308}),
        Case("max_tries 10**12", "bad value", {"max_tries": 10**12}),
        Case("lookback_minutes 1e15", "bad value", {"lookback_minutes": 10**15}),
        Case("backoff_base_seconds 1e300", "bad value", {"backoff_base_seconds": 1e300}),
        Case("state not JSON", "bad state", state="{bookmarks"),
        Case("state empty", "bad state", state=""),
        Case("state a string", "bad state", state='"2024-01-31"'),
        Case("state a list", "bad state", state=[{"bookmarks": {}}]),
        Case("state bookmark not a date", "bad state",
             state={"bookmarks": {"Customer": {**mark, "replication_key_value": "yesterday"}}}),
        Case("state bookmark a number", "bad state",
             state={"bookmarks": {"Customer": {**mark, "replication_key_value": 1706659200}}}),
        Case("state bookmarks a list", "bad state", state={"bookmarks": ["Customer"]}),
        Case("catalog not JSON", "bad catalog", catalog="{streams"),
        Case("catalog an array", "bad catalog", catalog=[entry]),
        Case("catalog without streams", "bad catalog", catalog={}),
        Case("catalog schema without properties", "bad catalog", catalog={"streams": [entry]}),
        Case("catalog nested 5000 deep", "bad catalog", catalog="[" * 5000 + "]" * 5000),
    ]  # fmt: skip
    for case in cases:
        case.always = True
    return cases


def _wrong_values(types: list[str]) -> list[Any]:
    if "string" in types:
        return _WRONG["string"]
    for t in ("integer", "number", "boolean", "array", "object"):
        if t in types:
            return _WRONG[t]
    return []


CASES = generated_cases()
SELECTED = (
    CASES
    if FULL
    else [c for c in CASES if c.faults is None and not c.always][::5]
    + [c for c in CASES if c.always]
    + [c for c in CASES if c.faults][::3]
)

#: Bad inputs the tap does not yet turn into one clear line (reported in docs/reliability.md;
#: the test does not fail on them, and passes on them once fixed).
KNOWN_BUGS = {
    "base_url='https://exa mple.com'": "InvalidURL from requests surfaces as 'unexpected error'",
    "base_url='http://[::1'": "ValueError 'Invalid IPv6 URL' surfaces as 'unexpected error'",
    "start_date not a date": "start_date's date-time format is not validated; the parse "
    "fails later as 'unexpected error (ValueError …)'",
    "start_date impossible": "same: 'unexpected error (ValueError: month must be in 1..12)'",
    "request_timeout negative": "accepted by validation; requests raises ValueError, shown "
    "as 'unexpected error'",
    "lookback_minutes negative": "accepted (exit 0): a negative look-back starts the read "
    "after the bookmark, so records in [bookmark, bookmark + |lookback|) are never read",
}


def _run_case(case: Case, box: Sandbox, tmp: Path, index: int) -> dict[str, Any]:
    base = tap_config(box, ["Customer"], max_tries=3)
    creds = box.credentials()
    config = dict(base)
    for key, value in case.patch.items():
        if value is _DROP:
            config.pop(key, None)
            continue
        config[key] = _fill(value, tmp, creds)
    path = tmp / f"bad{index}.json"
    if case.raw is not None:
        path.write_text(case.raw, encoding="utf-8")
    elif case.tail is not None:
        path.write_text(json.dumps(config)[:-1] + ", " + case.tail + "}", encoding="utf-8")
    else:
        path.write_text(json.dumps(config), encoding="utf-8")
    args = [_fill(a, tmp, creds) for a in case.args] or ["--config", str(path)]
    for option in ("state", "catalog"):
        content = getattr(case, option)
        if content is not None:
            extra = tmp / f"{option}{index}.json"
            extra.write_text(content if isinstance(content, str) else json.dumps(content))
            args += [f"--{option}", str(extra)]
    proc = subprocess.run(
        [sys.executable, "-m", "tap_acumatica", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
        check=False,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("tap-acumatica: ")]
    return {
        "case": case.name,
        "kind": case.kind,
        "early": case.early,
        "returncode": proc.returncode,
        "traceback": "Traceback" in proc.stderr,
        "error_lines": len(errors),
        "last_is_error": bool(lines) and lines[-1].startswith("tap-acumatica: "),
        "stderr_lines": len(lines),
        "unexpected": any("rerun with LOGLEVEL=DEBUG" in e for e in errors),
        "message": errors[-1] if errors else (lines[-1] if lines else ""),
        "stdout_records": proc.stdout.count('"type":"RECORD"'),
        "output": proc.stdout + proc.stderr,
    }


def _fill(value: Any, tmp: Path, creds: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp)).replace("{password}", creds["password"])
    if isinstance(value, list):
        return [_fill(v, tmp, creds) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, tmp, creds) for k, v in value.items()}
    return value


def _ok(result: dict[str, Any]) -> bool:
    """Non-zero, no traceback, one ``tap-acumatica:`` line that ends stderr, not the catch-all.

    INFO lines the SDK logged before a later check failed are allowed before it.
    """
    return (
        result["returncode"] != 0
        and not result["traceback"]
        and result["error_lines"] == 1
        and result["last_is_error"]
        and not result["unexpected"]
        and result["secrets"] == 0
    )


def test_bad_configs_and_malformed_answers_fail_with_one_clear_line(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Non-zero exit, one ``tap-acumatica:`` line, no traceback, no secret — for every case."""
    plain = sandbox_factory("--records", "50")
    results: list[dict[str, Any]] = []
    static = [c for c in SELECTED if c.faults is None]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results += pool.map(lambda ic: _run_case(ic[1], plain, tmp_path, ic[0]), enumerate(static))
    for i, case in enumerate(c for c in SELECTED if c.faults is not None):
        box = sandbox_factory("--records", "50", "--faults", json.dumps(case.faults))
        results.append(_run_case(case, box, tmp_path, 1000 + i))
        prefixes = box.credentials()["secret_prefixes"]
        results[-1]["secrets"] = scan(results[-1].pop("output"), prefixes, "bad input")
    prefixes = plain.credentials()["secret_prefixes"]
    for result in results:
        if "output" in result:
            result["secrets"] = scan(result.pop("output"), prefixes, "bad input")
    failing = [r for r in results if not _ok(r)]
    bad = [r for r in failing if r["case"] not in KNOWN_BUGS]
    known = [
        {"case": r["case"], "bug": KNOWN_BUGS[r["case"]], "message": r["message"][:200]}
        for r in failing
        if r["case"] in KNOWN_BUGS
    ]
    record_figure(
        "bad_input",
        {
            "cases": len(results),
            "generated": len(CASES),
            "by_kind": _count(results, "kind"),
            "nonzero_exit": sum(1 for r in results if r["returncode"] != 0),
            "one_clear_line": sum(1 for r in results if _ok(r)),
            "tracebacks": sum(1 for r in results if r["traceback"]),
            "secret_hits": sum(r["secrets"] for r in results),
            "alone_on_stderr": sum(1 for r in results if _ok(r) and r["stderr_lines"] == 1),
            "known_bugs": known,
            "failures": bad,
            "messages": sorted({r["message"][:160] for r in results}),
        },
    )
    assert not bad, json.dumps(bad, indent=1)[:6000]


def _count(results: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        out[r[key]] = out.get(r[key], 0) + 1
    return out
