"""Reference (b): a minimal singer-sdk tap for one Acumatica entity, with SDK defaults.

What a first singer-sdk tap for Acumatica looks like when it follows the cookiecutter: a
``RESTStream`` with an ``OffsetPaginator`` over ``$top/$skip``, the default JSONPath record
extraction (``response.json()``), the default writer (simplejson, flush per message) and the
default type conformance (RECURSIVE). Only what the API needs is added: a cookie login, the
``{"value": x}`` unwrap in ``post_process`` and the logout. No incremental state, no retries
beyond the SDK's, no concurrency.

    python -m benchmarks.sdktap --config c.json

Config: base_url, username, password, tenant (the tap's cookie settings), plus ``entity``,
``schema_file`` (the stream's JSON schema, e.g. from ``tap-acumatica --discover``),
``select``/``expand`` (as tap-acumatica sends them), ``page_size`` and ``max_pages``
(0 = sign in and out only, for the fixed-cost measurement).
"""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import Any

import requests
from singer_sdk import RESTStream, Tap
from singer_sdk.pagination import OffsetPaginator

from benchmarks.passthrough import unwrap

VERSION = "24.200.001"


class EntityStream(RESTStream[int]):
    """One entity read with ``$top/$skip`` pages."""

    @property
    def url_base(self) -> str:
        """The endpoint URL."""
        return f"{self.config['base_url'].rstrip('/')}/entity/Default/{VERSION}"

    @property
    def path(self) -> str:  # type: ignore[override]
        """The entity list."""
        return f"/{self.name}"

    @cached_property
    def requests_session(self) -> requests.Session:
        """A session signed in with ``/entity/auth/login`` (its cookies do the rest)."""
        session = requests.Session()
        body = {
            "name": self.config["username"],
            "password": self.config["password"],
            "tenant": self.config.get("tenant"),
        }
        session.post(
            f"{self.config['base_url'].rstrip('/')}/entity/auth/login", json=body, timeout=60
        ).raise_for_status()
        return session

    def get_new_paginator(self) -> OffsetPaginator:
        """``$skip`` advances by the page size."""
        return OffsetPaginator(start_value=0, page_size=int(self.config.get("page_size", 1000)))

    def get_url_params(self, context: Any, next_page_token: int | None) -> dict[str, Any]:
        """``$top``, ``$skip``, ``$select`` and ``$expand``."""
        params: dict[str, Any] = {"$top": self.config.get("page_size", 1000)}
        if next_page_token:
            params["$skip"] = next_page_token
        if self.config.get("select"):
            params["$select"] = self.config["select"]
        if self.config.get("expand"):
            params["$expand"] = self.config["expand"]
        return params

    def get_records(self, context: Any) -> Any:
        """Every record, or none with ``max_pages`` 0."""
        if int(self.config.get("max_pages", -1)) == 0:
            return
        yield from super().get_records(context)

    def post_process(self, row: dict, context: Any = None) -> dict | None:
        """Unwrap ``{"value": x}``."""
        return unwrap(row)


class ReferenceTap(Tap):
    """tap-reference: singer-sdk defaults."""

    name = "tap-reference"
    config_jsonschema = {"type": "object", "properties": {}}

    def discover_streams(self) -> list[EntityStream]:
        """The one configured entity."""
        with open(self.config["schema_file"], encoding="utf-8") as fh:
            schema = json.load(fh)
        return [EntityStream(self, name=self.config["entity"], schema=schema)]

    def sync_all(self) -> None:
        """Sync, then sign out (the API seat)."""
        try:
            super().sync_all()
        finally:
            for stream in self.streams.values():
                if "requests_session" in stream.__dict__:
                    stream.requests_session.post(
                        f"{self.config['base_url'].rstrip('/')}/entity/auth/logout", timeout=60
                    )


if __name__ == "__main__":
    sys.exit(ReferenceTap.cli())
