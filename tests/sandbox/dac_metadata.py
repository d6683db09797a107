"""``$metadata`` and the service document of the DAC service (api.md §8, §10).

One EntityType and EntitySet per served DAC, by full name (``PX_Objects_SO_SOLine``), with its
PropertyRef keys, properties and navigation properties; the bound function
``PX.GetDeletedRecords()`` for every DAC on *Tables to Track Deleted Records* (SM207010) — all
but the ``--untracked-deletions`` ones — returning ``Collection(PX.Api.ODataV4.DeletedRecord)``.

``--big-metadata``: the real document is ~20 MB (api.md §8); the sandbox
then puts ~20 MB of extra entity types and sets (``PX_Objects_ZZ_Pad00001`` …, empty tables,
untracked) *before* the served ones, built once per process and cached.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from tests.sandbox.dac_defs import DACS, DacDef
from tests.sandbox.odata_query import EDM, Column, csdl, entity_type

NS = 'xmlns="http://docs.oasis-open.org/odata/ns/edm"'
BIG_BYTES = 20 * 1024 * 1024
PAD_PREFIX = "PX_Objects_ZZ_Pad"
_PAD_PROPS = 60  # properties per padding type (~4 KB each, like a mid-size DAC)


def _type(dac: DacDef) -> str:
    cols = [Column(c.name, c.name, c.type) for c in dac.cols]
    body = entity_type(dac.full, dac.keys, cols)
    navs = "".join(
        f"<NavigationProperty Name={quoteattr(n.name)} Type="
        + quoteattr(
            f"Collection(Default.{DACS[n.target].full})"
            if n.many
            else f"Default.{DACS[n.target].full}"
        )
        + "/>"
        for n in dac.navs
    )
    return body.replace("</EntityType>", navs + "</EntityType>")


def _set(dac: DacDef) -> str:
    binds = "".join(
        f"<NavigationPropertyBinding Path={quoteattr(n.name)} "
        f"Target={quoteattr(DACS[n.target].full)}/>"
        for n in dac.navs
    )
    return (
        f"<EntitySet Name={quoteattr(dac.full)} EntityType={quoteattr('Default.' + dac.full)}>"
        f"{binds}</EntitySet>"
    )


def pad_names(big: bool) -> list[str]:
    return list(_padding()[0]) if big else []


@functools.cache
def _padding() -> tuple[tuple[str, ...], str, str]:
    """(names, entity types, entity sets) of the ``--big-metadata`` padding, ~BIG_BYTES."""
    names: list[str] = []
    types: list[str] = []
    sets: list[str] = []
    size = 0
    kinds = ("Edm.String", "Edm.Decimal", "Edm.Int32", "Edm.Boolean", "Edm.DateTimeOffset")
    while size < BIG_BYTES:
        name = f"{PAD_PREFIX}{len(names) + 1:05d}"
        props = "".join(
            f'<Property Name="UsrField{i:02d}Value" Type="{kinds[i % 5]}"'
            + (' MaxLength="255"' if i % 5 == 0 else "")
            + "/>"
            for i in range(_PAD_PROPS)
        )
        text = (
            f'<EntityType Name="{name}"><Key><PropertyRef Name="RecordID"/></Key>'
            '<Property Name="RecordID" Type="Edm.Int32" Nullable="false"/>'
            '<Property Name="NoteID" Type="Edm.Guid"/>'
            f'<Property Name="LastModifiedDateTime" Type="Edm.DateTimeOffset"/>{props}</EntityType>'
        )
        names.append(name)
        types.append(text)
        sets.append(f'<EntitySet Name="{name}" EntityType="Default.{name}"/>')
        size += len(text) + len(sets[-1])
    return tuple(names), "".join(types), "".join(sets)


def pad_type(name: str) -> DacDef | None:
    """A padding table (empty): RecordID, NoteID and LastModifiedDateTime."""
    if not name.startswith(PAD_PREFIX):
        return None
    from tests.sandbox.dac_defs import NOTE, STAMP, DacCol  # noqa: PLC0415

    return DacDef(name[len("PX_Objects_ZZ_") :], "ZZ", name, ("RecordID",),
                  (DacCol("RecordID", "Int", "own"), NOTE, STAMP), ())  # fmt: skip


@functools.cache
def metadata_xml(untracked: frozenset[str], big: bool) -> bytes:
    """The CSDL (cached per flag combination: ``--big-metadata`` builds ~20 MB once)."""
    _names, pad_types, pad_sets = _padding() if big else ((), "", "")
    dacs = list(DACS.values())
    types = pad_types + "".join(_type(d) for d in dacs)
    sets = pad_sets + "".join(_set(d) for d in dacs)
    functions = "".join(
        '<Function Name="GetDeletedRecords" IsBound="true">'
        f'<Parameter Name="bindingParameter" Type={quoteattr(f"Collection(Default.{d.full})")}/>'
        '<ReturnType Type="Collection(PX.Api.ODataV4.DeletedRecord)"/></Function>'
        for d in dacs
        if d.short not in untracked
    )
    deleted = "".join(
        f'<Property Name="{n}" Type="{EDM[t]}" Nullable="false"/>'
        for n, t in (("RefNoteID", "Guid"), ("DeleteDate", "DateTimeOffset"))
    )
    return csdl(
        f'<Schema Namespace="Default" {NS}>{types}'
        f'<EntityContainer Name="Default">{sets}</EntityContainer></Schema>',
        f'<Schema Namespace="PX" {NS}>{functions}</Schema>',
        f'<Schema Namespace="PX.Api.ODataV4" {NS}>'
        f'<ComplexType Name="DeletedRecord">{deleted}</ComplexType></Schema>',
    ).encode()


def service_names(big: bool) -> Iterable[str]:
    """Entity sets of the service document: padding first (as in $metadata), then the DACs."""
    return [*pad_names(big), *(d.full for d in DACS.values())]
