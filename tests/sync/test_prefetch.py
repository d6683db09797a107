"""Issue 15 (6): the next streams' first windows are read while a stream is read.

Several small entities (one window each) behind 200 ms of latency and 4 sessions, read with
``overlap_streams`` off, then on: the same records, the same data requests, STATE in order,
the forbidden entity skipped on its own stream; and, from the sandbox's request log (its
``--verbose`` lines: end time and duration of every request), requests of two streams in
flight at once only with overlap on.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tap_acumatica.contract.endpoint import Endpoint
from tap_acumatica.contract.stream import ContractStream
from tap_acumatica.stamps import DEFAULT_START, parse_ms, tick_floor, to_ms
from tap_acumatica.sync import prefetch
from tap_acumatica.sync.report import RunReport
from tap_acumatica.sync.stream import minus_lookback
from tap_acumatica.tap import TapAcumatica
from tests._taprun import TapRun, run_tap, tap_config
from tests.support import Sandbox, wait_for
from tests.sync.offline import CONFIG

ENTITIES = ["Account", "Contact", "Customer", "Employee", "NonStockItem", "Vendor"]
READABLE = [e for e in ENTITIES if e != "Employee"]  # Employee: 403 (the sandbox's default)
SANDBOX = ("--seed", "5", "--records", "60", "--latency-ms", "200", "--api-seats", "8")
#: Two requests overlap when both were on the server this long at once (latency is 200 ms).
OVERLAP_S = 0.05
_LINE = re.compile(r"^(\S+ \S+) sandbox INFO GET (/entity/\S+) (\d+) ([\d.]+)ms$")


@dataclass
class Span:
    """One data request as the sandbox logged it."""

    entity: str
    start: float
    end: float
    status: int


@dataclass
class Run:
    """One tap run and what the sandbox saw of it."""

    tap: TapRun
    spans: list[Span]

    def data_requests(self) -> Counter[str]:
        return Counter(s.entity for s in self.spans)

    def overlaps(self) -> list[tuple[Span, Span]]:
        """Pairs of requests of two different streams on the server at once."""
        return [
            (a, b)
            for a, b in itertools.combinations(self.spans, 2)
            if a.entity != b.entity and min(a.end, b.end) - max(a.start, b.start) > OVERLAP_S
        ]


def _spans(lines: list[str], version_path: str) -> list[Span]:
    spans = []
    for line in lines:
        m = _LINE.match(line.strip())
        if m is None or not m.group(2).startswith(version_path):
            continue
        entity = m.group(2).rsplit("/", 1)[-1]
        if entity not in ENTITIES:
            continue  # swagger.json, $adHocSchema
        at = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone()  # local
        end = at.timestamp()
        spans.append(Span(entity, end - float(m.group(4)) / 1000, end, int(m.group(3))))
    return spans


def _run(sbx: Sandbox, *, overlap: bool, state: dict[str, Any] | None = None) -> Run:
    config = tap_config(
        sbx, entities=ENTITIES, max_concurrent_requests=4, overlap_streams=overlap, page_size=500
    )
    first = len(sbx.stderr_lines)
    tap = run_tap(config, state=state)
    # The stats request is logged after every request of the run: once its line is read, so
    # are theirs.
    sbx.stats()
    assert wait_for(lambda: any("/_sandbox/stats" in x for x in sbx.stderr_lines[first:]))
    lines = sbx.stderr_lines[first:]
    version = next(m.group(1) for x in lines if (m := re.search(r"(/entity/Default/[^/]+/)", x)))
    return Run(tap, _spans(lines, version))


@pytest.fixture(scope="module")
def runs() -> Iterator[tuple[Sandbox, Run, Run]]:
    """A backfill with overlap off, then the same with overlap on (same sandbox, no writers)."""
    sbx = Sandbox(*SANDBOX, "--verbose")
    try:
        yield sbx, _run(sbx, overlap=False), _run(sbx, overlap=True)
    finally:
        sbx.stop()


def _warnings(run: TapRun, text: str) -> list[str]:
    return [x for x in run.stderr.splitlines() if "WARNING" in x and text in x]


def test_every_record_arrives_as_without_overlap(runs: tuple[Sandbox, Run, Run]) -> None:
    sbx, off, on = runs
    for entity in READABLE:
        truth = sorted(r["id"] for r in sbx.ground_truth(entity)["live"])
        for run in (off, on):
            assert sorted(r["id"] for r in run.tap.records[entity]) == truth, entity
        as_text = [sorted(json.dumps(r, sort_keys=True) for r in run.tap.records[entity])
                   for run in (off, on)]  # fmt: skip
        assert as_text[0] == as_text[1], entity
    assert "was not used" not in on.tap.stderr  # every first window read ahead was used


def test_the_same_data_requests(runs: tuple[Sandbox, Run, Run]) -> None:
    _, off, on = runs
    assert on.data_requests() == off.data_requests()
    assert set(on.data_requests()) == set(ENTITIES)


def test_streams_overlap_only_with_overlap_on(runs: tuple[Sandbox, Run, Run]) -> None:
    _, off, on = runs
    assert off.overlaps() == []
    assert on.overlaps(), [(s.entity, s.start, s.end) for s in on.spans]


def test_state_in_order_and_after_each_streams_records(runs: tuple[Sandbox, Run, Run]) -> None:
    _, off, on = runs
    counts = []
    for run in (off, on):
        messages = run.tap.messages
        streams = [m["stream"] for m in messages if m["type"] == "RECORD"]
        assert streams == sorted(streams)  # stream after stream, in the SDK's (name) order
        changes: Counter[str] = Counter()
        for entity in READABLE:
            marks = [
                (i, m["value"]["bookmarks"].get(entity, {}).get("replication_key_value"))
                for i, m in enumerate(messages)
                if m["type"] == "STATE"
            ]
            values = [parse_ms(v) or 0 for _, v in marks if v]
            assert values == sorted(values), entity  # never moves back
            changes[entity] = len(set(values))
            final = next(i for i, v in marks if v and parse_ms(v) == values[-1])
            last_record = max(
                i for i, m in enumerate(messages) if m["type"] == "RECORD" and m["stream"] == entity
            )
            assert last_record < final, entity
        counts.append(changes)
    assert counts[0] == counts[1]


def test_a_forbidden_stream_is_skipped_on_its_own_stream(runs: tuple[Sandbox, Run, Run]) -> None:
    _, off, on = runs
    for run in (off, on):
        assert run.tap.returncode == 1
        assert not run.tap.records.get("Employee")
        (warning,) = _warnings(run.tap, "Employee was not read: HTTP 403")
        assert "tap-acumatica.Employee" in warning  # the stream's own logger
        lines = run.tap.stderr.splitlines()
        began = lines.index(next(x for x in lines if "Beginning sync of 'Employee'" in x))
        after = lines.index(next(x for x in lines if "Beginning sync of 'NonStockItem'" in x))
        assert began < lines.index(warning) < after
        finals = [x for x in lines if x.startswith("tap-acumatica: stream ")]
        assert len(finals) == 1
        assert "Employee" in finals[0]
        assert "Traceback" not in run.tap.stderr
    # Its one request, read ahead or not: the 403 answer, not repeated.
    for run in (off, on):
        assert [s.status for s in run.spans if s.entity == "Employee"] == [403]


def test_a_run_from_state_reads_its_first_windows_ahead(runs: tuple[Sandbox, Run, Run]) -> None:
    """Resumed streams start at their bookmarks: every window read ahead is the stream's."""
    sbx, off, _ = runs
    state = off.tap.last_state
    assert state is not None
    again = [_run(sbx, overlap=overlap, state=state) for overlap in (False, True)]
    for run in again:
        assert sum(len(v) for v in run.tap.records.values()) == 0
    assert again[1].data_requests() == again[0].data_requests()
    assert again[1].overlaps()
    assert "was not used" not in again[1].tap.stderr


