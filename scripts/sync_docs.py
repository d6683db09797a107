"""Regenerate what is derived from the tap's own settings, so docs never drift from the code.

* meltano.yml: the tap-acumatica ``settings:`` block (label, description, kind, sensitive),
  from ``tap-acumatica --about --format=json``;
* README.md: the settings table, from ``tap-acumatica --about --format=markdown``.

Usage (from the repo root)::

    uv run python -m scripts.sync_docs          # rewrite both files
    uv run python -m scripts.sync_docs --check  # exit 1 if either is stale (what the tests check)
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
MELTANO_YML = REPO / "meltano.yml"
README = REPO / "README.md"

YML_BEGIN = "    # >>> settings:"
YML_END = "    # <<< settings"
MD_BEGIN = "<!-- >>> settings: generated from `tap-acumatica --about --format=markdown` -->"
MD_END = "<!-- <<< settings -->"

# Words whose capitalisation a plain .title() gets wrong in labels.
_WORDS = {"url": "URL", "id": "ID", "oauth": "OAuth", "api": "API", "uri": "URI", "ssl": "SSL"}


@functools.cache
def about(fmt: str) -> str:
    """Output of ``tap-acumatica --about --format=<fmt>`` run from this checkout."""
    proc = subprocess.run(
        [sys.executable, "-m", "tap_acumatica", "--about", f"--format={fmt}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        msg = f"tap-acumatica --about failed ({proc.returncode}): {proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    return proc.stdout


def label_for(name: str, schema: dict[str, Any]) -> str:
    """The schema's title, else the setting name in words ("base_url" → "Base URL")."""
    title = schema.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    return " ".join(_WORDS.get(w, w.capitalize()) for w in name.split("_"))


def _types(schema: dict[str, Any]) -> list[str]:
    found: list[str] = []
    raw = schema.get("type")
    if isinstance(raw, str):
        found.append(raw)
    elif isinstance(raw, list):
        found.extend(t for t in raw if isinstance(t, str))
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []) or []:
            if isinstance(sub, dict):
                found.extend(_types(sub))
    return [t for t in dict.fromkeys(found) if t != "null"]


def _enum(schema: dict[str, Any]) -> list[Any]:
    if isinstance(schema.get("enum"), list):
        return [v for v in schema["enum"] if v is not None]
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []) or []:
            if isinstance(sub, dict) and isinstance(sub.get("enum"), list):
                return [v for v in sub["enum"] if v is not None]
    return []


def kind_for(schema: dict[str, Any]) -> str:
    """Meltano setting kind for a JSON Schema property."""
    types = _types(schema)
    if _enum(schema):
        return "options"
    if len(types) != 1:
        # Unions such as "list of fields, or the string 'all'" travel as JSON objects/arrays.
        return "object" if "object" in types else ("array" if "array" in types else "string")
    kind = types[0]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "date_iso8601"
        return "string"
    return {"integer": "integer", "number": "decimal", "boolean": "boolean"}.get(kind, kind)


def meltano_settings(about_json: dict[str, Any]) -> list[dict[str, Any]]:
    """The tap's top-level settings as Meltano setting definitions, in the tap's order."""
    out: list[dict[str, Any]] = []
    for name, schema in about_json["settings"].get("properties", {}).items():
        entry: dict[str, Any] = {
            "name": name,
            "label": label_for(name, schema),
            "kind": kind_for(schema),
            "description": " ".join(str(schema.get("description", "")).split()),
            "sensitive": bool(schema.get("secret", False)),
        }
        if entry["kind"] == "options":
            entry["options"] = [{"label": str(v), "value": v} for v in _enum(schema)]
        out.append(entry)
    return out


def render_yml_block(settings: list[dict[str, Any]]) -> str:
    """The ``settings:`` block, indented to sit under the extractor."""
    body = yaml.safe_dump(
        {"settings": settings}, sort_keys=False, width=100, allow_unicode=True, indent=2
    )
    lines = [("    " + line) if line else line for line in body.rstrip("\n").split("\n")]
    return "\n".join(lines)


def render_md_table(markdown: str) -> str:
    """The settings table (and its nested rows) from the SDK's markdown about output."""
    start = markdown.index("| Setting |")
    end = markdown.find("\n\n", start)
    table = markdown[start : end if end != -1 else len(markdown)].rstrip()
    note = (
        "\n\nA full list of supported settings and capabilities is available by running: "
        "`tap-acumatica --about`"
    )
    return table + note


def replace_between(text: str, begin: str, end: str, new_body: str, *, where: str) -> str:
    """Replace everything between the ``begin`` line and the ``end`` line."""
    pattern = re.compile(
        rf"(^{re.escape(begin)}[^\n]*\n)(.*?)(^{re.escape(end)}[^\n]*$)", re.DOTALL | re.MULTILINE
    )
    if not pattern.search(text):
        msg = f"markers {begin!r} … {end!r} not found in {where}"
        raise RuntimeError(msg)
    return pattern.sub(lambda m: m.group(1) + new_body + "\n" + m.group(3), text, count=1)


def expected_files() -> dict[Path, str]:
    """What meltano.yml and README.md should contain, given the tap's current settings."""
    about_json = json.loads(about("json"))
    yml = replace_between(
        MELTANO_YML.read_text(encoding="utf-8"),
        YML_BEGIN,
        YML_END,
        render_yml_block(meltano_settings(about_json)),
        where="meltano.yml",
    )
    readme = replace_between(
        README.read_text(encoding="utf-8"),
        MD_BEGIN,
        MD_END,
        render_md_table(about("markdown")),
        where="README.md",
    )
    return {MELTANO_YML: yml, README: readme}


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) meltano.yml and README.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, content in expected_files().items():
        if path.read_text(encoding="utf-8") != content:
            stale.append(path.name)
            if not args.check:
                path.write_text(content, encoding="utf-8")
    if args.check and stale:
        sys.stderr.write(f"stale: {', '.join(stale)}; run `uv run python -m scripts.sync_docs`\n")
        return 1
    for name in stale:
        sys.stderr.write(f"updated {name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
