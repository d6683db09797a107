"""The instance's OData services (GI and DAC): where they live, what they list, their literals.

docs/acumatica-api.md §8: from 2024 R2 the services live at ``/t/{tenant}/api/odata/gi`` and
``…/dac`` (OData v4); before, at ``/odata/{tenant}`` (GIs, OData v3) and ``/odatav4/{tenant}``
(DACs, v4). Which one an instance has is found on first use, by asking the 2024 R2 service
document; a 404 means the legacy path.

Requests go through the run's ``connection.client``, so they carry the run's credential: the
bearer of an OAuth grant, or with ``auth_method: cookie`` the REST session cookie of the
sign-in, which the OData services accept as well (docs/acumatica-api.md §6, §8). No basic auth
(a conventional-user sign-in per call, §8).
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from tap_acumatica.errors import AnswerShapeError, ConfigError
from tap_acumatica.odata.metadata import MetadataParser, short_name
from tap_acumatica.odata.model import EntityType, Service
from tap_acumatica.stamps import from_ms

if TYPE_CHECKING:
    from tap_acumatica.connection import Connection

LOGGER = logging.getLogger("tap-acumatica")
KINDS = ("gi", "dac")
#: The cap on a decoded ``$metadata``: a clean 2026 R2 DAC document is ~20 MB (§8).
METADATA_BYTES = 512 * 1024 * 1024
_XML = {"Accept": "application/xml"}  # not a JSON CSDL, which an OData 4.01 server may send
_NOT_WORD = re.compile(r"[^0-9a-z]")


def literal(ms: int, service: Service, zone: dt.tzinfo | None = None) -> str:
    """A date-time ``$filter`` literal for the instant ``ms`` in the syntax of ``service``.

    v4: bare ISO 8601 with milliseconds and ``Z`` (``2024-07-15T10:00:00.000Z``,
    docs/acumatica-api.md §8). v3 (the legacy GI service): ``datetime'…'`` with no offset, so
    the instant is written as the wall-clock time of ``zone`` (the tenant's; default UTC), which
    is how the GI's date-times are stored. Milliseconds keep 1/300 s ticks exact (§3).
    """
    instant = from_ms(ms)
    if service.version == "3":
        local = instant.astimezone(zone or dt.timezone.utc).replace(tzinfo=None)
        return f"datetime'{local.isoformat(timespec='milliseconds')}'"
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entity_path(
    service: Service, entity_set: str, parameters: Mapping[str, str] | None = None
) -> str:
    """The path of an entity set; with ``parameters``, its GI's ``…_WithParameters(P='v')``.

    docs/acumatica-api.md §8: a GI with parameters is read through that function; string
    literals double their quotes.
    """
    if not parameters:
        return f"{service.root}/{quote(entity_set, safe='')}"
    args = ",".join(f"{k}='{v.replace(chr(39), chr(39) * 2)}'" for k, v in parameters.items())
    call = f"{entity_set}_WithParameters({args})"
    return f"{service.root}/{quote(call, safe=chr(39) + '(),=')}"


class ODataServices:
    """The GI and DAC services of one instance and tenant, each detected once, on first use."""

    def __init__(self, connection: Connection, tenant: str) -> None:
        """``tenant``: its login name (``auth.config.tenant_of``); no network I/O here."""
        self._connection = connection
        self.tenant = tenant
        self._lock = threading.RLock()
        self._services: dict[str, Service] = {}
        self._sets: dict[str, list[str]] = {}

    literal = staticmethod(literal)

    def service(self, kind: str) -> Service:
        """Where the ``kind`` ("gi" or "dac") service lives and its OData version."""
        with self._lock:
            if kind not in self._services:
                self._detect(kind)
            return self._services[kind]

    def entity_sets(self, kind: str) -> list[str]:
        """The entity-set names the service document lists (GIs exposed, or DACs)."""
        with self._lock:
            self.service(kind)
            return list(self._sets[kind])

    def metadata(self, kind: str, wanted: Callable[[str], bool]) -> dict[str, EntityType]:
        """The entity types of the sets ``wanted`` accepts, from ``$metadata`` read streamed."""
        service = self.service(kind)
        path = f"{service.root}/$metadata"
        source = f"GET {path}"
        parser = [MetadataParser(wanted, source=source)]

        def consume(piece: bytes) -> None:
            parser[0].feed(piece)

        def restart() -> None:
            parser[0] = MetadataParser(wanted, source=source)

        self._connection.client.get_chunks(
            path,
            consume=consume,
            restart=restart,
            limit=METADATA_BYTES,
            headers=_XML,
        )
        return parser[0].close()

    def path(self, kind: str, entity_set: str, parameters: Mapping[str, str] | None = None) -> str:
        """The path of ``entity_set`` on the ``kind`` service (see :func:`entity_path`)."""
        return entity_path(self.service(kind), entity_set, parameters)

    def resolve(self, kind: str, name: str) -> str:
        """The entity set a configured name means: the set's own, the DAC's short name
        (``SOLine``) or a display name (``Sales Orders``); ConfigError with close matches.
        """
        sets = self.entity_sets(kind)
        for same in (
            lambda s: s == name,
            lambda s: s.lower() == name.lower(),
            lambda s: short_name(s).lower() == name.lower(),
            lambda s: _word(s) == _word(name),
        ):
            found = [s for s in sets if same(s)]
            if len(found) > 1 and name not in found:
                msg = f"the OData {kind} name {name!r} is ambiguous: {', '.join(found)}; use one"
                raise ConfigError(msg)
            if found:
                return name if name in found else found[0]
        by_word = {_word(s): s for s in sets} | {_word(short_name(s)): s for s in sets}
        close = difflib.get_close_matches(_word(name), list(by_word), n=5, cutoff=0.6)
        what = "inquiry (exposed via OData)" if kind == "gi" else "DAC"
        hint = (
            f"close matches: {', '.join(sorted({by_word[c] for c in close}))}"
            if close
            else f"the service lists {len(sets)}"
        )
        msg = f"no OData {what} named {name!r} at {self.service(kind).root}; {hint}"
        raise ConfigError(msg)

    # -- detection ---------------------------------------------------------------------------

    def _detect(self, kind: str) -> None:
        if kind not in KINDS:
            msg = f"unknown OData service kind {kind!r} (expected one of {', '.join(KINDS)})"
            raise ValueError(msg)
        if not self.tenant:
            msg = "OData needs the tenant's login name: set tenant"
            raise ConfigError(msg)
        tenant = quote(self.tenant, safe="")
        modern = Service(kind, f"/t/{tenant}/api/odata/{kind}", "4")
        # docs/acumatica-api.md §8: before 2024 R2, GIs speak OData v3 at /odata/{tenant} and
        # DACs v4 at /odatav4/{tenant}.
        legacy = (
            Service(kind, f"/odata/{tenant}", "3")
            if kind == "gi"
            else Service(kind, f"/odatav4/{tenant}", "4")
        )
        for service in (modern, legacy):
            names = self._service_document(service)
            if names is not None:
                if service is legacy:
                    LOGGER.info(
                        "OData %s: %s answers 404 (before 2024 R2); using the legacy service "
                        "at %s (OData v%s)",
                        kind,
                        modern.root,
                        legacy.root,
                        legacy.version,
                    )
                self._services[kind], self._sets[kind] = service, names
                return
        msg = (
            f"this instance serves no OData {kind} service at {modern.root} or {legacy.root} "
            f"(both answer 404): OData needs 2024 R2 or later at the first path, an earlier "
            f"release at the second; check tenant ({self.tenant!r}, the tenant's login name)"
        )
        raise ConfigError(msg)

    def _service_document(self, service: Service) -> list[str] | None:
        """The entity-set names of a service document; None when the path answers 404."""
        pieces: list[bytes] = []
        found = self._connection.client.get_chunks(
            service.root, consume=pieces.append, restart=pieces.clear, absent=(404,)
        )
        if not found:
            return None
        try:
            names = _set_names(msgspec.json.decode(b"".join(pieces)))
        except msgspec.DecodeError:
            names = None
        if names is None:
            msg = f"GET {service.root}: the answer is not an OData service document"
            raise AnswerShapeError(msg)
        return names


def _set_names(document: Any) -> list[str] | None:
    """Names of a v4 or v3 JSON service document (``value[].name``, v3 verbose ``EntitySets``)."""
    if isinstance(document, dict) and isinstance(document.get("d"), dict):
        document = document["d"]  # OData v3 verbose JSON
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("EntitySets"), list):
        return [str(n) for n in document["EntitySets"]]
    value = document.get("value")
    if not isinstance(value, list):
        return None
    names = []
    for entry in value:
        if not isinstance(entry, dict):
            return None
        if entry.get("kind", "EntitySet") != "EntitySet":
            continue  # singletons, function imports: not entity sets
        name = entry.get("name") or entry.get("url")
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _word(name: str) -> str:
    return _NOT_WORD.sub("", name.lower())
