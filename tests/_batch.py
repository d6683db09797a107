"""BATCH mode in tests: read the records of BATCH files, check that STATE follows its data."""

from __future__ import annotations

import gzip
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tap_acumatica.stamps import parse_micros


def batch_config(root: Path, size: int) -> dict[str, Any]:
    """``batch_config`` for jsonl + gzip files under ``root``, ``size`` records a file."""
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri(), "prefix": "batch-"},
        "batch_size": size,
    }


def batch_records(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of a BATCH message's files (``file://`` URLs; gzip or plain jsonl)."""
    out: list[dict[str, Any]] = []
    for url in message["manifest"]:
        parsed = urllib.parse.urlparse(url)
        assert parsed.scheme == "file", url
        raw = Path(urllib.parse.unquote(parsed.path)).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        out += [json.loads(line) for line in raw.splitlines() if line.strip()]
    return out


def delivered(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records a RECORD or BATCH message hands to the target (none for other types)."""
    if message.get("type") == "RECORD":
        return [message["record"]]
    if message.get("type") == "BATCH":
        return batch_records(message)
    return []


def records_by_stream(messages: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Record ids per stream, from RECORD messages and BATCH files alike."""
    out: dict[str, set[str]] = {}
    for msg in messages:
        for record in delivered(msg):
            out.setdefault(msg["stream"], set()).add(record["id"])
    return out


def truth_stamps(box: Any, entities: Iterable[str]) -> dict[str, dict[str, int]]:
    """Stream -> id -> change stamp (µs) of the sandbox's live records."""
    out: dict[str, dict[str, int]] = {}
    for entity in entities:
        for r in box.ground_truth(entity)["live"]:
            stamp = parse_micros(r["changed"]) if r.get("changed") else None
            if stamp is not None:
                out.setdefault(entity, {})[r["id"]] = stamp
    return out


def early_states(
    messages: list[dict[str, Any]],
    truth: Mapping[str, Mapping[str, int]] | None = None,
    before: Mapping[str, set[str]] | None = None,
) -> list[str]:
    """STATE messages that promise data not yet delivered; empty when STATE follows its data.

    For every STATE and every stream bookmark B in it: each record stamped before B, of the
    run or of ``truth`` (:func:`truth_stamps`: a run that stopped early did not emit them
    all), must have left in a RECORD or BATCH message before that STATE, or in an earlier
    run (``before``: ids per stream). Resuming from that STATE reads from B on, so such a
    record would be lost if the process died there.
    """
    keys: dict[str, str] = {}
    stamps = {s: dict(ids) for s, ids in (truth or {}).items()}  # stream -> id -> stamp (µs)
    for msg in messages:
        if msg.get("type") == "SCHEMA" and msg.get("bookmark_properties"):
            keys[msg["stream"]] = msg["bookmark_properties"][0]
        for record in delivered(msg):
            stamp = parse_micros(str(record.get(keys.get(msg["stream"], ""), "")))
            if stamp is not None:
                stamps.setdefault(msg["stream"], {})[record["id"]] = stamp
    problems: list[str] = []
    seen = {stream: set(ids) for stream, ids in (before or {}).items()}
    for index, msg in enumerate(messages):
        for record in delivered(msg):
            seen.setdefault(msg["stream"], set()).add(record["id"])
        if msg.get("type") != "STATE":
            continue
        for stream, entry in (msg["value"].get("bookmarks") or {}).items():
            mark = entry.get("replication_key_value") if isinstance(entry, dict) else None
            bound = parse_micros(mark) if isinstance(mark, str) else None
            if bound is None:
                continue
            before = {i for i, s in stamps.get(stream, {}).items() if s < bound}
            missing = before - seen.get(stream, set())
            if missing:
                problems.append(
                    f"message {index}: STATE {stream} {mark} before {len(missing)} of its records"
                )
    return problems
