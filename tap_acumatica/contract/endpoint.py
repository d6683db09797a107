"""Which contract-based endpoint the run reads: ``/entity/{name}/{version}``, and its contract."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tap_acumatica.contract.document import decode_document
from tap_acumatica.errors import ConfigError

if TYPE_CHECKING:
    from tap_acumatica.connection import Connection

_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")
_LOG = logging.getLogger("tap-acumatica")

#: The system contracts the tap speaks (docs/acumatica-api.md §1.1).
SUPPORTED_CONTRACTS = ("4", "5")
SUPPORTED_TEXT = "contract 4 (20.200.001 to 25.200.001) and contract 5 (26.200.001)"


def contract_of_version(version: str) -> str | None:
    """The system contract of an endpoint version, or None when the rule does not know it.

    docs/acumatica-api.md §1.1: 5.30.001 → 1, 6.00.001 → 2, 17/18.200.001 → 3, 20 to 25 → 4,
    26.200.001 → 5. Needed for ``--catalog`` runs, which never download the document.
    """
    if not _VERSION_RE.match(version):
        return None
    major = int(version.split(".", maxsplit=1)[0])
    if 20 <= major <= 25:
        return "4"
    if major == 26:
        return "5"
    return {5: "1", 6: "2", 17: "3", 18: "3"}.get(major)


def check_contract(version: str, contract: str) -> str:
    """``contract`` if the tap speaks it and it agrees with the version rule; else ConfigError."""
    if contract not in SUPPORTED_CONTRACTS:
        msg = (
            f"endpoint version {version} uses contract {contract!r}, which tap-acumatica does "
            f"not speak; it supports {SUPPORTED_TEXT}: set endpoint_version to one of those"
        )
        raise ConfigError(msg)
    expected = contract_of_version(version)
    if expected is not None and expected != contract:
        msg = (
            f"endpoint version {version} should use contract {expected} but its swagger.json "
            f"says info.version {contract!r}; refusing to guess: set endpoint_version to a "
            f"version of {SUPPORTED_TEXT}"
        )
        raise ConfigError(msg)
    return contract


class Endpoint:
    """The endpoint of the run, chosen on first use from the instance's ``GET /entity``."""

    def __init__(self, connection: Connection, name: str, version: str | None) -> None:
        """``version`` None means the highest supported one listed; no network I/O here."""
        self._connection = connection
        self.name = name
        self._configured = version
        self._path: str | None = None
        self._contract: str | None = None
        self._lock = threading.RLock()

    def path(self) -> str:
        """``/entity/{name}/{version}`` (docs/acumatica-api.md §1)."""
        with self._lock:
            if self._path is None:
                version = choose_endpoint_version(
                    self._connection.probe(), self.name, self._configured
                )
                self._path = f"/entity/{self.name}/{version}"
            return self._path

    @property
    def version(self) -> str:
        """The chosen version (chosen on first use)."""
        return self.path().rsplit("/", 1)[-1]

    def contract(self) -> str:
        """The contract of the chosen version: by the version rule, else from its document."""
        with self._lock:
            if self._contract is None:
                version = self.version
                known = contract_of_version(version)
                if known is None:  # never used blind: ask the document
                    raw = self._connection.client.get_bytes(f"{self.path()}/swagger.json")
                    info = decode_document(raw).get("info") or {}
                    known = str(info.get("version", ""))
                self._contract = check_contract(version, known)
            return self._contract

    def accept_document(self, info_version: str) -> str:
        """Check a downloaded document's ``info.version`` (the contract) against the rule.

        A document without ``info.version`` takes the rule's contract, if the rule knows one.
        """
        with self._lock:
            version = self.version
            given = info_version.strip() or contract_of_version(version) or ""
            self._contract = check_contract(version, given)
            return self._contract


def _versions(index: Mapping[str, Any], endpoint_name: str) -> list[str]:
    return sorted(
        {
            str(ep.get("version"))
            for ep in index.get("endpoints") or []
            if isinstance(ep, dict)
            and str(ep.get("name", "")).lower() == endpoint_name.lower()
            and _VERSION_RE.match(str(ep.get("version", "")))
        },
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )


def choose_endpoint_version(
    index: Mapping[str, Any], endpoint_name: str, configured: str | None
) -> str:
    """The configured version, checked against ``GET /entity``, else the highest supported one.

    docs/acumatica-api.md §1: ``GET /entity`` lists every endpoint name and version; §1.1: a
    version whose contract the tap does not speak is skipped (INFO), or refused if configured.
    """
    versions = _versions(index, endpoint_name)
    if configured:
        if configured not in versions:
            have = ", ".join(versions) or "none"
            msg = (
                f"endpoint_version {configured!r} is not available for endpoint "
                f"{endpoint_name!r} on this instance; it lists: {have}"
            )
            raise ConfigError(msg)
        contract = contract_of_version(configured)
        if contract is not None:
            check_contract(configured, contract)
        return configured
    if not versions:
        names = sorted({str(ep.get("name")) for ep in index.get("endpoints") or []})
        msg = (
            f"endpoint {endpoint_name!r} is not listed by GET /entity on this instance; "
            f"available endpoints: {', '.join(names) or 'none'}"
        )
        raise ConfigError(msg)
    usable = [v for v in versions if contract_of_version(v) in SUPPORTED_CONTRACTS]
    if not usable:
        # Versions outside the rule (a custom endpoint's "1.0"): the document names the contract.
        usable = [v for v in versions if contract_of_version(v) is None]
    if not usable:
        msg = (
            f"endpoint {endpoint_name!r} lists only versions tap-acumatica does not speak "
            f"({', '.join(versions)}); it supports {SUPPORTED_TEXT}"
        )
        raise ConfigError(msg)
    skipped = [v for v in versions if v not in usable and _key(v) > _key(usable[-1])]
    if skipped:
        _LOG.info(
            "Endpoint %s: skipping version(s) %s (a contract tap-acumatica does not speak; it "
            "supports %s); reading %s",
            endpoint_name,
            ", ".join(skipped),
            SUPPORTED_TEXT,
            usable[-1],
        )
    return usable[-1]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))
