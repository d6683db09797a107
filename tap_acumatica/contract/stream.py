"""The contract-based REST API dialect: one stream per top-level entity (e.g. ``SalesOrder``).

Reads ``GET /entity/{endpoint}/{version}/{Entity}`` with ``$select``/``$expand``/``$custom``
built from the catalog, windows as ``$filter`` ranges with ``datetimeoffset'…'`` literals, and
list pages decoded straight into typed structs (``contract.records``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from tap_acumatica.contract.records import Converter, Plan, build_plan, page_decoder, transform
from tap_acumatica.errors import AcumaticaAPIError
from tap_acumatica.stamps import from_ms
from tap_acumatica.sync.paging import page_consistently
from tap_acumatica.sync.scheduler import WindowResult
from tap_acumatica.sync.stream import WindowedStream
from tap_acumatica.sync.windows import PageStamps, Window

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk import Tap

    from tap_acumatica.connection import Connection
    from tap_acumatica.contract.endpoint import Endpoint
    from tap_acumatica.settings import Settings

_SYSTEM = frozenset({"id", "note", "custom", "files"})


def odata_literal(ms: int) -> str:
    """``datetimeoffset'…'`` literal, offset-qualified (docs/acumatica-api.md §4: never bare)."""
    return f"datetimeoffset'{from_ms(ms).isoformat(timespec='milliseconds')}'"


def window_filter(window: Window, field: str) -> str:
    """The ``$filter`` expression selecting ``window`` on ``field``."""
    return f"{field} ge {odata_literal(window.start)} and {field} lt {odata_literal(window.end)}"


class ContractStream(WindowedStream):
    """Records of one top-level entity of a contract-based endpoint."""

    def __init__(
        self,
        tap: Tap,
        *,
        connection: Connection,
        settings: Settings,
        endpoint: Endpoint,
        name: str,
        schema: dict[str, Any],
        replication_key: str | None,
        natural_keys: tuple[str, ...] = (),
    ) -> None:
        """A stream for entity ``name``; no network I/O here."""
        super().__init__(
            tap,
            connection=connection,
            settings=settings,
            name=name,
            schema=schema,
            replication_key=replication_key,
        )
        self.endpoint = endpoint
        self.natural_keys = natural_keys
        self._plan: Plan | None = None
        self._decoder: tuple[msgspec.json.Decoder[Any], Converter] | None = None
        self._query: dict[str, str] = {}

    @property
    def plan(self) -> Plan:
        """Transform plan compiled from the (catalog) schema."""
        if self._plan is None:
            self._plan = build_plan(self.schema)
        return self._plan

    def query_options(self) -> dict[str, str]:
        """``$select`` (selected fields + keys), ``$expand`` and ``$custom`` for list GETs.

        Built from the catalog schema and selection, so a deselected field is never downloaded
        and a ``--catalog`` run needs no document download (docs/acumatica-api.md §4).
        """
        props: Mapping[str, Any] = self.schema.get("properties") or {}
        always = {self.replication_key, *self.natural_keys}
        select: list[str] = []
        expand: list[str] = []
        for name, prop in props.items():
            if name in _SYSTEM:
                if name == "files" and self._selected(name):
                    expand.append("files")
                continue
            if _is_member(prop):
                if self._selected(name):
                    expand.extend(_expand_paths(name, prop))
                continue
            if name in always or self._selected(name):
                select.append(name)
        params = {"$select": ",".join(select)} if select else {}
        if expand:
            params["$expand"] = ",".join(expand)
        custom = [
            f"{view}.{field}"
            for view, vprop in ((props.get("custom") or {}).get("properties") or {}).items()
            for field in (vprop.get("properties") or {})
        ]
        if custom and self._selected("custom"):
            params["$custom"] = ",".join(custom)
        return params

    def _selected(self, name: str) -> bool:
        return bool(self.mask.get(("properties", name), True))

    # -- the dialect protocol ---------------------------------------------------------------

    @override
    def prepare(self) -> None:
        """Query options and the page decoder, built once before the worker threads start."""
        self._query = self.query_options()
        self._decoder = page_decoder(self.plan, self.name)

    @override
    def fetch_all(self) -> Iterator[dict[str, Any]]:
        """Every record, with overlapping ``$top/$skip`` pages (no change field to window on)."""
        base = self._query
        yield from page_consistently(
            lambda skip, top: self._records({**base, "$top": top, "$skip": skip or None}),
            page_size=self.settings.page_size,
            what=f"{self.name} records",
        )

    @override
    def fetch_window(self, window: Window) -> WindowResult:
        """One request, or a full re-read of a tie burst (records sharing one stamp)."""
        assert self.replication_key is not None
        size = self.settings.page_size
        params = {**self._query, "$filter": window_filter(window, self.replication_key)}
        rows = self._records({**params, "$top": size})
        requests = 1
        if len(rows) >= size:
            if window.splittable:
                stamps = PageStamps.of(rows, self.replication_key)
                return WindowResult(window, full=True, tie=stamps.tie, sample=stamps.sample)
            # A tie burst: more than a page of records share one stamp, nothing can split it.
            self.logger.info(
                "%s: more than %d records changed at %s; paging them", self.name, size, window
            )
            counter = [0]

            def page(skip: int, top: int) -> list[dict[str, Any]]:
                counter[0] += 1
                return self._records({**params, "$top": top, "$skip": skip or None})

            rows = list(
                page_consistently(
                    page, page_size=size, first_page=rows, what=f"{self.name} records at {window}"
                )
            )
            requests += counter[0]
        return WindowResult(window, rows, requests=requests)

    def _records(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One list GET, as Singer records (decoded straight into typed structs)."""
        self.check_running()
        if self._decoder is None:
            self.prepare()
        assert self._decoder is not None
        decoder, convert = self._decoder
        path = f"{self.endpoint.path()}/{self.name}"
        rows = self.connection.client.get_json(path, params, stream=self.name, decoder=decoder)
        if not isinstance(rows, list):
            msg = f"{self.name}: GET {path} returned {type(rows).__name__}, not a JSON array"
            raise AcumaticaAPIError(msg)
        if rows and not isinstance(rows[0], msgspec.Struct):  # another shape: plain JSON
            plan = self.plan
            return [transform(row, plan) for row in rows]
        return [convert(row) for row in rows]


def _is_member(prop: Mapping[str, Any]) -> bool:
    """A linked (object) or detail (array of objects) member rather than a value field."""
    types = prop.get("type")
    types = set(types) if isinstance(types, list) else {types}
    if "object" in types and "properties" in prop:
        return True
    items = prop.get("items") or {}
    return "array" in types and "properties" in items


def _expand_paths(name: str, prop: Mapping[str, Any]) -> list[str]:
    """``$expand`` paths for a member and the members nested in its schema."""
    paths = [name]
    inner = prop.get("items") if "properties" in (prop.get("items") or {}) else prop
    for sub, sprop in ((inner or {}).get("properties") or {}).items():
        if sub == "files":
            paths.append(f"{name}/files")
        elif _is_member(sprop):
            paths.extend(f"{name}/{p}" for p in _expand_paths(sub, sprop))
    return paths
