"""The $filter subset of Acumatica's contract-based API (OData v3 conventions, api.md §4).

Grammar (case-sensitive keywords, as in OData v3)::

    expr    := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | cmp
    cmp     := operand (("eq"|"ne"|"gt"|"ge"|"lt"|"le") operand)?
    operand := "(" expr ")" | literal | call | path
    call    := ("startswith"|"endswith"|"substringof") "(" operand "," operand ")"
             | "cf." Type "(" "f" "=" "'View.Field'" ")"
    literal := 'str' | number[mMdDfFlL] | true | false | null | guid'…' | datetimeoffset'…'
             | datetime'…' (tenant-local when no offset) | date'…'
    path    := Field | Linked/Field (fields of detail collections are rejected)

Values compare as Acumatica's SQL does: strings case-insensitively, NULL never compares true
except ``eq null``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from .errors import ApiError, odata_error
from .render import TenantClock, to_us
from .stamps import literal_us

EDM = {
    "S": "Edm.String",
    "Dec": "Edm.Decimal",
    "DT": "Edm.DateTimeOffset",
    "Int": "Edm.Int32",
    "Bool": "Edm.Boolean",
    "Guid": "Edm.Guid",
    "Short": "Edm.Int16",
    "Long": "Edm.Int64",
    "Dbl": "Edm.Double",
    "Byte": "Edm.Byte",
}
# api.md §4: custom fields are filtered with cf.<Type>(f='View.Field')
CF_EDM = {
    "String": "Edm.String",
    "Int": "Edm.Int32",
    "Short": "Edm.Int16",
    "Long": "Edm.Int64",
    "Byte": "Edm.Byte",
    "Decimal": "Edm.Decimal",
    "Double": "Edm.Double",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTime",
    "Guid": "Edm.Guid",
}
NUMERIC = {"Edm.Decimal", "Edm.Int32", "Edm.Int16", "Edm.Int64", "Edm.Double", "Edm.Byte"}
TEMPORAL = {"Edm.DateTimeOffset", "Edm.DateTime"}
OPS = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
       "lt": "LessThan", "le": "LessThanOrEqual"}  # fmt: skip
FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
FUNCS = {"startswith", "endswith", "substringof"}

_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<typed>(?:datetimeoffset|datetime|guid|date|time)'(?:[^']|'')*')"
    r"|(?P<str>'(?:[^']|'')*')"
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)(?![A-Za-z0-9_])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<p>[(),=])"
)

Node = tuple[Any, ...]
Resolver = Callable[[str], str]  # path -> type code, raises ApiError


def syntax_error(text: str, pos: int) -> ApiError:
    return odata_error(f"Syntax error at position {pos} in '{text}'.")


def tokenize(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise syntax_error(text, pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    out.append(("end", "", len(text)))
    return out


class Parser:
    """Recursive-descent parser producing a small typed AST."""

    def __init__(self, text: str, resolve: Resolver, clock: TenantClock) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.resolve = resolve
        self.clock = clock
        self.fields: set[str] = set()

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        _kind, val, pos = self.take()
        if val != value:
            raise syntax_error(self.text, pos)

    def parse(self) -> Node:
        if self.peek()[0] == "end":
            raise syntax_error(self.text, 0)
        node = self.or_()
        kind, _, pos = self.peek()
        if kind != "end":
            raise syntax_error(self.text, pos)
        self.boolean(node, 0)
        return node

    def boolean(self, node: Node, pos: int) -> None:
        if node[0] in {"and", "or", "not", "cmp", "call"}:
            return
        if node[0] in {"field", "cf"} and node[-1] == "Edm.Boolean":
            return
        raise odata_error(f"The $filter expression at position {pos} must evaluate to a Boolean.")

    def or_(self) -> Node:
        left = self.and_()
        while self.peek()[1] == "or":
            pos = self.take()[2]
            right = self.and_()
            self.boolean(left, pos)
            self.boolean(right, pos)
            left = ("or", left, right)
        return left

    def and_(self) -> Node:
        left = self.unary()
        while self.peek()[1] == "and":
            pos = self.take()[2]
            right = self.unary()
            self.boolean(left, pos)
            self.boolean(right, pos)
            left = ("and", left, right)
        return left

    def unary(self) -> Node:
        if self.peek()[1] == "not":
            pos = self.take()[2]
            inner = self.unary()
            self.boolean(inner, pos)
            return ("not", inner)
        return self.cmp()

    def cmp(self) -> Node:
        left = self.operand()
        kind, val, pos = self.peek()
        if kind == "name" and val in OPS:
            self.take()
            right = self.operand()
            return self.typed_cmp(val, left, right, pos)
        if kind == "name" and val not in {"and", "or"}:
            raise odata_error(
                f"Syntax error: unknown operator '{val}' at position {pos} in '{self.text}'."
            )
        return left

    def typed_cmp(self, op: str, left: Node, right: Node, pos: int) -> Node:
        lt, rt = left[-1], right[-1]
        ok = (
            lt == rt
            or "null" in (lt, rt)
            or (lt in NUMERIC and rt in NUMERIC)
            or (lt in TEMPORAL and rt in TEMPORAL)
            or ({lt, rt} == {"Edm.Guid", "Edm.String"})
        )
        if not ok:
            raise odata_error(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{lt}' and '{rt}' for operator kind '{OPS[op]}'."
            )
        if (left[0] in {"call", "cmp"} or right[0] in {"call", "cmp"}) and lt != "Edm.Boolean":
            raise syntax_error(self.text, pos)
        return ("cmp", op, left, right, "Edm.Boolean")

    def operand(self) -> Node:
        kind, val, pos = self.take()
        if val == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "str":
            return ("lit", val[1:-1].replace("''", "'"), "Edm.String")
        if kind == "num":
            return self.number(val)
        if kind == "typed":
            return self.typed(val, pos)
        if kind == "name":
            if val in {"true", "false"}:
                return ("lit", val == "true", "Edm.Boolean")
            if val == "null":
                return ("lit", None, "null")
            if self.peek()[1] == "(":
                return self.call(val, pos)
            if val in OPS or val in {"and", "or", "not"}:
                raise syntax_error(self.text, pos)
            typ = self.resolve(val)
            if "/" not in val:
                self.fields.add(val)
            return ("field", val, EDM[typ])
        raise syntax_error(self.text, pos)

    def number(self, val: str) -> Node:
        suffix = val[-1] if val[-1] in "mMdDfFlL" else ""
        body = val[:-1] if suffix else val
        if suffix in "lL" or (not suffix and re.fullmatch(r"-?\d+", body)):
            return ("lit", int(body), "Edm.Int32" if not suffix else "Edm.Int64")
        return ("lit", float(body), "Edm.Decimal" if suffix in "mM" else "Edm.Double")

    def typed(self, val: str, pos: int) -> Node:
        prefix, _, rest = val.partition("'")
        body = rest[:-1].replace("''", "'")
        try:
            if prefix == "guid":
                return ("lit", str(uuid.UUID(body)), "Edm.Guid")
            if prefix in {"datetimeoffset", "datetime", "date"}:
                return ("lit", self.instant(body), "Edm.DateTimeOffset")
        except ValueError:
            raise odata_error(
                f"Unrecognized '{'Edm.Guid' if prefix == 'guid' else 'Edm.DateTimeOffset'}' "
                f"literal '{val}' at '{pos}' in '{self.text}'."
            ) from None
        raise odata_error(f"Unrecognized literal '{val}' at '{pos}' in '{self.text}'.")

    def instant(self, body: str) -> int:
        """A date-time literal as UTC µs; no offset → tenant-local time (api.md §3)."""
        text = body.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        if " " in text:  # an unencoded '+' arrives as a space (api.md §4: URL-encode it)
            raise ValueError(body)
        # issue 11: --time-semantics and --stamp-precision decide how it compares (stamps.py)
        return literal_us(self.clock, dt.datetime.fromisoformat(text))

    def call(self, name: str, pos: int) -> Node:
        self.expect("(")
        if name.startswith("cf."):
            ctype = name[3:]
            if ctype not in CF_EDM:
                raise odata_error(f"Unknown function '{name}'.")
            kind, val, p2 = self.take()
            if val != "f":
                raise syntax_error(self.text, p2)
            self.expect("=")
            kind, val, p2 = self.take()
            if kind != "str":
                raise syntax_error(self.text, p2)
            ref = val[1:-1]
            view, dot, fname = ref.partition(".")
            if not dot:
                raise odata_error(
                    f"The custom field reference '{ref}' is not in the <View>.<Field> format."
                )
            self.resolve(f"cf:{ctype}:{ref}")
            self.expect(")")
            return ("cf", view, fname, CF_EDM[ctype])
        if name not in FUNCS:
            raise odata_error(f"Unknown function '{name}'.")
        a = self.operand()
        self.expect(",")
        b = self.operand()
        self.expect(")")
        for arg in (a, b):
            if arg[-1] not in {"Edm.String", "null"}:
                raise odata_error(
                    f"No function signature for the function with name '{name}' matches the "
                    "specified arguments. The function signatures considered are: "
                    f"{name}(Edm.String Nullable=true, Edm.String Nullable=true)."
                )
        return ("call", name, a, b, "Edm.Boolean")


def parse(text: str, resolve: Resolver, clock: TenantClock) -> tuple[Node, set[str]]:
    """Parse and type-check ``$filter``; returns the AST and the top-level fields it names."""
    p = Parser(text, resolve, clock)
    return p.parse(), p.fields


# --------------------------------------------------------------------------- evaluation
Getter = Callable[[Node], Any]


def _val(node: Node, get: Getter) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind in {"field", "cf"}:
        v = get(node)
        if v is not None and node[-1] in TEMPORAL and kind == "field":
            return v * 1000  # raw DT values are UTC ms; literals are µs
        if v is not None and kind == "cf" and node[-1] in TEMPORAL and isinstance(v, str):
            return to_us(dt.datetime.fromisoformat(v).replace(tzinfo=dt.timezone.utc))
        return v
    return evaluate(node, get)


def _norm(v: Any) -> Any:
    return v.casefold() if isinstance(v, str) else v


def evaluate(node: Node, get: Getter) -> bool:
    kind = node[0]
    if kind == "and":
        return evaluate(node[1], get) and evaluate(node[2], get)
    if kind == "or":
        return evaluate(node[1], get) or evaluate(node[2], get)
    if kind == "not":
        return not evaluate(node[1], get)
    if kind == "cmp":
        op = node[1]
        a, b = _norm(_val(node[2], get)), _norm(_val(node[3], get))
        if a is None or b is None:
            if op == "eq":
                return a is None and b is None
            if op == "ne":
                return (a is None) != (b is None)
            return False
        if op == "eq":
            return bool(a == b)
        if op == "ne":
            return bool(a != b)
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    if kind == "call":
        x, y = _val(node[2], get), _val(node[3], get)
        if x is None or y is None:
            return False
        x, y = x.casefold(), y.casefold()
        if node[1] == "startswith":
            return bool(x.startswith(y))
        if node[1] == "endswith":
            return bool(x.endswith(y))
        return y.find(x) >= 0  # substringof(needle, haystack)
    if kind in {"field", "cf"}:
        return bool(get(node))
    raise AssertionError(kind)


def split_change_ranges(
    node: Node, change_fields: set[str]
) -> tuple[list[tuple[str, int]], list[Node]]:
    """Split a conjunction into change-field bounds [(op, µs)] and the residual conjuncts."""
    conj: list[Node] = []

    def flatten(n: Node) -> None:
        if n[0] == "and":
            flatten(n[1])
            flatten(n[2])
        else:
            conj.append(n)

    flatten(node)
    bounds: list[tuple[str, int]] = []
    rest: list[Node] = []
    for c in conj:
        if c[0] == "cmp" and c[1] in {"gt", "ge", "lt", "le", "eq"}:
            left, right, op = c[2], c[3], c[1]
            if left[0] == "lit" and right[0] == "field":
                left, right, op = right, left, FLIP[op]
            if (
                left[0] == "field"
                and left[1] in change_fields
                and right[0] == "lit"
                and right[2] in TEMPORAL
            ):
                bounds.append((op, right[1]))
                continue
        rest.append(c)
    return bounds, rest
