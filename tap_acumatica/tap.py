"""tap-acumatica: the Singer tap: settings and stream discovery (layout: docs/architecture.md)."""

from __future__ import annotations

import sys
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_acumatica.connection import Connection
from tap_acumatica.contract.catalog import ContractCatalog
from tap_acumatica.errors import AcumaticaAPIError, AuthError, EntityUnavailableError
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

    @override
    def discover_streams(self) -> list[WindowedStream]:
        """One stream per entity: from ``--catalog`` if given, else the endpoint's document.

        With ``--catalog`` the document is never downloaded: the SDK would otherwise fetch it
        again on every sync.
        """
        catalog = ContractCatalog(self, self.connection, self.settings)
        if self.input_catalog is not None:
            return list(catalog.from_catalog(self.input_catalog))
        return list(catalog.from_document())

    def preflight(self) -> list[Readability]:
        """``--check``: one ``$top=1`` list GET per selected stream; can each be read?

        A stream that cannot be read (docs/acumatica-api.md §9: 403, module not set up, or
        another deterministic error) gets why and what to do; sign-in failures end the check.
        """
        rows: list[Readability] = []
        for stream in self.streams.values():
            if not stream.selected:
                continue
            assert isinstance(stream, WindowedStream)
            try:
                stream.prepare()
                stream.fetch_sample()
            except EntityUnavailableError as exc:
                rows.append(Readability(stream.name, False, exc.reason, exc.fix))
            except AuthError:
                raise
            except AcumaticaAPIError as exc:
                rows.append(Readability(stream.name, False, str(exc), "see why"))
            else:
                rows.append(Readability(stream.name, True, "", ""))
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
