"""tap-acumatica: settings and discovery (one stream per top-level Acumatica entity)."""

from __future__ import annotations

import _thread
import atexit
import datetime as dt
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_acumatica import streams
from tap_acumatica.auth import AUTH_SETTINGS, AcumaticaAuthenticator, build_authenticator
from tap_acumatica.client import DEFAULT_START, AcumaticaStream
from tap_acumatica.discovery import (
    ApiDocument,
    choose_endpoint_version,
    custom_fields_from_adhoc,
)
from tap_acumatica.errors import ConfigError
from tap_acumatica.extract import DaemonPool
from tap_acumatica.http import QUIESCE_SECONDS, AcumaticaClient, check_base_url
from tap_acumatica.windows import to_ms

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from types import FrameType

__version__ = "0.1.0"

EXTRACTION_SETTINGS: list[th.Property] = [
    th.Property(
        "base_url",
        th.StringType,
        required=True,
        description="Instance URL, including the site path if any, e.g. "
        "https://example.acumatica.com or https://erp.example.com/AcumaticaERP. "
        "http:// is accepted for loopback hosts only.",
    ),
    th.Property(
        "endpoint_name",
        th.StringType,
        default="Default",
        description="Web-service endpoint (SM207060); the system endpoint is Default.",
    ),
    th.Property(
        "endpoint_version",
        th.StringType,
        description="Endpoint version, e.g. 24.200.001. Default: the highest version of "
        "endpoint_name that GET /entity lists on the instance.",
    ),
    th.Property(
        "entities",
        th.ArrayType(th.StringType),
        description='Only discover these entities (e.g. ["SalesOrder", "Customer"]). '
        "Default: every top-level entity with a list GET.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description="Read records changed at or after this time on the first run "
        "(ISO-8601 with offset). Default: everything.",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=2),
        default=1000,
        description="Records per request ($top). A time window that returns a full page is "
        "split and re-read; only records sharing one timestamp are paged.",
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1, maximum=100),
        default=2,
        description="Windows fetched in parallel. Keep it at or below the licence's "
        "'Maximum Number of Concurrent Web Services API Requests' (SM604000).",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1, maximum=86400),
        default=660,
        description="Seconds to wait for a response. Acumatica queues requests over the "
        "licence limit for up to 10 minutes without any signal, hence the generous default.",
    ),
    th.Property(
        "max_tries",
        th.IntegerType(minimum=1),
        default=8,
        description="Attempts per request on 429, 5xx, timeouts, dropped connections and "
        "truncated JSON (exponential backoff with jitter; Retry-After honoured).",
    ),
    th.Property(
        "backoff_base_seconds",
        th.NumberType(minimum=0),
        default=1.0,
        description="First retry delay; it doubles per attempt (capped at 60 s), with jitter.",
    ),
    th.Property(
        "login_limit_wait_seconds",
        th.IntegerType(minimum=0),
        default=600,
        description="How long to keep retrying when Acumatica answers 'API Login Limit' "
        "(every API seat taken); unclosed sessions free their seat after 10 minutes. "
        "0 fails at once.",
    ),
    th.Property(
        "expand",
        th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
        description="Entity → detail/linked entities to read with it ($expand), e.g. "
        '{"SalesOrder": ["Details", "ShipToAddress"], "Customer": ["MainContact/Address"]}. '
        "They become nested arrays/objects in the records.",
    ),
    th.Property(
        "custom_fields",
        th.ObjectType(
            additional_properties=th.CustomType(
                {"type": ["array", "string"], "items": {"type": "string"}}
            )
        ),
        description='Entity → custom fields to read ($custom) as View.Field names, or "all" '
        'for every custom field $adHocSchema lists, e.g. {"SalesOrder": '
        '["Document.UsrRepairType"], "StockItem": "all"}. Records carry them as '
        'custom: {"View": {"Field": value}}.',
    ),
    th.Property(
        "lookback_minutes",
        th.IntegerType(minimum=0),
        default=0,
        description="Re-read this many minutes before the bookmark on every run (covers "
        "transactions that commit long after they stamp their records).",
    ),
    th.Property(
        "safety_lag_seconds",
        th.IntegerType(minimum=0),
        default=300,
        description="Read only up to this many seconds before the sync started; newer changes "
        "are read on the next run, so a late-committing transaction is never skipped.",
    ),
    th.Property(
        "progress_interval_seconds",
        th.IntegerType(minimum=1),
        default=30,
        description="Seconds between progress log lines per stream (stderr).",
    ),
    th.Property(
        "user_agent",
        th.StringType,
        default=f"tap-acumatica/{__version__}",
        description="User-Agent header sent with every request.",
    ),
]


