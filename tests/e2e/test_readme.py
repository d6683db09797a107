"""README.md: the two quick-start commands, the generated settings table, the promised sections."""

from __future__ import annotations

import json
import os
import re

from scripts import sync_docs
from tests.support import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
# Owned by the benchmark work; linked from the README before they exist.
LATER_DOCS = {"docs/performance.md", "docs/reliability.md"}


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert m, f"README has a '## {title}' section"
    return m.group(1)


def quick_start_commands() -> list[str]:
    block = re.search(r"```(?:bash|sh)\n(.*?)```", section("Quick start"), re.DOTALL)
    assert block, "the quick start has a code block"
    return [
        line.strip()
        for line in block.group(1).splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_quick_start_is_exactly_two_commands_demo_then_tests() -> None:
    commands = quick_start_commands()
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    for command in commands:
        script = REPO / command.removeprefix("./")
        assert script.is_file(), command
        assert os.access(script, os.X_OK), f"{command} is executable"
        text = script.read_text(encoding="utf-8")
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in text
        assert "source scripts/_uv.sh" in text, "bootstraps uv on a machine without it"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = quick_start_commands()[1]
    runs = [line.strip() for line in ci.splitlines() if not line.strip().startswith("#")]
    assert any(line.startswith(test_command) for line in runs)
    assert "set -euo pipefail" in ci
    assert '"$rc" -eq 5' in ci, ".ci/run handles pytest's exit 5 (no tests collected)"
    for package in ("postgresql", "chromium"):
        assert package in ci


def test_demo_runs_a_real_meltano_pipeline_into_target_jsonl() -> None:
    demo = (REPO / "scripts" / "demo.py").read_text(encoding="utf-8")
    assert '"--environment=demo"' in demo
    assert '"tap-acumatica",\n        "target-jsonl"' in demo
    assert "Sandbox(" in demo
    assert "sbx.stop()" in demo


def test_settings_table_is_generated_from_about_and_current() -> None:
    begin, end = README.index(sync_docs.MD_BEGIN), README.index(sync_docs.MD_END)
    block = README[begin + len(sync_docs.MD_BEGIN) : end].strip()
    expected = sync_docs.render_md_table(sync_docs.about("markdown")).strip()
    assert block == expected, (
        "README settings table is stale: run `uv run python -m scripts.sync_docs`"
    )
    names = json.loads(sync_docs.about("json"))["settings"]["properties"]
    for name in names:
        assert f"| {name} |" in block


def test_promised_sections_are_there() -> None:
    for title in (
        "Why it is different",
        "Quick start",
        "Acumatica setup",
        "Authentication",
        "Settings",
        "Streams, incremental replication and guarantees",
        "Performance",
        "Troubleshooting",
    ):
        assert section(title).strip(), title
    setup = section("Acumatica setup")
    assert "SM303010" in setup
    assert "Redirect URI" in setup
    auth = section("Authentication")
    for mode in ("oauth_code", "oauth_password", "cookie", "GETANDREFRESH", "REFRESH", "OFF"):
        assert f"`{mode}`" in auth, mode
    for place in ("oauth_settings_location", "--config", "Meltano", "CI"):
        assert place in auth, place
    trouble = section("Troubleshooting")
    for topic in ("API Login Limit", "invalid_grant", "30-day", "Sliding Expiration", "Time zones"):
        assert topic in trouble, topic
    assert "docs/performance.md" in section("Performance")


def test_auth_methods_in_readme_are_the_taps() -> None:
    props = json.loads(sync_docs.about("json"))["settings"]["properties"]
    methods = sync_docs._enum(props["auth_method"])
    assert methods, "auth_method is an enum"
    table = section("Authentication")
    for method in methods:
        assert f"| `{method}`" in table, method
    for value in sync_docs._enum(props["initiate_oauth"]):
        assert f"`{value}`" in table


def test_relative_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        if target in LATER_DOCS:
            continue
        assert (REPO / target).exists(), f"README links to missing {target}"


def test_no_machine_paths_or_secrets() -> None:
    assert f"{REPO.parent}/" not in README  # the folder this checkout lives in
    assert "/root/" not in README
    for prefix in ("sbxpw-", "sbxcs-", "sbxat-", "sbxrt-"):
        assert prefix not in README
