"""A ContractStream with no server behind it, for tests of emission, commits and query options."""

from __future__ import annotations

from typing import Any

from tap_acumatica.contract.endpoint import Endpoint
from tap_acumatica.contract.stream import ContractStream
from tap_acumatica.sync.report import RunReport
from tap_acumatica.tap import TapAcumatica

#: Nothing listens on port 9 (discard): a test that reaches the network fails loudly.
CONFIG = {
    "base_url": "http://127.0.0.1:9",
    "auth_method": "cookie",
    "username": "u",
    "password": "p",
}


def offline_stream(
    schema: dict[str, Any],
    *,
    name: str = "SalesOrder",
    replication_key: str | None = "LastModified",
    natural_keys: tuple[str, ...] = (),
) -> ContractStream:
    """A contract-API stream of an in-process tap; its requests go nowhere."""
    tap = TapAcumatica(config=dict(CONFIG), setup_mapper=False)
    tap.__dict__["run_report"] = RunReport()  # its own, not an earlier CLI run's (class-wide)
    return ContractStream(
        tap,
        connection=tap.connection,
        settings=tap.settings,
        endpoint=Endpoint(tap.connection, "Default", None),
        name=name,
        schema=schema,
        replication_key=replication_key,
        natural_keys=natural_keys,
    )