def _settings() -> th.PropertiesList:
    names = {p.name for p in EXTRACTION_SETTINGS}
    return th.PropertiesList(
        *EXTRACTION_SETTINGS, *(p for p in AUTH_SETTINGS if p.name not in names)
    )


class TapAcumatica(Tap):
    """Singer tap for Acumatica ERP's contract-based REST API."""

    name = "tap-acumatica"
    dynamic_catalog = True
    message_writer_class = MsgSpecWriter
    config_files: ClassVar[tuple[str, ...]] = ()
    config_jsonschema = _settings().to_dict()
    _terminating = False
    _deferred: threading.Timer | None = None

    # -- collaborators (built lazily: no network I/O in the constructor) --------------------

    @cached_property
    def authenticator(self) -> AcumaticaAuthenticator:
        """The run's one authenticator, signed out when the process ends."""
        authenticator = build_authenticator(
            self.config, config_files=self.config_files, user_agent=self.config.get("user_agent")
        )
        atexit.register(self.close)
        return authenticator

    @cached_property
    def client(self) -> AcumaticaClient:
        """HTTP client shared by discovery and every stream."""
        config = self.config
        return AcumaticaClient(
            check_base_url(str(config["base_url"])),
            self.authenticator,
            timeout=float(self.setting("request_timeout", 660)),
            max_tries=int(self.setting("max_tries", 8)),
            backoff_base=float(self.setting("backoff_base_seconds", 1.0)),
            login_limit_wait=float(self.setting("login_limit_wait_seconds", 600)),
            user_agent=config.get("user_agent"),
            branch=config.get("branch"),
        )

    def setting(self, name: str, default: Any) -> Any:
        """A setting's value, or ``default`` when it is absent or null."""
        value = self.config.get(name)
        return default if value is None else value

    @cached_property
    def pool(self) -> DaemonPool:
        """Worker threads shared by every stream, so their keep-alive sessions are reused."""
        return DaemonPool(self.max_concurrent_requests, "acumatica-fetch")

    @cached_property
    def endpoint_version(self) -> str:
        """Configured version, checked against ``GET /entity``, else the highest listed."""
        index = self.client.get_json("/entity")
        name = str(self.config.get("endpoint_name") or "Default")
        return choose_endpoint_version(index, name, self.config.get("endpoint_version"))

    @property
    def endpoint_path(self) -> str:
        """``/entity/{endpoint_name}/{endpoint_version}`` (API-FACTS §1)."""
        return f"/entity/{self.config.get('endpoint_name') or 'Default'}/{self.endpoint_version}"

    @property
    def page_size(self) -> int:
        """``$top`` of every request."""
        size = int(self.setting("page_size", 1000))
        if size < 2:
            msg = "page_size must be at least 2"
            raise ConfigError(msg)
        return size

    @property
    def max_concurrent_requests(self) -> int:
        """Worker threads per stream."""
        return max(1, int(self.setting("max_concurrent_requests", 2)))

    def sync_end_ms(self) -> int:
        """Upper bound of this stream's windows: now - safety lag, on the earlier clock.

        The server's ``Date`` header guards against a local clock running ahead of the
        server's, which would otherwise move the bookmark past records not yet written.
        """
        _ = self.endpoint_path  # make sure one response (and its Date) has been seen
        now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
            seconds=min(0.0, self.client.server_skew or 0.0)
        )
        try:
            lag = dt.timedelta(seconds=float(self.setting("safety_lag_seconds", 300)))
            return to_ms(now - lag)
        except OverflowError:  # a lag of millennia: nothing is old enough to read yet
            return to_ms(DEFAULT_START)

    def close(self) -> None:
        """Stop all requests, then free the API seat (also run at process exit).

        Quiescing the client first matters after SIGTERM/SIGINT: a worker's GET still on the
        wire would reach Acumatica after the logout with a still-valid bearer and open a new
        session holding a seat for 10 minutes (API-FACTS §6). ``sign_out`` quiesces the
        client too (it is registered with the authenticator), whoever calls it first.
        """
        if "client" in self.__dict__:
            self.client.close()
        if "authenticator" in self.__dict__:
            self.authenticator.sign_out()

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: final STATE, stop new requests, exit ``128 + signum``.

        singer-sdk exits 0 here, which an orchestrator would read as a complete sync. The
        SystemExit unwinds the sync; the CLI's handler and the atexit hook then wait for the
        requests in flight and sign out before the process ends with the signal's code.
        """
        if self._terminating:
            return  # already ending: a second signal must not cut the sign-out short
        client: AcumaticaClient | None = self.__dict__.get("client")
        if client is not None:
            client.stop_sending()
            if client.main_thread_sending and self._deferred is None:
                # Interrupting the main thread's GET would not stop Acumatica from answering
                # it after the logout (opening a session): end once it is answered, or after
                # QUIESCE_SECONDS, whichever comes first.
                timer = threading.Timer(QUIESCE_SECONDS, _resignal, (signum,))
                timer.daemon = True
                self._deferred = timer
                client.after_main_send = lambda: self._handle_termination(signum, frame)
                timer.start()
                return
        if self._deferred is not None:
            self._deferred.cancel()
        self._terminating = True
        try:
            self._state_writer.write_state(self.state)
        finally:
            self.logger.info("Gracefully shutting down...")
            sys.exit(128 + int(signum))

    # -- discovery --------------------------------------------------------------------------

    @override
    def discover_streams(self) -> list[AcumaticaStream]:
        """One stream per entity: from ``--catalog`` if given, else the endpoint's document."""
        if self.input_catalog is not None:
            return self._streams_from_catalog()
        return self._streams_from_document()

    def _streams_from_catalog(self) -> list[AcumaticaStream]:
        # SINGER-SDK notes §4: without this the SDK re-downloads the document on every sync.
        result = []
        for entry in self.input_catalog.streams if self.input_catalog else ():
            meta = entry.metadata.root
            result.append(
                AcumaticaStream(
                    self,
                    name=entry.tap_stream_id,
                    schema=entry.schema.to_dict(),
                    replication_key=entry.replication_key or meta.replication_key,
                    natural_keys=streams.natural_keys(entry.tap_stream_id),
                )
            )
        return result

    def _streams_from_document(self) -> list[AcumaticaStream]:
        raw = self.client.get_bytes(f"{self.endpoint_path}/swagger.json")
        document = ApiDocument.from_bytes(raw)
        wanted = self.config.get("entities")
        known = set(document.entity_names())
        if wanted:
            unknown = sorted(set(wanted) - known)
            if unknown:
                msg = f"entities: {', '.join(unknown)} not in {document.title or 'the endpoint'}"
                raise ConfigError(msg)
            inquiries = sorted(n for n in wanted if streams.is_inquiry(n))
            if inquiries:
                # API-FACTS §2.1: inquiry entities are filter forms read with PUT, not lists.
                msg = (
                    f"entities: {', '.join(inquiries)} are inquiry forms (read with PUT and a "
                    "filter body), not lists; expose the data through a generic inquiry instead"
                )
                raise ConfigError(msg)
        expand: Mapping[str, Sequence[str]] = self.config.get("expand") or {}
        custom_cfg: Mapping[str, Any] = self.config.get("custom_fields") or {}
        for name in [*expand, *custom_cfg]:
            if name not in known:
                msg = f"expand/custom_fields name entity {name!r}, which the endpoint does not have"
                raise ConfigError(msg)
        result = []
        for info in document.entities():
            if wanted and info.name not in wanted:
                continue
            if not info.has_list_get or streams.is_inquiry(info.name):
                continue
            rkey = streams.REPLICATION_KEY_OVERRIDES.get(info.name, info.replication_key)
            keys = streams.natural_keys(info.name)
            schema = document.stream_schema(
                info.name,
                expand=expand.get(info.name, ()),
                custom=self._custom_fields(info.name, custom_cfg.get(info.name)),
                natural_keys=keys,
                description=_describe(info.name, document.title, rkey, keys),
            )
            result.append(
                AcumaticaStream(
                    self, name=info.name, schema=schema, replication_key=rkey, natural_keys=keys
                )
            )
        return result

    def _custom_fields(self, entity: str, wanted: Any) -> dict[str, dict[str, str]] | None:
        """Custom fields with their types from ``$adHocSchema`` (API-FACTS §5)."""
        if not wanted:
            return None
        adhoc = self.client.get_json(f"{self.endpoint_path}/{entity}/$adHocSchema", stream=entity)
        available = custom_fields_from_adhoc(adhoc if isinstance(adhoc, dict) else {})
        if wanted == "all":
            return available
        if isinstance(wanted, str):
            wanted = [wanted]
        chosen: dict[str, dict[str, str]] = {}
        for item in wanted:
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


def _resignal(signum: int) -> None:
    """Deliver ``signum`` to the main thread again, interrupting a blocking socket read."""
    ident = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and ident is not None:
        signal.pthread_kill(ident, signum)
    else:  # Windows: handled once the main thread runs Python code again
        _thread.interrupt_main(signal.Signals(signum))


def _describe(entity: str, title: str, rkey: str | None, keys: Sequence[str]) -> str:
    parts = [f"Acumatica entity {entity} ({title})." if title else f"Acumatica entity {entity}."]
    parts.append(f"Primary key: id (the NoteID). Natural key: {', '.join(keys) or 'unknown'}.")
    parts.append(f"Change field: {rkey}." if rkey else "No change field: read in full each run.")
    return " ".join(parts)
