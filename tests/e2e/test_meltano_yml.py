"""meltano.yml mirrors the tap (``tap-acumatica --about --format=json``) and is a valid project."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import sync_docs
from tests.support import REPO

REQUIRED_CAPABILITIES = {
    "state",
    "catalog",
    "discover",
    "about",
    "stream-maps",
    "schema-flattening",
    "batch",
    "structured-logging",
}
SECRET_PREFIXES = ("sbxpw-", "sbxcs-", "sbxat-", "sbxrt-")


def project() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def plugin(kind: str, name: str) -> dict[str, Any]:
    found = [p for p in project()["plugins"][kind] if p["name"] == name]
    assert len(found) == 1, f"{kind}/{name} defined once"
    return found[0]


def environment(name: str) -> dict[str, Any]:
    found = [e for e in project()["environments"] if e["name"] == name]
    assert len(found) == 1, f"environment {name} defined once"
    return found[0]


def env_plugin(env: str, kind: str, name: str) -> dict[str, Any]:
    plugins = environment(env)["config"]["plugins"].get(kind, [])
    found = [p for p in plugins if p["name"] == name]
    assert len(found) == 1, f"{env}: {kind}/{name}"
    return found[0]


@cache
def about() -> dict[str, Any]:
    return json.loads(sync_docs.about("json"))


def test_meltano_yml_is_valid_against_meltanos_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    try:
        schema_file = resources.files("meltano") / "schemas" / "meltano.schema.json"
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("meltano is not installed (uv sync --all-groups)")
    jsonschema.validate(project(), schema)


def test_requires_meltano_admits_the_locked_meltano() -> None:
    spec = project()["requires_meltano"]
    assert re.fullmatch(r">=\d+(\.\d+)*,<\d+", spec)
    meta = pytest.importorskip("importlib.metadata")
    try:
        version = meta.version("meltano")
    except meta.PackageNotFoundError:
        pytest.skip("meltano is not installed")
    major = int(version.split(".")[0])
    low, high = re.findall(r"\d+", spec)[0], spec.split("<")[1]
    assert int(low) <= major < int(high)


def test_extractor_definition() -> None:
    tap = plugin("extractors", "tap-acumatica")
    assert tap["namespace"] == "tap_acumatica"
    assert tap["pip_url"] == "-e .[postgres]"  # the shared PostgreSQL token store
    assert tap["executable"] == "tap-acumatica"
    assert set(tap["capabilities"]) >= REQUIRED_CAPABILITIES
    assert len(tap["capabilities"]) == len(set(tap["capabilities"]))
    assert "variant" not in tap  # a local plugin: Meltano must never need the Hub


def test_settings_groups_name_real_settings() -> None:
    tap = plugin("extractors", "tap-acumatica")
    names = {s["name"] for s in tap["settings"]}
    groups = tap["settings_group_validation"]
    assert groups
    for group in groups:
        assert "base_url" in group
        assert set(group) <= names, group


def test_capabilities_match_the_tap() -> None:
    declared = set(plugin("extractors", "tap-acumatica")["capabilities"])
    assert set(about()["capabilities"]) <= declared, "declare every capability the tap has"
    assert REQUIRED_CAPABILITIES - {"state", "catalog", "discover"} <= set(about()["capabilities"])


def test_every_tap_setting_is_mirrored_with_label_description_kind_sensitive() -> None:
    schema = about()["settings"]["properties"]
    settings = {s["name"]: s for s in plugin("extractors", "tap-acumatica")["settings"]}
    assert set(settings) == set(schema), (
        "meltano.yml and the tap disagree; run `uv run python -m scripts.sync_docs`"
    )
    for name, prop in schema.items():
        entry = settings[name]
        assert entry["label"], name
        assert entry["kind"] == sync_docs.kind_for(prop), name
        assert entry["description"] == " ".join(str(prop.get("description", "")).split()), name
        assert entry["sensitive"] is bool(prop.get("secret", False)), name
        assert prop.get("description"), f"the tap documents {name}"
        if entry["kind"] == "options":
            assert [o["value"] for o in entry["options"]] == sync_docs._enum(prop)


def test_meltano_yml_block_is_what_the_generator_writes() -> None:
    expected = sync_docs.expected_files()[sync_docs.MELTANO_YML]
    assert (REPO / "meltano.yml").read_text(encoding="utf-8") == expected, (
        "stale: run `uv run python -m scripts.sync_docs`"
    )


def test_secrets_are_marked_sensitive() -> None:
    settings = {s["name"]: s for s in plugin("extractors", "tap-acumatica")["settings"]}
    for name in ("client_secret", "password", "access_token", "refresh_token"):
        assert settings[name]["sensitive"] is True, name
    pg = {s["name"]: s for s in plugin("loaders", "target-postgres")["settings"]}
    assert pg["password"]["sensitive"] is True


def test_loaders_are_pinned_and_self_contained() -> None:
    jsonl = plugin("loaders", "target-jsonl")
    assert re.fullmatch(r"target-jsonl==[\d.]+", jsonl["pip_url"])
    pg = plugin("loaders", "target-postgres")
    assert re.fullmatch(r"meltanolabs-target-postgres==[\d.]+", pg["pip_url"])
    for loader in (jsonl, pg):
        assert loader["namespace"]
        assert loader["executable"]
        assert "variant" not in loader


def test_environment_config_names_only_real_settings() -> None:
    tap_settings = {s["name"] for s in plugin("extractors", "tap-acumatica")["settings"]}
    for env in ("demo", "prod"):
        cfg = env_plugin(env, "extractors", "tap-acumatica")["config"]
        assert set(cfg) <= tap_settings, f"{env}: unknown settings {set(cfg) - tap_settings}"
        for kind in ("loaders",):
            for loader in environment(env)["config"]["plugins"].get(kind, []):
                known = {s["name"] for s in plugin(kind, loader["name"])["settings"]}
                assert set(loader.get("config", {})) <= known, f"{env}/{loader['name']}"


def test_demo_environment_is_the_local_sandbox_and_non_interactive() -> None:
    tap = env_plugin("demo", "extractors", "tap-acumatica")
    cfg = tap["config"]
    assert cfg["base_url"] == "${ACUMATICA_SANDBOX_URL}"
    # The password grant needs no browser; its tokens go to a store inside the project.
    assert cfg["auth_method"] == "oauth_password"
    assert cfg["oauth_settings_location"].startswith("${MELTANO_PROJECT_ROOT}/.meltano/")
    assert tap["select"], "the demo shows a select example"
    assert all(re.fullmatch(r"!?[\w*]+\.[\w*]+", s) for s in tap["select"])
    assert env_plugin("demo", "loaders", "target-jsonl")["config"]["destination_path"]


def test_prod_environment_reads_everything_from_the_environment() -> None:
    cfg = env_plugin("prod", "extractors", "tap-acumatica")["config"]
    assert cfg["base_url"].startswith("${")
    assert cfg["initiate_oauth"] == "REFRESH"  # never interactive in production
    assert cfg["oauth_settings_location"].startswith("${")


def test_no_secret_values_in_meltano_yml() -> None:
    sensitive = {
        s["name"]
        for kind in ("extractors", "loaders")
        for p in project()["plugins"][kind]
        for s in p.get("settings", [])
        if s.get("sensitive")
    }
    text = (REPO / "meltano.yml").read_text(encoding="utf-8")
    for prefix in SECRET_PREFIXES:
        assert prefix not in text

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in sensitive and key != "settings":
                    assert isinstance(value, str)
                    assert value.startswith("$"), f"{key} has a literal value"
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for env in project()["environments"]:
        walk(env.get("config", {}))
    for kind in ("extractors", "loaders"):
        for p in project()["plugins"][kind]:
            walk(p.get("config", {}))


def test_project_files_meltano_writes_are_ignored_by_git() -> None:
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".meltano/" in ignored
    assert "output/" in ignored
    assert ".env" in ignored


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        ({"type": ["string", "null"]}, "string"),
        ({"type": "string", "format": "date-time"}, "date_iso8601"),
        ({"type": ["integer", "null"]}, "integer"),
        ({"type": "number"}, "decimal"),
        ({"type": ["boolean"]}, "boolean"),
        ({"type": "array", "items": {"type": "string"}}, "array"),
        ({"type": ["object", "null"], "properties": {}}, "object"),
        ({"type": "string", "enum": ["a", "b"]}, "options"),
        ({"anyOf": [{"type": "string", "enum": ["x"]}, {"type": "null"}]}, "options"),
        ({"anyOf": [{"type": "object"}, {"type": "string"}]}, "object"),
    ],
)
def test_kind_mapping(schema: dict[str, Any], kind: str) -> None:
    assert sync_docs.kind_for(schema) == kind


def test_labels() -> None:
    assert sync_docs.label_for("base_url", {}) == "Base URL"
    assert sync_docs.label_for("client_id", {}) == "Client ID"
    assert sync_docs.label_for("x", {"title": "Nice Title"}) == "Nice Title"


def test_generator_output_round_trips_through_yaml() -> None:
    settings = [
        {
            "name": "a",
            "label": "A",
            "kind": "string",
            "description": 'x: "y" #z',
            "sensitive": False,
        }
    ]
    block = sync_docs.render_yml_block(settings)
    assert yaml.safe_load(block.replace("\n    ", "\n").strip()) == {"settings": settings}
    assert Path(sync_docs.__file__).parent.name == "scripts"
