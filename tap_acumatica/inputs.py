"""The ``--config``, ``--state`` and ``--catalog`` files, read and checked before the SDK sees them.

Each is JSON: a byte-order mark is allowed (Notepad and PowerShell write one); ``NaN``,
``Infinity`` and numbers too large for a float are not, nor nesting deeper than
:data:`MAX_DEPTH`. A state must be an object whose bookmarks are date-times; a whole STATE
message, or ``meltano state get`` output, is accepted and unwrapped. A catalog must be the
object ``--discover`` writes, every stream with a schema that has properties. A file that
fails gets one line naming it and saying what to fix (:class:`InputFileError`).
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from tap_acumatica.errors import InputFileError
from tap_acumatica.stamps import parse_datetime

#: Deeper JSON is refused: no real config, state or catalog comes near it (a discovered
#: catalog with nested ``expand`` nests 11 levels), and deeper input only exhausts the
#: recursion of the parsers and validators after it.
MAX_DEPTH = 100

_EXAMPLES = {
    "config": '{"base_url": "https://example.acumatica.com", ...}',
    "state": '{"bookmarks": {"Customer": {"replication_key_value": "2024-01-31T00:00:00+00:00"}}}',
    "catalog": '{"streams": [...]} as written by --discover',
}


class Checked(NamedTuple):
    """A file's JSON, as the SDK should get it, and warnings to log about it."""

    data: dict[str, Any]
    warnings: list[str]


class _BadNumberError(ValueError):
    """A JSON number Python would read as NaN or infinity."""


def _constant(token: str) -> float:
    raise _BadNumberError(token)


def finite_number(text: str) -> float:
    """``float(text)``, refusing NaN and infinities (a ValueError)."""
    number = float(text)
    if not math.isfinite(number):
        raise _BadNumberError(text)
    return number


