"""Session-scoped ids (issue 11 item 8): checked on a FULL_TABLE stream's first sync only.

Sandboxes with ``--unstable-ids E`` (default: Subaccount, the sandbox's one entity without a
change field) give entity E's records an id per server session. The natural-key case also reads
Customer (natural key CustomerID) as FULL_TABLE through the catalog, as a user may choose to.
"""

from __future__ import annotations

from typing import Any

from tap_acumatica.contract.ids import unstable
from tests._taprun import TapRun, discover, run_tap, select_fields, tap_config
from tests.support import Sandbox

WARNING = "record ids change between Acumatica sessions"


def _full_table(catalog: dict[str, Any], stream: str) -> dict[str, Any]:
    """Make ``stream`` FULL_TABLE (no replication key), as a user's catalog may."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] != stream:
            continue
        entry["replication_key"] = None
        entry["replication_method"] = "FULL_TABLE"
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"].pop("replication-key", None)
                meta["metadata"]["forced-replication-method"] = "FULL_TABLE"
    return catalog


def _schema(run: TapRun, stream: str) -> dict[str, Any]:
    schemas = [m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == stream]
    assert len(schemas) == 1
    return schemas[0]


def _list_reads(sbx: Sandbox, entity: str) -> int:
    """List GETs of ``entity`` without ``$skip`` so far: first pages (and the check's reads)."""
    return sum(
        1
        for q in sbx.stats()["queries"]
        if q["path"].endswith(f"/{entity}") and not (q.get("params") or {}).get("$skip")
    )


def _warnings(run: TapRun, stream: str) -> list[str]:
    return [line for line in run.stderr.splitlines() if WARNING in line and stream in line]


def test_unstable_ids_key_by_natural_key_once(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--seed", "5", "--records", "120", "--unstable-ids", "Customer")
    config = tap_config(sbx, entities=["Customer"], max_concurrent_requests=2, page_size=100)
    catalog = _full_table(discover(config), "Customer")
    before = _list_reads(sbx, "Customer")
    first = run_tap(config, catalog=catalog)
    assert first.returncode == 0, first.stderr[-3000:]
    checked = _list_reads(sbx, "Customer") - before

    schema = _schema(first, "Customer")
    assert schema["key_properties"] == ["CustomerID"]
    assert "session" in schema["schema"]["properties"]["id"]["description"]
    assert len(_warnings(first, "Customer")) == 1
    records = first.records["Customer"]
    truth = sbx.ground_truth("Customer")["live"]
    assert len(records) == len(truth)  # complete, each record once
    assert len({r["CustomerID"] for r in records}) == len(truth)
    assert all(r["id"] for r in records)  # id stays, session-scoped
    assert not {r["id"] for r in records} & {t["id"] for t in truth}
    state = first.last_state
    assert state is not None
    assert state["bookmarks"]["Customer"]["ids_unstable"] is True

    mark = _list_reads(sbx, "Customer")
    second = run_tap(config, catalog=catalog, state=state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _schema(second, "Customer")["key_properties"] == ["CustomerID"]
    assert len(_warnings(second, "Customer")) == 1
    assert len(second.records["Customer"]) == len(truth)
    # No check this time: two first-page reads fewer than the first run.
    assert _list_reads(sbx, "Customer") - mark == checked - 2
    assert second.last_state is not None
    assert second.last_state["bookmarks"]["Customer"]["ids_unstable"] is True


def test_unstable_ids_with_the_natural_key_deselected_stay_keyed_by_id(
    sandbox_factory: Any,
) -> None:
    sbx = sandbox_factory("--seed", "5", "--records", "120", "--unstable-ids", "Subaccount")
    config = tap_config(sbx, entities=["Subaccount"], max_concurrent_requests=2)
    catalog = discover(config)
    props = next(s for s in catalog["streams"] if s["tap_stream_id"] == "Subaccount")["schema"]
    fields = set(props["properties"]) - {"SubaccountCD"}
    run = run_tap(config, catalog=select_fields(catalog, "Subaccount", fields))
    assert run.returncode == 0, run.stderr[-3000:]
    assert _schema(run, "Subaccount")["key_properties"] == ["id"]
    warnings = _warnings(run, "Subaccount")
    assert len(warnings) == 1
    assert "select SubaccountCD to key the stream" in warnings[0]
    assert len(run.records["Subaccount"]) == len(sbx.ground_truth("Subaccount")["live"])
    assert run.last_state is not None
    assert run.last_state["bookmarks"]["Subaccount"]["ids_unstable"] is True


def test_stable_ids_keep_id_and_record_the_verdict(sandbox_factory: Any) -> None:
    sbx = sandbox_factory("--unstable-ids", "")  # the variant with a NoteID on every record
    config = tap_config(sbx, entities=["Customer", "Subaccount"], max_concurrent_requests=2)
    catalog = _full_table(discover(config), "Customer")
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert WARNING not in run.stderr
    state = run.last_state
    assert state is not None
    for stream in ("Customer", "Subaccount"):
        assert _schema(run, stream)["key_properties"] == ["id"]
        assert state["bookmarks"][stream]["ids_unstable"] is False


def test_one_session_keys_by_the_natural_key_as_a_precaution(sandbox_factory: Any) -> None:
    """One session cannot compare ids: the default sandbox's Subaccount then lands once per key."""
    sbx = sandbox_factory("--seed", "5", "--records", "60")
    config = tap_config(sbx, entities=["Subaccount"], max_concurrent_requests=1)
    state = None
    ids: list[set[str]] = []
    for _ in range(2):
        run = run_tap(config, state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        assert WARNING not in run.stderr  # not claimed as seen
        (line,) = [x for x in run.stderr.splitlines() if "could not be checked" in x]
        assert "keyed by its natural key SubaccountCD" in line
        assert _schema(run, "Subaccount")["key_properties"] == ["SubaccountCD"]
        state = run.last_state
        assert state is not None
        assert state["bookmarks"]["Subaccount"]["ids_unstable"] == "unverified"
        ids.append({r["id"] for r in run.records["Subaccount"]})
    truth = sbx.ground_truth("Subaccount")["live"]
    assert len({r["SubaccountCD"] for r in run.records["Subaccount"]}) == len(truth)
    # the ids did change between the two runs' sessions: keyed by id, every row would double
    assert ids[0].isdisjoint(ids[1])
    assert _list_reads(sbx, "Subaccount") == 2  # no check read: one list GET per run


def test_verdict_compares_ids_by_natural_key() -> None:
    a = [{"id": "1", "K": "x"}, {"id": "2", "K": "y"}]
    assert unstable(a, [{"id": "1", "K": "x"}, {"id": "2", "K": "y"}], ("K",)) is False
    assert unstable(a, [{"id": "8", "K": "x"}, {"id": "9", "K": "y"}], ("K",)) is True
    assert unstable(a, [{"id": "8", "K": "z"}], ("K",)) is None  # nothing in common
    assert unstable(a, [{"id": "8"}, {"id": "9"}], ()) is True  # no shared id at all
    assert unstable(a, [{"id": "2"}], ()) is False
    assert unstable([], a, ()) is None
