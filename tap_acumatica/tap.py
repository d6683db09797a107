"""tap-acumatica: the Singer tap: settings and stream discovery (layout: docs/architecture.md)."""

from __future__ import annotations

import sys
import time
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_acumatica.auth.config import tenant_of
from tap_acumatica.connection import Connection
from tap_acumatica.contract.catalog import ContractCatalog
from tap_acumatica.errors import AcumaticaAPIError, AuthError, EntityUnavailableError
from tap_acumatica.odata.catalog import ODataCatalog, check_deletions
from tap_acumatica.odata.model import DAC_PREFIX, GI_PREFIX
from tap_acumatica.settings import Settings
from tap_acumatica.settings_schema import config_schema
from tap_acumatica.sync.report import RunReport

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

from tap_acumatica.sync.stream import WindowedStream

if TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.singerlib import Catalog


class Readability(NamedTuple):
    """One line of the ``--check`` table."""

    stream: str
    readable: bool
    why_not: str
    fix: str


class TapAcumatica(Tap):
    """Singer tap for Acumatica ERP's contract-based REST API."""

    name = "tap-acumatica"
    dynamic_catalog = True
    message_writer_class = MsgSpecWriter
    #: The ``--config`` paths, set by the CLI: the token store may live in the config file.
    config_files: ClassVar[tuple[str, ...]] = ()
    #: The run's report, set by the CLI, which reports failed streams once the SDK has finished.
    cli_report: ClassVar[RunReport | None] = None
    config_jsonschema = config_schema()
    _terminating = False

    @cached_property
    def settings(self) -> Settings:
        """The extraction settings, typed, with defaults."""
        return Settings.from_config(self.config)

    @cached_property
    def run_report(self) -> RunReport:
        """Failed streams and the time probe of this run: the CLI's, else this tap's own."""
        return self.cli_report or RunReport()

    @cached_property
    def connection(self) -> Connection:
        """The connection to the instance (built lazily: no network I/O in the constructor)."""
        return Connection(self.settings, self.config, config_files=self.config_files)

    @cached_property
    def odata(self) -> ODataCatalog:
        """The OData streams and deletion feeds (built lazily: no network I/O)."""
        return ODataCatalog(self, self.connection, self.settings, tenant_of(self.config))

    @override
    def discover_streams(self) -> list[WindowedStream]:
        """REST streams, then DAC and GI streams: from ``--catalog`` if given, else discovered.

        With ``--catalog`` no document is downloaded: the SDK would otherwise fetch them again
        on every sync. OData is asked only when an ``odata_*`` setting names streams.
        """
        streams: list[WindowedStream] = []
        rest = ContractCatalog(self, self.connection, self.settings)
        catalog = self.input_catalog
        if catalog is not None:
            streams += rest.from_catalog(_rest_entries(catalog))
            streams += self.odata.from_catalog(catalog)
        else:
            streams += rest.from_document()
            if self.settings.odata_selected:
                streams += self.odata.from_settings()
        self.odata.attach_deletions(streams, catalog)
        return streams

    def preflight(self) -> list[Readability]:
        """``--check``: one ``$top=1`` read per selected stream, one per deletion feed.

        A stream that cannot be read (docs/acumatica-api.md §9: 403, module not set up, or
        another deterministic error) gets why and what to do; sign-in failures end the check.
        """
        rows: list[Readability] = []
        for stream in self.streams.values():
            if not stream.selected:
                continue
            assert isinstance(stream, WindowedStream)
            for check in (_sample, _deletions):
                try:
                    row = check(stream)
                except EntityUnavailableError as exc:
                    row = Readability(stream.name, False, exc.reason, exc.fix)
                except AuthError:
                    raise
                except AcumaticaAPIError as exc:
                    row = Readability(stream.name, False, str(exc), "see why")
                if row is not None:
                    rows.append(row)
        return rows

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: final STATE, stop new requests, exit ``128 + signum``.

        singer-sdk exits 0 here, which an orchestrator would read as a complete sync (see
        ``sdk``). The SystemExit unwinds the sync; the CLI's handler and the atexit hook then
        wait for the requests in flight and sign out before the process ends.
        """
        if self._terminating:
            return  # already ending: a second signal must not cut the sign-out short
        connection: Connection | None = self.__dict__.get("connection")
        again = lambda: self._handle_termination(signum, frame)  # noqa: E731
        if connection is not None and connection.defer_signal(signum, again):
            return
        self._terminating = True
        try:
            # In batch mode records may still wait for their file: the STATE written after
            # the last BATCH message stands (WindowedStream._commit).
            if not self.config.get("batch_config"):
                self.state_writer.write_state(self.state)
        finally:
            self.logger.info("Gracefully shutting down...")
            sys.exit(128 + int(signum))


def _sample(stream: WindowedStream) -> Readability:
    stream.prepare()
    if type(stream).fetch_sample is WindowedStream.fetch_sample:
        next(iter(stream.fetch_all()), None)  # no one-row read of its own: its first page
    else:
        stream.fetch_sample()
    return Readability(stream.name, True, "", "")


def _deletions(stream: WindowedStream) -> Readability | None:
    if stream.deletions is None:
        return None
    return Readability(*check_deletions(stream, int(time.time() * 1000)))


def _rest_entries(catalog: Catalog) -> Catalog:
    """The input catalog without its OData streams (``dac_``/``gi_``: odata.catalog's)."""
    from singer_sdk.singerlib import Catalog  # noqa: PLC0415

    prefixes = (DAC_PREFIX, GI_PREFIX)
    return Catalog((k, v) for k, v in catalog.items() if not k.startswith(prefixes))