def read_json(path: str, kind: str) -> Any:
    """The JSON value of the ``kind`` file at ``path`` (``-``: stdin), or InputFileError."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        msg = f"{kind} file {path} does not exist"
        raise InputFileError(msg) from None
    except OSError as exc:
        msg = f"cannot read {kind} file {path}: {exc.strerror or exc}"
        raise InputFileError(msg) from None
    value = _parse(raw, path, kind)
    if depth(value) > MAX_DEPTH:
        _too_deep(path, kind)
    return value


def _parse(raw: bytes, path: str, kind: str) -> Any:
    try:
        return json.loads(_decode(raw), parse_constant=_constant, parse_float=finite_number)
    except _BadNumberError as exc:
        msg = (
            f"{kind} file {path} holds the number {exc}, which JSON does not allow (NaN, "
            "Infinity, or too large for a float): write a finite number"
        )
        raise InputFileError(msg) from None
    except UnicodeDecodeError as exc:
        msg = f"{kind} file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        raise InputFileError(msg) from None
    except RecursionError:
        _too_deep(path, kind)
    except ValueError as exc:
        empty = " (it is empty)" if not raw.strip() else ""
        msg = f"{kind} file {path} is not valid JSON (line {getattr(exc, 'lineno', '?')}){empty}"
        raise InputFileError(msg) from None


def _too_deep(path: str, kind: str) -> NoReturn:
    msg = f"{kind} file {path} nests deeper than {MAX_DEPTH} levels: it is not a {kind} file"
    raise InputFileError(msg)


def _decode(raw: bytes) -> str:
    """Text of ``raw``: UTF-8, or UTF-16 when it starts with that byte-order mark."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def depth(value: Any) -> int:
    """How many arrays/objects deep ``value`` nests (0 for a scalar); iterative."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def read_object(path: str, kind: str) -> dict[str, Any]:
    """The JSON object in the ``kind`` file at ``path``; InputFileError for another value."""
    value = read_json(path, kind)
    if not isinstance(value, dict):
        msg = (
            f"{kind} file {path} must hold a JSON object such as {_EXAMPLES[kind]}, not "
            f"{_json_type(value)}"
        )
        raise InputFileError(msg)
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    for kind, name in ((str, "a string"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "a number"


# -- state -----------------------------------------------------------------------------------


def read_state(path: str) -> Checked:
    """The ``--state`` file: an object of bookmarks, each a date-time; a wrapper is unwrapped."""
    value = read_json(path, "state")
    warnings = []
    wrapper = _wrapper(value)
    if wrapper:
        value = value[wrapper]
        warnings.append(
            f"state file {path} holds a whole {'STATE message' if wrapper == 'value' else wrapper}"
            f" object; reading the state in its {wrapper!r}"
        )
    if not isinstance(value, dict):
        msg = (
            f"state file {path} must hold a JSON object such as {_EXAMPLES['state']}, not "
            f"{_json_type(value)}"
        )
        raise InputFileError(msg)
    bookmarks = value.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        msg = f'state file {path}: "bookmarks" must be an object of stream name → stream state'
        raise InputFileError(msg)
    for stream, state in bookmarks.items():
        _check_stream_state(path, str(stream), state)
    return Checked(value, warnings)


def _wrapper(value: Any) -> str | None:
    """``value`` for a STATE message, ``singer_state`` for ``meltano state get``; else None."""
    if not isinstance(value, dict) or "bookmarks" in value:
        return None
    if value.get("type") == "STATE" and "value" in value:
        return "value"
    if isinstance(value.get("singer_state"), dict):
        return "singer_state"
    return None


def _check_stream_state(path: str, stream: str, state: Any) -> None:
    if not isinstance(state, dict):
        msg = (
            f"state file {path}: the state of stream {stream} must be an object, not "
            f"{_json_type(state)}"
        )
        raise InputFileError(msg)
    _check_bookmark(path, stream, state.get("replication_key_value"))
    partitions = state.get("partitions", [])
    if not isinstance(partitions, list) or not all(isinstance(p, dict) for p in partitions):
        msg = f'state file {path}: "partitions" of stream {stream} must be an array of objects'
        raise InputFileError(msg)
    for partition in partitions:
        _check_bookmark(path, stream, partition.get("replication_key_value"))


def _check_bookmark(path: str, stream: str, value: Any) -> None:
    """A bookmark must be a date-time both this tap and the SDK can read."""
    if value is None or (isinstance(value, str) and is_date_time(value)):
        return
    shown = repr(value)[:80]
    msg = (
        f"state file {path}: the bookmark of stream {stream} ({shown}) is not an ISO-8601 "
        "date-time; write one such as 2024-01-31T00:00:00+00:00, or remove the stream from "
        "bookmarks to read it from start_date"
    )
    raise InputFileError(msg)


def is_date_time(value: str) -> bool:
    """True when both ``stamps.parse_datetime`` and the SDK (``fromisoformat``) read it."""
    if parse_datetime(value) is None:
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# -- catalog ---------------------------------------------------------------------------------


def read_catalog(path: str) -> Checked:
    """The ``--catalog`` file: the object ``--discover`` writes; warns if it selects nothing."""
    catalog = read_object(path, "catalog")
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        msg = (
            f'catalog file {path} has no "streams" array: pass the output of '
            "tap-acumatica --discover"
        )
        raise InputFileError(msg)
    for index, entry in enumerate(streams):
        _check_entry(path, index, entry)
    warnings = []
    if not any(map(_selected, streams)):
        warnings.append(
            f"catalog file {path} selects no stream, so nothing will be read: mark the streams "
            'to read with "selected": true in their metadata (breadcrumb []), e.g. meltano '
            "select tap-acumatica Customer '*', and check the names for typos"
        )
    return Checked(catalog, warnings)


def _check_entry(path: str, index: int, entry: Any) -> None:
    """One stream of the catalog: a name, a schema with properties, well-formed metadata."""
    name = entry.get("tap_stream_id") if isinstance(entry, dict) else None
    where = f"catalog file {path}: stream {name if name else f'#{index + 1}'}"
    if not isinstance(name, str) or not name:
        msg = f'{where} must be an object with a "tap_stream_id"; run --discover again'
        raise InputFileError(msg)
    schema = entry.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        msg = f"{where} has a schema without properties; run --discover again and reselect it"
        raise InputFileError(msg)
    for key in ("replication_key",):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            msg = f'{where}: "{key}" must be a field name (a string)'
            raise InputFileError(msg)
    metadata = entry.get("metadata", [])
    if not isinstance(metadata, list) or not all(_metadata_item(m) for m in metadata):
        msg = (
            f'{where}: "metadata" must be an array of {{"breadcrumb": [...], "metadata": {{...}}}} '
            "objects; run --discover again"
        )
        raise InputFileError(msg)


def _metadata_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("breadcrumb"), list)
        and isinstance(item.get("metadata"), dict)
    )


def _selected(entry: Mapping[str, Any]) -> bool:
    """Whether singer-sdk will sync the stream: its root metadata, resolved as the SDK does.

    The SDK's ``Stream.selected`` defaults to True when the catalog has no root (``[]``)
    breadcrumb for the stream, metadata or not.
    """
    items = entry.get("metadata") or []
    roots = [m["metadata"] for m in items if m["breadcrumb"] == []]
    if not roots:
        return True
    root = roots[-1]
    if root.get("inclusion") in ("unsupported", "automatic"):
        return bool(root["inclusion"] == "automatic")
    for key in ("selected", "selected-by-default"):
        if root.get(key) is not None:
            return bool(root[key])
    return False