def test_nothing_is_read_ahead_before_the_time_probe_passes() -> None:
    sbx = Sandbox(*SANDBOX, "--verbose", "--time-semantics", "local")
    try:
        run = _run(sbx, overlap=True)
    finally:
        sbx.stop()
    assert run.tap.returncode == 1
    assert "ignores the offset of $filter date-time literals" in run.tap.stderr
    assert run.tap.records == {}
    assert {s.entity for s in run.spans} == {"Account"}  # the probe's stream only


# -- where a stream will start: the same as the stream computes it ---------------------------

OFFLINE_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "LastModified": {"type": ["string", "null"], "format": "date-time"},
    },
}


def _offline(config: dict[str, Any], state: dict[str, Any] | None) -> ContractStream:
    tap = TapAcumatica(config={**CONFIG, **config}, setup_mapper=False)
    tap.__dict__["run_report"] = RunReport()
    stream = ContractStream(
        tap,
        connection=tap.connection,
        settings=tap.settings,
        endpoint=Endpoint(tap.connection, "Default", None),
        name="SalesOrder",
        schema=OFFLINE_SCHEMA,
        replication_key="LastModified",
    )
    if state is not None:
        stream.get_context_state(None).update(state)
    return stream


BOOKMARK = {
    "replication_key": "LastModified",
    "replication_key_value": "2024-03-05T10:20:30.1234+00:00",
}


@pytest.mark.parametrize(
    ("config", "state"),
    [
        ({}, None),
        ({"start_date": "2024-01-01T00:00:00Z"}, None),
        ({}, BOOKMARK),
        ({"start_date": "2024-01-01T00:00:00+02:00"}, BOOKMARK),
        ({"start_date": "2025-01-01T00:00:00.0095Z"}, BOOKMARK),
        ({"lookback_minutes": 90, "start_date": "2024-01-01T00:00:00Z"}, BOOKMARK),
        ({"lookback_minutes": 5_256_000}, {**BOOKMARK, "replication_key_value": "1905-06-01"}),
    ],
)
def test_the_first_window_starts_where_the_stream_starts(
    config: dict[str, Any], state: dict[str, Any] | None
) -> None:
    stream = _offline(config, state)
    guess = prefetch.first_begin(stream)
    # What Stream.sync does before get_records, then WindowedStream._incremental's begin.
    stream._write_starting_replication_value(None)
    start = stream.get_starting_timestamp(None) or DEFAULT_START
    begin = tick_floor(to_ms(minus_lookback(start, stream.settings.lookback_minutes)))
    assert guess == begin


@pytest.mark.parametrize(
    ("config", "state"),
    [
        ({}, {**BOOKMARK, "replication_key": "LastModifiedDateTime"}),  # renamed: not certain
        ({"expand_lookback_days": 2}, BOOKMARK),  # the dialect moves it back
    ],
)
def test_no_first_window_where_the_start_is_not_certain(
    config: dict[str, Any], state: dict[str, Any]
) -> None:
    assert prefetch.first_begin(_offline(config, state)) is None
