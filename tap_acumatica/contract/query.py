"""Query-option syntax of contract 4 and contract 5 (docs/acumatica-api.md §1.1, §4).

Contract 4 (OData v3): ``datetimeoffset'…'`` literals, slash paths in ``$expand``
(``MainContact,MainContact/Address``), custom fields in ``$custom``. Contract 5 (OData 4.01):
bare ISO literals, nested options in parentheses (``MainContact($expand=Address)``), custom
fields named in ``$select``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tap_acumatica.stamps import from_ms


def odata_literal(ms: int, contract: str = "4") -> str:
    """A date-time literal, offset-qualified (docs/acumatica-api.md §4: never bare of offset).

    Contract 4: ``datetimeoffset'2024-07-15T10:00:00.000+00:00'``; contract 5 the bare ISO text.
    """
    text = from_ms(ms).isoformat(timespec="milliseconds")
    return text if contract == "5" else f"datetimeoffset'{text}'"


def expand_option(paths: Sequence[str], contract: str = "4") -> str:
    """``$expand`` from slash paths (``Details``, ``Details/files``, ``MainContact/Address``)."""
    if contract != "5":
        return ",".join(paths)
    return _nested(_tree(paths))


def _tree(paths: Iterable[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("/"):
            node = node.setdefault(part, {})
    return tree


def _nested(tree: Mapping[str, Any]) -> str:
    """``{"MainContact": {"Address": {}}}`` → ``MainContact($expand=Address)``."""
    return ",".join(
        f"{name}($expand={_nested(sub)})" if sub else name for name, sub in tree.items()
    )


def list_options(
    select: Sequence[str], expand: Sequence[str], custom: Sequence[str], contract: str = "4"
) -> dict[str, str]:
    """``$select``/``$expand`` and custom fields, in the contract's syntax."""
    names = list(select)
    params: dict[str, str] = {}
    if custom and contract == "5":
        names.extend(custom)  # contract 5 has no $custom (docs/acumatica-api.md §1.1)
    if names:
        params["$select"] = ",".join(names)
    if expand:
        params["$expand"] = expand_option(expand, contract)
    if custom and contract != "5":
        params["$custom"] = ",".join(custom)
    return params
