"""What the OData dialect knows about a service: its entity types and the per-GI options.

Plain values only (no I/O): ``odata.metadata`` builds them from ``$metadata``, the catalog and
the streams read them. docs/acumatica-api.md §8.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Stream-name prefixes: OData streams never collide with REST entity names (PascalCase).
DAC_PREFIX = "dac_"
GI_PREFIX = "gi_"


@dataclass(frozen=True)
class Property:
    """One structural property of an entity type (``<Property Name Type Nullable>``)."""

    name: str
    edm: str  # e.g. "Edm.String", "Edm.Decimal", "Edm.DateTimeOffset", "Edm.DateTime" (v3)
    nullable: bool = True


@dataclass(frozen=True)
class EntityType:
    """An entity set of a GI or DAC service with its type, as ``$metadata`` declares it."""

    name: str  # the entity set's name, as used in the URL (e.g. "PX_Objects_SO_SOLine")
    keys: tuple[str, ...]  # <Key><PropertyRef/></Key>, in document order
    properties: tuple[Property, ...]
    aliases: tuple[str, ...] = ()  # other names the service accepts (short, display)
    navigations: tuple[str, ...] = ()  # <NavigationProperty Name>
    deleted_records: bool = False  # a bound PX.GetDeletedRecords() exists for it (§10)
    parameters: tuple[Property, ...] = ()  # GI parameters (FunctionImport), if any

    def property(self, name: str) -> Property | None:
        """The property ``name``, or None."""
        return next((p for p in self.properties if p.name == name), None)


@dataclass(frozen=True)
class InquiryOptions:
    """``odata_inquiry_options[<GI>]``: what a GI cannot say about itself (GIs have no stamp)."""

    replication_key: str | None = None
    primary_keys: tuple[str, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    """One OData service of the instance, where it lives and which protocol it speaks."""

    kind: str  # "gi" | "dac"
    root: str  # path from base_url, e.g. "/t/Company/api/odata/dac" or "/odata/Company"
    version: str = "4"  # "3": the legacy GI service (docs/acumatica-api.md §8)
