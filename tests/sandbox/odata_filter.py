"""OData ``$filter`` parsing for the sandbox's GI and DAC services (api.md §8).

A small recursive-descent parser (v4 syntax; v3 typed literals tolerated) that compiles a filter
into a predicate over flat rows. ``used`` names the columns the filter refers to (a GI answers a
filter on a formula column with an empty body, api.md §8); ``literal`` adjusts every date-time
literal (the DAC service rounds them to SQL Server ticks, api.md §3 "Precision").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.sandbox.odata_query import Column


class ODataError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')"
    r"|(?P<typed>(?:datetimeoffset|datetime|guid)'[^']*')"
    r"|(?P<dt>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)(?![\w-])"
    r"|(?P<guid>[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})"
    r"|(?P<num>-?\d+(?:\.\d+)?[mMdD]?)"
    r"|(?P<punct>[(),])"
    r"|(?P<word>[A-Za-z_][\w.]*))"
)
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
DATES = ("DateTime", "DateTimeOffset", "Date")
FUNCS = {"contains", "startswith", "endswith", "substringof", "tolower", "toupper"}

Pred = Callable[[dict[str, Any]], Any]


class FilterParser:
    """A small OData $filter parser (v4 syntax; v3 typed literals tolerated).

    ``v3`` (the legacy GI service, api.md §8) speaks OData v3 only: date-times are typed
    literals (``datetime'2024-01-01T00:00:00'``, ``datetimeoffset'…'``), a bare ISO date-time
    is a syntax error and ``contains`` (v4) an unknown function (v3 has ``substringof``).
    """

    def __init__(
        self,
        text: str,
        cols: dict[str, Column],
        tz: dt.tzinfo,
        *,
        v3: bool = False,
        literal: Callable[[dt.datetime], dt.datetime] | None = None,
    ) -> None:
        self.text = text
        self.literal = literal
        self.used: set[str] = set()
        self.cols = cols
        self.tz = tz
        self.v3 = v3
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ODataError(400, f"Syntax error at position {pos} in '{self.text}'.")
            kind = m.lastgroup or ""
            if v3 and kind == "dt":  # OData v3 has no bare date-time literals
                raise ODataError(400, f"Syntax error at position {pos} in '{self.text}'.")
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def parse(self) -> Pred:
        pred = self._or()
        if self.i != len(self.tokens):
            raise ODataError(400, f"Syntax error: unexpected '{self.tokens[self.i][1]}'.")
        return pred

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None or (value is not None and tok[1].lower() != value):
            wanted = f"'{value}'" if value else "an operand"
            raise ODataError(400, f"Syntax error in '{self.text}': expected {wanted}.")
        self.i += 1
        return tok

    def _word(self, *words: str) -> bool:
        tok = self._peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() in words

    def _or(self) -> Pred:
        left = self._and()
        while self._word("or"):
            self._take()
            right = self._and()
            left = _either(left, right)
        return left

    def _and(self) -> Pred:
        left = self._not()
        while self._word("and"):
            self._take()
            right = self._not()
            left = _both(left, right)
        return left

    def _not(self) -> Pred:
        if self._word("not"):
            self._take()
            inner = self._not()
            return lambda r: inner(r) is not True
        return self._compare()

    def _compare(self) -> Pred:
        left, lcol = self._operand()
        if self._word(*COMPARE):
            op = COMPARE[self._take()[1].lower()]
            right, rcol = self._operand()
            col = lcol or rcol
            lconv, rconv = self._coerce(left, col), self._coerce(right, col)

            def cmp(r: dict[str, Any]) -> bool:
                a, b = lconv(r), rconv(r)
                if a is None or b is None:
                    return op(a, b) if op in (COMPARE["eq"], COMPARE["ne"]) else False
                try:
                    return bool(op(a, b))
                except TypeError:
                    return False

            return cmp
        return left

    def _coerce(self, fn: Pred, col: Column | None) -> Pred:
        tz = self.tz

        def conv(r: dict[str, Any]) -> Any:
            v = fn(r)
            if isinstance(v, str) and col is not None:
                if col.type in DATES:
                    return v
                return v.rstrip() if col.pad else v
            if isinstance(v, dt.datetime) and col is not None:
                if col.type == "DateTime":  # GI: naive tenant-local values
                    return v.astimezone(tz).replace(tzinfo=None) if v.tzinfo else v
                return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)
            if isinstance(v, Decimal):
                return float(v)
            return v

        return conv

    def _operand(self) -> tuple[Pred, Column | None]:
        tok = self._take()
        kind, text = tok
        if text == "(":
            inner = self._or()
            self._take(")")
            return inner, None
        if kind == "str":
            value = text[1:-1].replace("''", "'")
            return (lambda r: value), None
        if kind in ("dt", "typed"):
            if text.lower().startswith("guid"):
                guid = text[5:-1].lower()
                return (lambda r: guid), None
            when = _literal_datetime(text)
            if self.literal is not None:
                when = self.literal(when)
            return (lambda r: when), None
        if kind == "guid":
            return (lambda r: text.lower()), None
        if kind == "num":
            number: Any = Decimal(text.rstrip("mMdD"))
            return (lambda r: number), None
        if kind == "word":
            low = text.lower()
            if low in ("true", "false"):
                flag = low == "true"
                return (lambda r: flag), None
            if low == "null":
                return (lambda r: None), None
            if low in FUNCS and self._peek() == ("punct", "("):
                if self.v3 and low == "contains":
                    raise ODataError(400, f"Unknown function '{text}'.")
                return self._function(low), None
            if text not in self.cols:
                raise ODataError(400, f"Could not find a property named '{text}'.")
            col = self.cols[text]
            self.used.add(text)
            if col.type == "Guid":
                return (lambda r: (r[text] or "").lower() or None), col
            return (lambda r: r[text]), col
        raise ODataError(400, f"Syntax error in '{self.text}' near '{text}'.")

    def _function(self, name: str) -> Pred:
        self._take("(")
        args = [self._operand()]
        while self._peek() == ("punct", ","):
            self._take(",")
            args.append(self._operand())
        self._take(")")
        fns = [a[0] for a in args]

        def text(fn: Pred, r: dict[str, Any]) -> str | None:
            v = fn(r)
            return v.rstrip() if isinstance(v, str) else None

        if name in ("tolower", "toupper") and len(fns) == 1:
            f = fns[0]
            return lambda r: None if text(f, r) is None else getattr(text(f, r), name[2:])()
        if len(fns) != 2:
            raise ODataError(400, f"Function '{name}' takes two arguments.")
        a, b = fns
        if name == "substringof":  # v3: substringof(needle, haystack)
            a, b = b, a
        method = {"contains": "__contains__", "substringof": "__contains__"}.get(name, name)

        def call(r: dict[str, Any]) -> bool:
            hay, needle = text(a, r), text(b, r)
            if hay is None or needle is None:
                return False
            return bool(getattr(hay, method)(needle))

        return call


def _either(a: Pred, b: Pred) -> Pred:
    return lambda r: a(r) is True or b(r) is True


def _both(a: Pred, b: Pred) -> Pred:
    return lambda r: a(r) is True and b(r) is True


def _literal_datetime(text: str) -> dt.datetime:
    raw = text
    if "'" in text:
        raw = text[text.index("'") + 1 : -1]
    raw = raw.replace(" ", "+")  # an unencoded "+" arrives as a space
    raw = raw.replace("Z", "+00:00").replace("z", "+00:00")
    # Python 3.10's fromisoformat wants 0, 3 or 6 fractional digits: pad to 6.
    raw = re.sub(r"\.(\d{1,6})\d*", lambda m: "." + m.group(1).ljust(6, "0"), raw)
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ODataError(400, f"Unrecognized date-time literal '{text}'.") from None
    return value
