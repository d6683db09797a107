"""ContractStream without a server: emission order, commits, query options."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest
from singer_sdk.singerlib import Catalog

from tap_acumatica.contract.stream import ContractStream
from tap_acumatica.stamps import iso_utc
from tap_acumatica.sync.progress import Progress
from tap_acumatica.sync.scheduler import WindowResult
from tap_acumatica.sync.windows import Window, WindowPlanner
from tap_acumatica.tap import TapAcumatica
from tests.sync.offline import offline_stream

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "OrderType": {"type": ["string", "null"]},
        "OrderNbr": {"type": ["string", "null"]},
        "Total": {"type": ["number", "null"]},
        "LastModified": {"type": ["string", "null"], "format": "date-time"},
        "Details": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": ["string", "null"]},
                    "Qty": {"type": ["number", "null"]},
                    "files": {
                        "type": ["array", "null"],
                        "items": {
                            "type": "object",
                            "properties": {"id": {"type": ["string", "null"]}},
                        },
                    },
                },
            },
        },
        "note": {"type": ["string", "null"]},
        "custom": {
            "type": ["object", "null"],
            "properties": {
                "Document": {
                    "type": ["object", "null"],
                    "properties": {"UsrA": {"type": ["string", "null"]}},
                }
            },
        },
    },
}


@pytest.fixture
def stream() -> ContractStream:
    return offline_stream(SCHEMA, natural_keys=("OrderType", "OrderNbr"))


def test_query_options_from_schema_and_selection(stream: ContractStream) -> None:
    assert stream.query_options() == {
        "$select": "OrderType,OrderNbr,Total,LastModified",
        "$expand": "Details,Details/files",
        "$custom": "Document.UsrA",
    }


def test_deselected_fields_are_never_requested(stream: ContractStream) -> None:
    deselect = ("Total", "OrderNbr", "LastModified", "Details", "custom")
    catalog = {
        "streams": [
            {
                "tap_stream_id": "SalesOrder",
                "stream": "SalesOrder",
                "schema": SCHEMA,
                "replication_key": "LastModified",
                "metadata": [
                    {"breadcrumb": [], "metadata": {"selected": True}},
                    *(
                        {"breadcrumb": ["properties", n], "metadata": {"selected": False}}
                        for n in deselect
                    ),
                ],
            }
        ]
    }
    stream.apply_catalog(Catalog.from_dict(catalog))
    # Keys and the change field are always read; deselected data never is.
    assert stream.query_options() == {"$select": "OrderType,OrderNbr,LastModified"}


def _rec(rid: str, ms: int) -> dict[str, Any]:
    return {"id": rid, "LastModified": iso_utc(ms)}


def test_records_leave_sorted_window_by_window(
    stream: ContractStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = {
        Window(0, 100): [_rec("b", 50), _rec("a", 10), _rec("b", 50)],
        Window(100, 200): [_rec("c", 120), _rec("d", 101)],
    }
    commits: list[int] = []
    monkeypatch.setattr(stream, "fetch_window", lambda w: WindowResult(w, pages[w]))
    monkeypatch.setattr(stream, "_commit", lambda context, end: commits.append(end))
    planner = WindowPlanner(page_size=100, initial_width=100)
    progress = Progress(logging.getLogger("t"), "SalesOrder", start=0, end=200, sent=lambda: 0)
    out = list(stream._emit_windows(None, planner, (0, 200), progress))
    assert [r["id"] for r in out] == ["a", "b", "d", "c"]  # deduplicated, sorted per window
    assert commits == [100, 200]


def test_about_markdown_documents_every_setting() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tap_acumatica", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for name, prop in TapAcumatica.config_jsonschema["properties"].items():
        assert prop.get("description"), name
        assert f"| {name} |" in proc.stdout, name
