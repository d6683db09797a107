"""Generic Inquiry parameters (api.md §8): ``<GI>_WithParameters(P='X')`` and its CSDL.

api.md §8: parameters go in the path, ``gi/<Name>_WithParameters(Param='X')`` or with a
parameter alias ``(Param=@1)?@1='X'``; ``$metadata`` declares a FunctionImport for a GI with
parameters. The CSDL shape here (an unbound ``Function`` returning the GI's collection, and a
``FunctionImport`` bound to its entity set) is the standard OData v4 one: UNVERIFIED against an
instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import quoteattr

from tests.sandbox.odata_query import ODataError

SUFFIX = "_WithParameters"
_SEGMENT = re.compile(r"^(?P<name>.+?)_WithParameters\((?P<args>.*)\)$", re.S)
_ARG = re.compile(r"\s*(?P<key>[A-Za-z_]\w*)\s*=\s*(?P<val>'(?:[^']|'')*'|@\w+)\s*(?:,|$)")


def parse_gi_segment(segment: str, params: dict[str, str]) -> tuple[str, dict[str, str] | None]:
    """``Name_WithParameters(A='x',B=@1)`` → (Name, {A: x, B: params['@1']}); else (segment,
    None). A parameter alias must be given in the query string."""
    m = _SEGMENT.match(segment)
    if m is None:
        return segment, None
    args: dict[str, str] = {}
    text, pos = m.group("args"), 0
    while pos < len(text):
        a = _ARG.match(text, pos)
        if a is None or a.end() == pos:
            raise ODataError(400, f"Syntax error at position {pos} in '{segment}'.")
        value = a.group("val")
        if value.startswith("@"):
            if value not in params:
                raise ODataError(400, f"The parameter alias '{value}' is not specified.")
            value = params[value].strip()
            if not (value.startswith("'") and value.endswith("'") and len(value) >= 2):
                raise ODataError(400, f"Bad value of the parameter alias '{a.group('val')}'.")
        args[a.group("key")] = value[1:-1].replace("''", "'")
        pos = a.end()
    return m.group("name"), args


def gi_functions(inquiries: Iterable[Any]) -> tuple[str, str]:
    """(Function elements, FunctionImport elements) of the GIs that take parameters."""
    functions, imports = [], []
    for gi in inquiries:
        if not gi.parameters:
            continue
        name = gi.name + SUFFIX
        params = "".join(
            f'<Parameter Name={quoteattr(p)} Type="Edm.String"/>' for p in gi.parameters
        )
        functions.append(
            f"<Function Name={quoteattr(name)}>{params}"
            f"<ReturnType Type={quoteattr(f'Collection(Default.{gi.name})')}/></Function>"
        )
        imports.append(
            f"<FunctionImport Name={quoteattr(name)} Function={quoteattr('Default.' + name)} "
            f'EntitySet={quoteattr(gi.name)} IncludeInServiceDocument="true"/>'
        )
    return "".join(functions), "".join(imports)
