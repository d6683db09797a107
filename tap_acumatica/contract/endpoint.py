"""Which contract-based endpoint the run reads: ``/entity/{name}/{version}``."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tap_acumatica.errors import ConfigError

if TYPE_CHECKING:
    from tap_acumatica.connection import Connection

_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")


class Endpoint:
    """The endpoint of the run, chosen on first use from the instance's ``GET /entity``."""

    def __init__(self, connection: Connection, name: str, version: str | None) -> None:
        """``version`` None means the highest the instance lists; no network I/O here."""
        self._connection = connection
        self.name = name
        self._configured = version
        self._path: str | None = None
        self._lock = threading.Lock()

    def path(self) -> str:
        """``/entity/{name}/{version}`` (docs/acumatica-api.md §1)."""
        with self._lock:
            if self._path is None:
                version = choose_endpoint_version(
                    self._connection.probe(), self.name, self._configured
                )
                self._path = f"/entity/{self.name}/{version}"
            return self._path


def choose_endpoint_version(
    index: Mapping[str, Any], endpoint_name: str, configured: str | None
) -> str:
    """The configured version, checked against ``GET /entity``, else the highest listed.

    docs/acumatica-api.md §1: ``GET /entity`` lists every endpoint name and version.
    """
    versions = sorted(
        {
            str(ep.get("version"))
            for ep in index.get("endpoints") or []
            if isinstance(ep, dict)
            and str(ep.get("name", "")).lower() == endpoint_name.lower()
            and _VERSION_RE.match(str(ep.get("version", "")))
        },
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )
    if configured:
        if configured in versions:
            return configured
        have = ", ".join(versions) or "none"
        msg = (
            f"endpoint_version {configured!r} is not available for endpoint {endpoint_name!r} "
            f"on this instance; it lists: {have}"
        )
        raise ConfigError(msg)
    if not versions:
        names = sorted({str(ep.get("name")) for ep in index.get("endpoints") or []})
        msg = (
            f"endpoint {endpoint_name!r} is not listed by GET /entity on this instance; "
            f"available endpoints: {', '.join(names) or 'none'}"
        )
        raise ConfigError(msg)
    return versions[-1]
