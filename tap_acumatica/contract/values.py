"""Answers and values the endpoint document does not promise (docs/acumatica-api.md §3).

A list answer must be an array of records, each with an ``id``: anything else stops the run in
one line (:func:`check_rows`, :func:`check_ids`). A value of another type than the document
says is coerced when nothing is lost (:func:`coerce`), else written as null; members the
document does not know are dropped. :class:`Drift` tells each such field once per stream.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tap_acumatica.contract.document import SYSTEM_MEMBERS
from tap_acumatica.errors import AnswerShapeError

if TYPE_CHECKING:
    import datetime as dt

OK_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, Decimal, float}),
    "boolean": frozenset({bool}),
    "date-time": frozenset({str}),
}


class Drift:
    """Values unlike the endpoint document, and members it does not know (§3), told once each.

    The class attributes name the source of the types in the messages (``odata.values`` reuses
    this with ``$metadata``).
    """

    SOURCE = "the endpoint document"
    CITE = "docs/acumatica-api.md §3"
    UNIT = "field"
    NAIVE_HINT = (
        "if it is the tenant's clock time, as custom date-times on real instances are "
        "(docs/acumatica-api.md §3), set date_only_time_zone to the tenant's time zone"
    )
    UNKNOWN_HINT = "a newer or customised endpoint?"

    def __init__(self, stream: str, log: Callable[[int, str], None] | None = None) -> None:
        """``log(level, message)`` is called once per field (the stream's logger)."""
        self.stream = stream
        self._log = log
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def _first(self, key: str) -> bool:
        with self._lock:
            new = key not in self._seen
            self._seen.add(key)
        return new and self._log is not None

    def value(self, label: str, value: Any, declared: str, got: Any) -> None:
        """``value`` came where the source says ``declared``; ``got`` is what was written."""
        if not self._first(label) or self._log is None:
            return
        if got is None:
            self._log(
                logging.WARNING,
                f"{self.stream}: {label} = {value!r:.80} is not a {declared} as {self.SOURCE} "
                f"says ({self.CITE}) and cannot be read as one without loss; written as null "
                f"(told once per {self.UNIT})",
            )
        else:
            self._log(
                logging.INFO,
                f"{self.stream}: {label} = {value!r:.80} where {self.SOURCE} says {declared} "
                f"({self.CITE}); written as {got!r}, the same value (told once per {self.UNIT})",
            )

    def naive(self, label: str, value: str) -> None:
        """A date-time without an offset, read as UTC because no tenant zone is set."""
        if self._first("~" + label) and self._log is not None:
            self._log(
                logging.WARNING,
                f"{self.stream}: {label} = {value!r} has no offset and was read as UTC; "
                f"{self.NAIVE_HINT} (told once per {self.UNIT})",
            )

    def unknown(self, names: Iterable[str]) -> None:
        """Members the source does not know: dropped, each named once (version drift)."""
        for name in sorted(names):
            if self._first("?" + name) and self._log is not None:
                self._log(
                    logging.INFO,
                    f"{self.stream}: {name} is not in {self.SOURCE} ({self.UNKNOWN_HINT}); "
                    "it is dropped",
                )


@dataclass(frozen=True, slots=True)
class Field:
    """What a scalar or date-time value should be, and where to report one that is not."""

    label: str
    declared: str
    ok: frozenset[type]
    zone: dt.tzinfo | None = None
    drift: Drift | None = None


_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def coerce(value: Any, declared: str) -> Any:
    """``value`` as a ``declared`` JSON type when nothing is lost, else None.

    docs/acumatica-api.md §3: older data can carry values of another type than the endpoint
    document says (Manufacturing times as ``"0100"`` in an IntValue field). The tap keeps the
    schema the document gives and converts only what converts exactly: integer text (``"0100"``
    is the integer 100: leading zeros are formatting), an integral number for an integer,
    number text for a number (kept exact as a Decimal), ``"true"``/``"false"`` for a boolean,
    and a number for a string (its JSON text). Anything else (``"1:30"`` for an integer, a
    number for a date-time) cannot be written in the declared type and becomes null.
    """
    kind = type(value)
    if declared == "integer":
        if kind is str and _INT_TEXT.fullmatch(value.strip()):
            return int(value)
        if kind in (Decimal, float) and value == value // 1:
            return int(value)
    elif declared == "number":
        if kind is str and _NUMBER_TEXT.fullmatch(value.strip()):
            try:
                return Decimal(value.strip())
            except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
                return None
    elif declared == "boolean":
        if kind is str and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
    elif declared == "string" and kind in (int, Decimal, float):
        return str(value)
    return None


_JSON_KINDS = {
    int: "numbers",
    float: "numbers",
    Decimal: "numbers",
    str: "strings",
    bool: "booleans",
    list: "arrays",
    type(None): "nulls",
}


def check_rows(rows: Sequence[Any], where: str) -> None:
    """Raise unless every element of a list answer is a JSON object (a record)."""
    odd = [row for row in rows if not isinstance(row, Mapping)]
    if not odd:
        return
    kinds = sorted({_JSON_KINDS.get(type(row), type(row).__name__) for row in odd})
    msg = (
        f"{where} answered a JSON array of {' and '.join(kinds)} (e.g. {odd[0]!r:.60}), not "
        "of records: the server did not answer like Acumatica's contract-based API "
        "(docs/acumatica-api.md §3); check base_url and that nothing between the tap and "
        "the instance rewrites answers"
    )
    raise AnswerShapeError(msg)


def check_ids(records: Sequence[Mapping[str, Any]], where: str) -> None:
    """Raise unless every record has an ``id`` (text): records are keyed and deduplicated by it."""
    for number, record in enumerate(records, 1):
        rid = record.get("id")
        if isinstance(rid, str) and rid:
            continue
        shown = ", ".join(
            f"{k}={v!r:.40}" for k, v in record.items() if k != "id" and not isinstance(v, dict)
        )
        msg = (
            f"{where} answered a record without an id (record {number} of the page, "
            f"id={rid!r}; {shown[:200] or 'no fields'}): every record of the contract-based "
            "API has one (docs/acumatica-api.md §3), and without it the record cannot be "
            "keyed or told apart, so the run stops rather than drop it"
        )
        raise AnswerShapeError(msg)


def unknown_members(rows: Iterable[Any], known: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Members of raw records that ``known`` (a plan) lacks, system members aside, as paths."""
    found: set[str] = set()
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        for name, value in row.items():
            if name in SYSTEM_MEMBERS:
                continue
            node = known.get(name)
            if node is None:
                found.add(prefix + name)
            elif isinstance(node, tuple) and isinstance(node[1], dict) and node[1]:
                inner = value if isinstance(value, list) else [value]
                found |= unknown_members(inner, node[1], f"{prefix}{name}/")
    return found
