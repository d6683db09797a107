"""The contract-API streams of a run: from ``--catalog``, or from the endpoint's own document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tap_acumatica.contract import registry
from tap_acumatica.contract.document import ApiDocument, custom_fields_from_adhoc
from tap_acumatica.contract.endpoint import Endpoint
from tap_acumatica.contract.stream import ContractStream
from tap_acumatica.errors import ConfigError

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.singerlib import Catalog

    from tap_acumatica.connection import Connection
    from tap_acumatica.settings import Settings


class ContractCatalog:
    """Builds one :class:`ContractStream` per top-level entity the run reads."""

    def __init__(self, tap: Tap, connection: Connection, settings: Settings) -> None:
        """Streams of ``tap`` over ``connection``; no network I/O here."""
        self._tap = tap
        self._connection = connection
        self._settings = settings
        self.endpoint = Endpoint(connection, settings.endpoint_name, settings.endpoint_version)

    def _stream(
        self, name: str, schema: dict[str, Any], replication_key: str | None
    ) -> ContractStream:
        return ContractStream(
            self._tap,
            connection=self._connection,
            settings=self._settings,
            endpoint=self.endpoint,
            name=name,
            schema=schema,
            replication_key=replication_key,
            natural_keys=registry.natural_keys(name),
        )

    def from_catalog(self, catalog: Catalog) -> list[ContractStream]:
        """Streams as the input catalog describes them: no document download on a sync."""
        return [
            self._stream(
                entry.tap_stream_id,
                entry.schema.to_dict(),
                entry.replication_key or entry.metadata.root.replication_key,
            )
            for entry in catalog.streams
        ]

    def from_document(self) -> list[ContractStream]:
        """One stream per listable entity of the endpoint's swagger.json."""
        raw = self._connection.client.get_bytes(f"{self.endpoint.path()}/swagger.json")
        document = ApiDocument.from_bytes(raw)
        self.endpoint.accept_document(document.contract)  # docs/acumatica-api.md §1.1
        self._check_names(document)
        wanted = self._settings.entities
        expand = self._settings.expand
        custom_cfg = self._settings.custom_fields
        result = []
        for info in document.entities():
            if wanted and info.name not in wanted:
                continue
            if not info.has_list_get or registry.is_inquiry(info.name):
                continue
            rkey = registry.REPLICATION_KEY_OVERRIDES.get(info.name, info.replication_key)
            keys = registry.natural_keys(info.name)
            schema = document.stream_schema(
                info.name,
                expand=expand.get(info.name, ()),
                custom=self._custom_fields(info.name, custom_cfg.get(info.name)),
                natural_keys=keys,
                description=_describe(info.name, document.title, rkey, keys),
            )
            result.append(self._stream(info.name, schema, rkey))
        return result

    def _check_names(self, document: ApiDocument) -> None:
        """Every entity named in the settings exists and is a list, not an inquiry form."""
        known = set(document.entity_names())
        wanted = self._settings.entities
        unknown = sorted(set(wanted) - known)
        if unknown:
            msg = f"entities: {', '.join(unknown)} not in {document.title or 'the endpoint'}"
            raise ConfigError(msg)
        inquiries = sorted(n for n in wanted if registry.is_inquiry(n))
        if inquiries:
            # docs/acumatica-api.md §2: inquiry entities are filter forms read with PUT.
            msg = (
                f"entities: {', '.join(inquiries)} are inquiry forms (read with PUT and a "
                "filter body), not lists; expose the data through a generic inquiry instead"
            )
            raise ConfigError(msg)
        for name in [*self._settings.expand, *self._settings.custom_fields]:
            if name not in known:
                msg = f"expand/custom_fields name entity {name!r}, which the endpoint does not have"
                raise ConfigError(msg)

    def _custom_fields(self, entity: str, wanted: Any) -> dict[str, dict[str, str]] | None:
        """Custom fields with their types from ``$adHocSchema`` (docs/acumatica-api.md §5)."""
        if not wanted:
            return None
        adhoc = self._connection.client.get_json(
            f"{self.endpoint.path()}/{entity}/$adHocSchema", stream=entity
        )
        available = custom_fields_from_adhoc(adhoc if isinstance(adhoc, dict) else {})
        if wanted == "all":
            return available
        chosen: dict[str, dict[str, str]] = {}
        for item in [wanted] if isinstance(wanted, str) else wanted:
            view, _, field = str(item).partition(".")
            ftype = available.get(view, {}).get(field)
            if ftype is None:
                names = sorted(f"{v}.{f}" for v, fs in available.items() for f in fs)
                msg = (
                    f"custom_fields: {entity} has no custom field {item!r}; $adHocSchema lists: "
                    f"{', '.join(names) or 'none'}"
                )
                raise ConfigError(msg)
            chosen.setdefault(view, {})[field] = ftype
        return chosen


def _describe(entity: str, title: str, rkey: str | None, keys: Sequence[str]) -> str:
    parts = [f"Acumatica entity {entity} ({title})." if title else f"Acumatica entity {entity}."]
    parts.append(f"Primary key: id (the NoteID). Natural key: {', '.join(keys) or 'unknown'}.")
    parts.append(f"Change field: {rkey}." if rkey else "No change field: read in full each run.")
    return " ".join(parts)


__all__ = ["ContractCatalog"]
