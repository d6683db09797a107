"""Issue 12 (8, 9): list answers the tap cannot use end in one clear line, never a KeyError.

Each case runs the real CLI against a sandbox whose list GETs answer a scripted JSON (faults
``answers``): a page captured on a real instance with a ``$select`` that left out the change
field, arrays of numbers or strings, records without ``id``, numeric and ``"n/a"`` stamps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests._taprun import TapRun, discover, run_tap, tap_config
from tests.support import EXAMPLES, Sandbox

#: GET SalesOrder?$top=5&$skip=5&$select=CustomerID,LocationID,OrderNbr,OrderType (22.200.001).
SELECTED_PAGE = "rest-salesorder-get-retrieve-list-records-batches-22.200.001.json"
STAMP = "2024-01-31T10:00:00.25-05:00"


@pytest.fixture(scope="module")
def box() -> Any:
    """One private sandbox; each test scripts its answers."""
    sbx = Sandbox("--seed", "5", "--records", "40", "--burst-size", "5")
    yield sbx
    sbx.stop()


def _answer(box: Sandbox, entity: str, answer: Any) -> None:
    box.admin("POST", "faults", {"answers": {entity: answer}})


def _run(box: Sandbox, entity: str, **config: Any) -> TapRun:
    base = tap_config(box, entities=[entity], endpoint_version="24.200.001", max_tries=2)
    return run_tap({**base, **config})


def _clean(run: TapRun) -> list[str]:
    """The ``tap-acumatica:`` lines, after checking that nothing else went wrong."""
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "KeyError" not in run.stderr
    assert "unexpected error" not in run.stderr
    return [line for line in run.stderr.splitlines() if line.startswith("tap-acumatica: ")]


def _bookmarks(run: TapRun) -> list[Any]:
    """Every SalesOrder bookmark value any STATE carried."""
    marks = [(s.get("bookmarks") or {}).get("SalesOrder") or {} for s in run.states]
    return [m["replication_key_value"] for m in marks if m.get("replication_key_value")]


def _page() -> list[dict[str, Any]]:
    if not (EXAMPLES / SELECTED_PAGE).is_file():
        pytest.skip("../shared/acumatica/examples is not available")
    page = json.loads((EXAMPLES / SELECTED_PAGE).read_text(encoding="utf-8"))
    assert page
    assert all("LastModified" not in r for r in page)
    return list(page)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([1, 2, 3], "answered a JSON array of numbers (e.g. 1), not of records"),
        (["SO000001", "SO000002"], "answered a JSON array of strings (e.g. 'SO000001')"),
        ([{"id": "x", "Status": {"value": "Open"}}, 7], "array of numbers"),
        (
            [{"OrderNbr": {"value": "SO000001"}, "LastModified": {"value": STAMP}}],
            "answered a record without an id (record 1 of the page, id=None; ",
        ),
        ({"value": []}, "returned dict, not a JSON array"),
    ],
)
def test_an_unusable_answer_is_one_line(box: Sandbox, answer: Any, expected: str) -> None:
    _answer(box, "SalesOrder", answer)
    run = _run(box, "SalesOrder")
    lines = _clean(run)
    assert run.returncode == 1
    assert len(lines) == 1, run.stderr[-3000:]
    assert lines[0].startswith("tap-acumatica: SalesOrder: GET "), lines
    assert expected in lines[0]
    if "without an id" in expected:
        assert "OrderNbr='SO000001'" in lines[0]  # enough to find the record
    assert lines[0] == run.stderr.strip().splitlines()[-1]
    assert not run.records


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (1706713200, "has no LastModified (got 1706713200, not a date-time)"),
        ("n/a", "has no LastModified (got 'n/a', not a date-time)"),
        (None, "has no LastModified (got none)"),
    ],
)
def test_a_stamp_that_is_not_a_date_time_names_the_record(
    box: Sandbox, stamp: Any, expected: str
) -> None:
    rid = "6a1f3e52-0000-4000-8000-00000000000a"
    record = {"id": rid, "OrderNbr": {"value": "SO1"}, "LastModified": {"value": stamp}}
    _answer(box, "SalesOrder", [record])
    run = _run(box, "SalesOrder")
    lines = _clean(run)
    assert run.returncode == 1
    assert len(lines) == 1, run.stderr[-3000:]
    assert f"SalesOrder: record {rid} {expected}" in lines[0]
    assert not run.records
    assert not _bookmarks(run)


@pytest.mark.parametrize("batch", [False, True], ids=["RECORD", "BATCH"])
def test_a_real_page_without_its_change_field_stops_the_stream_in_one_line(
    box: Sandbox, tmp_path: Path, batch: bool
) -> None:
    page = _page()
    _answer(box, "SalesOrder", page)
    extra: dict[str, Any] = {}
    if batch:
        extra["batch_config"] = {
            "encoding": {"format": "jsonl"},
            "storage": {"root": tmp_path.as_uri(), "prefix": "b-"},
        }
    run = _run(box, "SalesOrder", **extra)
    lines = _clean(run)
    assert run.returncode == 1
    assert len(lines) == 1, run.stderr[-3000:]
    assert f"SalesOrder: record {page[0]['id']} has no LastModified (got none)" in lines[0]
    assert "select the stream FULL_TABLE" in lines[0]
    assert not run.records
    assert not _bookmarks(run)
    assert not list(tmp_path.glob("b-*"))  # nothing of the page left in a batch file


def test_full_table_reads_a_page_without_its_change_field(box: Sandbox) -> None:
    """The documented way on: the stream read FULL_TABLE needs no change field."""
    page = _page()
    config = tap_config(box, entities=["SalesOrder"], endpoint_version="24.200.001")
    catalog = discover(config)
    for stream in catalog["streams"]:
        stream.pop("replication_key", None)
        stream["replication_method"] = "FULL_TABLE"
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"].pop("replication-key", None)
                entry["metadata"]["forced-replication-method"] = "FULL_TABLE"
                entry["metadata"]["selected"] = True
    _answer(box, "SalesOrder", page)
    run = run_tap({**config, "max_tries": 2}, catalog=catalog)
    _clean(run)
    assert run.returncode == 0, run.stderr[-3000:]
    assert [r["id"] for r in run.records["SalesOrder"]] == [r["id"] for r in page]
    assert run.records["SalesOrder"][0]["OrderNbr"] == page[0]["OrderNbr"]["value"]
    assert "LastModified" not in run.records["SalesOrder"][0]
