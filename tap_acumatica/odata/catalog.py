"""The OData streams of a run (``dac_<DAC>``, ``gi_<GI>``) and the deletion feeds of all streams.

From the settings (``--discover``, or a sync without ``--catalog``): the names are resolved
against each service's document, and ``$metadata`` is read streamed, keeping only the
selected entity sets (docs/acumatica-api.md §8: the DAC document is ~20 MB). From
``--catalog``: no ``$metadata`` is read; each stream's :class:`EntityType` is rebuilt from its
catalog entry, which discovery wrote to carry it (``odata.entry``: the schema's ``title`` is
the entity set, each column's ``description`` its Edm type and its place in the key).

Deletions (docs/acumatica-api.md §10): with ``track_deletions`` every incremental REST stream
whose entity maps to a DAC (``odata.registry``, ``deletion_dacs``) and every incremental DAC
stream with a NoteID gets a :class:`DeletionFeed` and an ``_sdc_deleted_at`` column.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from tap_acumatica.errors import (
    AcumaticaAPIError,
    ConfigError,
    DeletionsUntrackedError,
    EntityUnavailableError,
)
from tap_acumatica.odata.dac import NOTE_ID, DacStream
from tap_acumatica.odata.deletions import DeletionFeed
from tap_acumatica.odata.entry import (
    add_deleted_at,
    dac_short_name,
    describe_dac,
    describe_gi,
    entity_type_of,
    stream_schema,
)
from tap_acumatica.odata.gi import GiStream
from tap_acumatica.odata.model import DAC_PREFIX, GI_PREFIX, EntityType, InquiryOptions
from tap_acumatica.odata.registry import deletion_dac
from tap_acumatica.odata.service import ODataServices
from tap_acumatica.odata.values import DATETIME_TYPES
from tap_acumatica.stamps import DAY_MS
from tap_acumatica.sync.deleted import DELETED_AT

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.singerlib import Catalog

    from tap_acumatica.connection import Connection
    from tap_acumatica.settings import Settings
    from tap_acumatica.sync.stream import WindowedStream

LOGGER = logging.getLogger("tap-acumatica")
#: The DAC column read incrementally (docs/acumatica-api.md §8: each table's own stamp).
DAC_STAMP = "LastModifiedDateTime"
#: An unknown name's error lists the service's names when there are at most this many.
_LISTED = 60
_NOT_WORD = re.compile(r"[^0-9a-z]")


class ODataCatalog:
    """Builds the DAC and GI streams and attaches deletion feeds; no I/O in the constructor."""

    def __init__(self, tap: Tap, connection: Connection, settings: Settings, tenant: str) -> None:
        """Streams of ``tap`` over ``connection``; ``tenant``: its login name (for the paths)."""
        self._tap = tap
        self._connection = connection
        self._settings = settings
        self.services = ODataServices(connection, tenant)

    # -- building streams -------------------------------------------------------------------

    def _dac(
        self, name: str, etype: EntityType, schema: dict[str, Any], rkey: str | None
    ) -> DacStream:
        return DacStream(
            self._tap,
            connection=self._connection,
            settings=self._settings,
            services=self.services,
            etype=etype,
            name=name,
            schema=schema,
            replication_key=rkey,
        )

    def _gi(
        self, name: str, etype: EntityType, schema: dict[str, Any], options: InquiryOptions
    ) -> GiStream:
        return GiStream(
            self._tap,
            connection=self._connection,
            settings=self._settings,
            name=name,
            schema=schema,
            replication_key=options.replication_key,
            services=self.services,
            etype=etype,
            options=options,
        )

    def from_settings(self) -> list[WindowedStream]:
        """The streams ``odata_dacs`` and ``odata_inquiries`` name, from the services."""
        streams: list[WindowedStream] = []
        if self._settings.odata_dacs:
            streams += self._dac_streams()
        if self._settings.odata_inquiries or self._settings.odata_all_inquiries:
            streams += self._gi_streams()
        return streams

    def _dac_streams(self) -> list[WindowedStream]:
        sets = self._resolved("dac", self._settings.odata_dacs)
        streams: dict[str, DacStream] = {}
        for etype in self._types("dac", sets).values():
            name = DAC_PREFIX + dac_short_name(etype)
            if name in streams:
                if etype.name in (*streams[name].etype.aliases, streams[name].etype.name):
                    continue  # two names of one table (e.g. its full and its display name)
                name = DAC_PREFIX + etype.name  # another module's DAC of the same short name
            stamp = etype.property(DAC_STAMP)
            rkey = DAC_STAMP if stamp and stamp.edm in DATETIME_TYPES else None
            schema = stream_schema(etype, kind="dac")
            schema["description"] = describe_dac(etype, rkey)
            streams[name] = self._dac(name, etype, schema, rkey)
        return list(streams.values())

    def _gi_streams(self) -> list[WindowedStream]:
        settings = self._settings
        if settings.odata_all_inquiries:
            sets = {s: s for s in self.services.entity_sets("gi")}
        else:
            sets = self._resolved("gi", settings.odata_inquiries)
        options = {
            _option_set(self.services, gi, sets): InquiryOptions(**dict(value))
            for gi, value in settings.odata_inquiry_options.items()
        }
        streams: list[WindowedStream] = []
        every = settings.odata_all_inquiries
        for set_name, etype in self._types("gi", sets, strict=not every).items():
            chosen = options.get(set_name, InquiryOptions())
            _check_options(set_name, etype, chosen)
            schema = stream_schema(etype, kind="gi")
            keys = chosen.primary_keys or etype.keys
            schema["description"] = describe_gi(set_name, keys, chosen.replication_key)
            streams.append(self._gi(GI_PREFIX + set_name, etype, schema, chosen))
        return streams

    def _resolved(self, kind: str, names: Sequence[str]) -> dict[str, str]:
        """Entity set → the configured name that chose it, each set once."""
        out: dict[str, str] = {}
        for name in names:
            try:
                found = self.services.resolve(kind, name)
            except ConfigError as exc:
                named = self._named_by_service(name) if kind == "dac" else None
                if named is None:
                    raise self._unknown(kind, exc) from None
                found = named
            out.setdefault(found, name)
        return out

    def _named_by_service(self, name: str) -> str | None:
        """The entity set the DAC service reads for ``name`` (a display name), if any.

        docs/acumatica-api.md §8: the DAC service takes a set's full, short or display name
        in the URL, while its service document lists set names only; the answer's
        ``@odata.context`` (``…/$metadata#<set>``) names the set that was read.
        """
        body = bytearray()
        try:
            found = self._connection.client.get_chunks(
                self.services.path("dac", name),
                {"$top": 1},
                consume=body.extend,
                restart=body.clear,
                absent=(404,),
            )
            answer = msgspec.json.decode(bytes(body)) if found else None
        except (AcumaticaAPIError, msgspec.DecodeError):
            return None
        context = answer.get("@odata.context") if isinstance(answer, dict) else None
        if not isinstance(context, str) or "#" not in context:
            return None
        set_name = re.split(r"[(/]", context.rpartition("#")[2])[0]
        return set_name if set_name in self.services.entity_sets("dac") else None

    def _unknown(self, kind: str, exc: ConfigError) -> ConfigError:
        """``exc`` (an unknown name), listing the service's names when they are few."""
        listed = self.services.entity_sets(kind)
        if "close matches" in str(exc) or len(listed) > _LISTED:
            return exc
        return ConfigError(f"{exc}: {', '.join(sorted(listed)) or 'none'}")

    def _types(
        self, kind: str, sets: Mapping[str, str], *, strict: bool = True
    ) -> dict[str, EntityType]:
        """The entity types of ``sets`` (set → configured name) from ``$metadata``.

        A set the service lists but ``$metadata`` lacks fails when it was named (``strict``),
        else it is skipped with a warning.
        """
        types = self.services.metadata(kind, lambda name: name in sets)
        missing = sorted(sets[s] for s in sets if s not in types)
        if missing:
            msg = (
                f"OData {kind}: {', '.join(missing)} listed by the service but not in its "
                "$metadata (docs/acumatica-api.md §8); check the name and its access rights"
            )
            if strict:
                raise ConfigError(msg)
            LOGGER.warning("%s; skipped", msg)
        return {s: types[s] for s in sets if s in types}

    def from_catalog(self, catalog: Catalog) -> list[WindowedStream]:
        """The OData streams of ``--catalog`` (by prefix), rebuilt without any request.

        The entry is the authority, as for REST streams: its replication key and key
        properties; a GI's parameters come from ``odata_inquiry_options`` (by set name).
        """
        streams: list[WindowedStream] = []
        for entry in catalog.streams:
            name = entry.tap_stream_id
            schema = entry.schema.to_dict()
            rkey = entry.replication_key or entry.metadata.root.replication_key
            if name.startswith(DAC_PREFIX):
                etype = entity_type_of(entry, DAC_PREFIX)
                streams.append(self._dac(name, etype, schema, rkey))
            elif name.startswith(GI_PREFIX):
                etype = entity_type_of(entry, GI_PREFIX)
                keys = entry.key_properties or entry.metadata.root.table_key_properties or ()
                given = _options_for(self._settings.odata_inquiry_options, etype.name)
                params = dict(given.get("parameters") or {})
                chosen = InquiryOptions(rkey, tuple(keys), params)
                streams.append(self._gi(name, etype, schema, chosen))
        return streams

    # -- deletions --------------------------------------------------------------------------

    def attach_deletions(self, streams: Iterable[WindowedStream], catalog: Catalog | None) -> None:
        """With ``track_deletions``: a feed and ``_sdc_deleted_at`` for each stream that can.

        From ``catalog`` (``--catalog``) only where its schema has that column: the SDK
        writes the catalog's schema, so a record with another column would not fit it.
        """
        if not self._settings.track_deletions:
            return
        chosen = None if catalog is None else _selected(catalog)
        unmapped, stale = [], []
        for stream in streams:
            if stream.replication_key is None or isinstance(stream, GiStream):
                continue  # a full read has no "since"; a GI row has no NoteID (§10)
            dac = self._deletion_dac(stream)
            if dac is None:
                if not isinstance(stream, DacStream):
                    unmapped.append(stream.name)
                continue
            if catalog is not None and DELETED_AT not in stream.schema.get("properties", {}):
                stale.append(stream.name)
                continue
            stream.deletions = DeletionFeed(
                self._connection, self.services, dac, stream=stream.name
            )
            add_deleted_at(stream.schema)
        _tell(unmapped, chosen, stale)

    def _deletion_dac(self, stream: WindowedStream) -> str | None:
        """The DAC whose deletions are ``stream``'s (a DAC without NoteID has none)."""
        if isinstance(stream, DacStream):
            return stream.etype.name if stream.etype.property(NOTE_ID) else None
        return deletion_dac(stream.name, self._settings.deletion_dacs)


def _selected(catalog: Catalog) -> set[str]:
    """The streams an input catalog selects (their root metadata)."""
    return {entry.tap_stream_id for entry in catalog.streams if entry.metadata.root.selected}


def _tell(unmapped: Sequence[str], chosen: set[str] | None, stale: Sequence[str]) -> None:
    """One line about selected streams whose deletions are not read, and why."""
    unmapped = sorted(n for n in unmapped if chosen is None or n in chosen)
    stale = sorted(n for n in stale if chosen is None or n in chosen)
    if unmapped:
        LOGGER.info(
            "track_deletions: no DAC is mapped for %s, so their deletions are not read; map "
            "each to its DAC in deletion_dacs (docs/acumatica-api.md §10)",
            ", ".join(unmapped),
        )
    if stale:
        LOGGER.warning(
            "track_deletions: the catalog's %s have no _sdc_deleted_at column, so their "
            "deletions are not read; run --discover again with track_deletions on",
            ", ".join(stale),
        )


def check_deletions(stream: WindowedStream, now_ms: int) -> tuple[str, bool, str, str]:
    """``--check``: one read of the stream's deletion feed; (row, readable, why not, fix)."""
    feed = stream.deletions
    assert feed is not None
    row = f"{stream.name}/deletions"
    try:
        next(iter(feed.read(now_ms - DAY_MS, now_ms)), None)
    except DeletionsUntrackedError:
        why = f"Acumatica does not track deleted {feed.name} records"
        fix = (
            f"add {feed.name} on Tables to Track Deleted Records (SM207010), or name another "
            "DAC in deletion_dacs"
        )
        return row, False, why, fix
    except EntityUnavailableError as exc:
        return row, False, exc.reason, exc.fix
    except AcumaticaAPIError as exc:
        return row, False, str(exc), "see why"
    return row, True, "", ""


# -- names -----------------------------------------------------------------------------------


def _options_for(options: Mapping[str, Mapping[str, Any]], set_name: str) -> Mapping[str, Any]:
    """The options given for the GI ``set_name``, under its set name or a spelling of it."""
    if set_name in options:
        return options[set_name]
    word = _NOT_WORD.sub("", set_name.lower())
    found = [v for k, v in options.items() if _NOT_WORD.sub("", k.lower()) == word]
    return found[0] if found else {}


def _option_set(services: ODataServices, gi: str, sets: Mapping[str, str]) -> str:
    """The selected entity set ``odata_inquiry_options.<gi>`` is for; ConfigError if none."""
    for set_name, configured in sets.items():
        if gi in (set_name, configured):
            return set_name
    found = services.resolve("gi", gi)  # ConfigError naming close matches when unknown
    if found not in sets:
        msg = f"odata_inquiry_options.{gi}: {found} is not among the inquiries read"
        raise ConfigError(msg)
    return found


def _check_options(set_name: str, etype: EntityType, options: InquiryOptions) -> None:
    """The columns ``odata_inquiry_options`` names exist, and the replication key is a date."""
    where = f"odata_inquiry_options.{set_name}"
    columns = [p.name for p in etype.properties]
    for column in options.primary_keys:
        if column not in columns:
            has = ", ".join(columns)
            msg = f"{where}.primary_keys: {set_name} has no column {column!r}; it has {has}"
            raise ConfigError(msg)
    accepted = [p.name for p in etype.parameters]
    unknown = sorted(set(options.parameters) - set(accepted))
    if unknown:
        msg = (
            f"{where}.parameters: {set_name} has no parameter {', '.join(unknown)}; its "
            f"parameters: {', '.join(accepted) or 'none'} (docs/acumatica-api.md §8)"
        )
        raise ConfigError(msg)
    rkey = options.replication_key
    prop = etype.property(rkey) if rkey else None
    if rkey and (prop is None or prop.edm not in DATETIME_TYPES):
        dates = [p.name for p in etype.properties if p.edm in DATETIME_TYPES]
        msg = (
            f"{where}.replication_key: {rkey!r} is not a date-time column of {set_name}; "
            f"its date-time columns: {', '.join(dates) or 'none'}"
        )
        raise ConfigError(msg)


__all__ = ["ODataCatalog", "check_deletions"]
