"""The OData catalog without a server: stream names, deletion feeds (services stubbed).

The tap's config points at a port nothing listens on: any request would fail the test.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tap_acumatica.odata.catalog import ODataCatalog
from tap_acumatica.odata.dac import DacStream
from tap_acumatica.odata.model import EntityType, Property
from tap_acumatica.tap import TapAcumatica
from tests.sync.offline import CONFIG, offline_stream


def _table(name: str, *aliases: str, noted: bool = True) -> EntityType:
    props = [Property("ContactID", "Edm.Int32", nullable=False)]
    props += [Property("NoteID", "Edm.Guid")] if noted else []
    props += [Property("LastModifiedDateTime", "Edm.DateTimeOffset")]
    return EntityType(name, ("ContactID",), tuple(props), aliases)


#: One table under two set names (full, display), another module's table of the same short
#: name, and a table without NoteID.
TYPES = {
    t.name: t
    for t in (
        _table("PX_Objects_CR_Contact", "Contact", "ContactDisplay"),
        _table("ContactDisplay", "PX_Objects_CR_Contact"),
        _table("PX_Objects_XX_Contact", "Contact"),
        _table("PX_Objects_CR_Address", noted=False),
    )
}


class StubServices:
    """``ODataServices`` answering from :data:`TYPES`: no request."""

    def resolve(self, kind: str, name: str) -> str:
        assert kind == "dac"
        return name

    def entity_sets(self, kind: str) -> list[str]:
        return list(TYPES)

    def metadata(self, kind: str, wanted: Callable[[str], bool]) -> dict[str, EntityType]:
        return {name: etype for name, etype in TYPES.items() if wanted(name)}


def _catalog(**settings: Any) -> tuple[TapAcumatica, ODataCatalog]:
    tap = TapAcumatica(config=dict(CONFIG), setup_mapper=False)
    chosen = dataclasses.replace(tap.settings, **settings)
    catalog = ODataCatalog(tap, tap.connection, chosen, "Company")
    catalog.services = StubServices()  # type: ignore[assignment]
    return tap, catalog


def test_dac_stream_names_collapse_one_table_and_keep_two_apart() -> None:
    _tap, catalog = _catalog(odata_dacs=tuple(TYPES))
    streams = catalog.from_settings()
    assert [(s.name, s.etype.name) for s in streams if isinstance(s, DacStream)] == [
        ("dac_Contact", "PX_Objects_CR_Contact"),
        ("dac_PX_Objects_XX_Contact", "PX_Objects_XX_Contact"),
        ("dac_Address", "PX_Objects_CR_Address"),
    ]


def test_feeds_go_to_incremental_streams_with_a_dac(caplog: pytest.LogCaptureFixture) -> None:
    _tap, catalog = _catalog(
        odata_dacs=("PX_Objects_CR_Contact", "PX_Objects_CR_Address"),
        track_deletions=True,
        deletion_dacs={"Customer": ""},
    )
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    rest = [
        offline_stream(copy.deepcopy(schema), name="SalesOrder"),
        offline_stream(
            copy.deepcopy(schema), name="Customer", replication_key="LastModifiedDateTime"
        ),
        offline_stream(
            copy.deepcopy(schema), name="Unheard", replication_key="LastModifiedDateTime"
        ),
        offline_stream(copy.deepcopy(schema), name="Subaccount", replication_key=None),
    ]
    streams = [*rest, *catalog.from_settings()]
    with caplog.at_level(logging.INFO):
        catalog.attach_deletions(streams, None)
    fed = {s.name: s.deletions.name for s in streams if s.deletions is not None}
    assert fed == {"SalesOrder": "SOOrder", "dac_Contact": "PX_Objects_CR_Contact"}
    with_column = {s.name for s in streams if "_sdc_deleted_at" in s.schema["properties"]}
    assert with_column == set(fed)
    lines = [r.getMessage() for r in caplog.records if "track_deletions" in r.getMessage()]
    assert lines == [
        "track_deletions: no DAC is mapped for Customer, Unheard, so their deletions are not "
        "read; map each to its DAC in deletion_dacs (docs/acumatica-api.md §10)"
    ]


def test_no_feed_without_track_deletions() -> None:
    _tap, catalog = _catalog(odata_dacs=("PX_Objects_CR_Contact",))
    streams = catalog.from_settings()
    catalog.attach_deletions(streams, None)
    assert all(s.deletions is None for s in streams)
    assert all("_sdc_deleted_at" not in s.schema["properties"] for s in streams)
