"""Issue 11 (5, 6) without a server: tick-aligned windows, stamps that disagree with windows."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
import requests

from tap_acumatica.contract.stream import ContractStream
from tap_acumatica.errors import (
    EntityUnavailableError,
    StampInconsistencyError,
    TimeSemanticsError,
)
from tap_acumatica.http import messages
from tap_acumatica.stamps import DAY_MS, iso_utc, next_tick, parse_ms, tick_ceil, tick_floor
from tap_acumatica.sync import consistency
from tap_acumatica.sync.progress import Progress
from tap_acumatica.sync.report import RunReport
from tap_acumatica.sync.scheduler import WindowResult
from tap_acumatica.sync.windows import PageStamps, Window, WindowPlanner, recut
from tests.sync.offline import offline_stream

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "LastModified": {"type": ["string", "null"], "format": "date-time"},
    },
}


def _server_tick(ms: int) -> int:
    """What SQL Server keeps of a literal: the nearest 1/300 s tick, shown as ms (api.md §3)."""
    tick = (ms * 3 + 5) // 10
    return (tick * 20 + 3) // 6


# -- ticks (5) --------------------------------------------------------------------------------


def test_tick_boundaries_are_kept_by_the_server() -> None:
    assert [tick_floor(m) for m in range(10, 21)] == [10, 10, 10, 13, 13, 13, 13, 17, 17, 17, 20]
    assert [next_tick(m) for m in (10, 13, 17, 19)] == [13, 17, 20, 20]
    assert tick_ceil(14) == 17
    assert tick_ceil(13) == 13
    for ms in [*range(-50, 50), 1_702_358_208_417, -2_208_988_800_000 + 7]:
        floor = tick_floor(ms)
        assert floor <= ms < next_tick(floor)
        assert _server_tick(floor) == floor  # a bound on a tick is not moved by the server
        assert 3 <= next_tick(floor) - floor <= 4  # one tick: 3.33 ms


@pytest.mark.parametrize("seed", range(5))
def test_planned_and_recut_windows_lie_on_ticks(seed: int) -> None:
    rng = random.Random(seed)
    start = tick_floor(rng.randrange(10**12))
    end = tick_floor(start + rng.randrange(1, 400 * DAY_MS))
    planner = WindowPlanner(page_size=100, initial_width=rng.randrange(1, 10 * DAY_MS))
    window = planner.cut(start, end)
    stamps = sorted(rng.randrange(window.start, window.end) for _ in range(100))
    pieces = [window]
    for hinted, tie in ((False, None), (True, None), (False, stamps[50])):
        page = PageStamps(tie, tuple(stamps))
        pieces += [p.window for p in recut(window, page, planner, hinted=hinted)]
    planner.observe(Window(start, next_tick(start)), 0, full=False)
    pieces.append(planner.cut(start, end))
    for piece in pieces:
        for bound in (piece.start, piece.end):
            assert bound == end or _server_tick(bound) == bound, (piece, bound)
        assert piece.end - piece.start >= 3  # never narrower than one tick


def test_a_tie_gets_a_window_one_tick_wide() -> None:
    tie = 1_702_358_208_417  # the sandbox's burst stamp, 2023-12-12T05:16:48.417Z
    window = Window(tie - 10 * DAY_MS - 3, tie + DAY_MS)
    planner = WindowPlanner(page_size=100, initial_width=window.width)
    pieces = recut(window, PageStamps.of([{"k": iso_utc(tie)}] * 100, "k"), planner, hinted=False)
    assert Window(tie, tie + 3) in [p.window for p in pieces]
    assert not Window(tie, tie + 3).splittable


# -- stamps that disagree with their window (6) -----------------------------------------------


@pytest.fixture
def stream() -> ContractStream:
    return offline_stream(SCHEMA)


def _rec(rid: str, ms: int) -> dict[str, Any]:
    return {"id": rid, "LastModified": iso_utc(ms)}


def _run(
    stream: ContractStream, monkeypatch: pytest.MonkeyPatch, pages: dict[Window, list[Any]]
) -> tuple[list[str], list[int]]:
    """Emit ``pages`` (fixed windows of 100 ms): the ids emitted, then the error; the commits."""
    commits: list[int] = []
    out: list[str] = []
    monkeypatch.setattr(stream, "fetch_window", lambda w: WindowResult(w, pages.get(w, [])))
    monkeypatch.setattr(stream, "_commit", lambda context, end: commits.append(end))
    planner = WindowPlanner(page_size=100, initial_width=100)
    monkeypatch.setattr(planner, "observe", lambda *a, **k: None)  # keep 100 ms windows
    progress = Progress(logging.getLogger("t"), "SalesOrder", start=0, end=300, sent=lambda: 0)
    with pytest.raises(StampInconsistencyError) as info:
        out.extend(r["id"] for r in stream._emit_windows(None, planner, (0, 300), progress))
    out.append(str(info.value))
    return out, commits


@pytest.mark.parametrize("stamp", [200, 250, 99, 5000])
def test_a_record_outside_its_window_stops_the_stream(
    stream: ContractStream, monkeypatch: pytest.MonkeyPatch, stamp: int
) -> None:
    pages = {
        Window(0, 100): [_rec("b", 50), _rec("a", 10)],
        Window(100, 200): [_rec("c", 120), _rec("odd", stamp)],
        Window(200, 300): [_rec("d", 250)],
    }
    out, commits = _run(stream, monkeypatch, pages)
    # Nothing of the inconsistent window leaves, and no bookmark passes the window before it.
    assert out[:-1] == ["a", "b"]
    assert commits == [100]
    assert "record odd has LastModified=" in out[-1]
    assert "outside the window" in out[-1]


def test_a_stamp_later_than_the_server_clock_stops_the_stream(
    stream: ContractStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    future = parse_ms("2999-01-01T00:00:00Z") or 0
    pages = {Window(0, 100): [_rec("a", 10)], Window(100, 200): [_rec("f", future)]}
    out, commits = _run(stream, monkeypatch, pages)
    assert commits == [100]
    assert "later than the server's own clock" in out[-1]


def test_a_record_without_its_change_field_names_entity_and_id(
    stream: ContractStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = {Window(0, 100): [{"id": "nostamp", "LastModified": None}]}
    out, commits = _run(stream, monkeypatch, pages)
    assert commits == []
    assert out[-1].startswith("SalesOrder: record nostamp has no LastModified")


def test_a_record_twice_in_a_window_keeps_the_newer_copy_and_says_so() -> None:
    told: list[str] = []
    newer, older = {**_rec("r", 60), "v": "new"}, {**_rec("r", 20), "v": "old"}
    page = [newer, _rec("a", 10), older]
    out = consistency.checked_window(
        "SalesOrder", "LastModified", Window(0, 100), page, 10**18, log=told.append
    )
    assert [(r["id"], r.get("v")) for r in out] == [("a", None), ("r", "new")]
    assert len(told) == 1
    assert "record r came twice in the window" in told[0]
    assert f"keeping the copy with LastModified={newer['LastModified']}" in told[0]


def test_get_records_skips_the_stream_with_one_warning(
    stream: ContractStream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(context: Any) -> Any:
        del context
        raise EntityUnavailableError(
            "x", entity="SalesOrder", reason="HTTP 403 no rights", fix="grant it"
        )
        yield  # pragma: no cover

    assert stream.report is stream._tap.run_report  # one report per run
    monkeypatch.setattr(stream, "report", RunReport())
    monkeypatch.setattr(stream, "prepare", lambda: None)
    monkeypatch.setattr(stream, "_incremental", broken)
    with caplog.at_level(logging.WARNING):
        assert list(stream.get_records(None)) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "SalesOrder was not read: HTTP 403 no rights; to fix: grant it" in caplog.text
    assert [f.stream for f in stream.report.failures] == ["SalesOrder"]


def test_probe_stops_when_the_offset_is_ignored() -> None:
    sample = _rec("s", 1_702_358_208_417)
    window = consistency.probe_window(1_702_358_208_417)
    assert window == Window(1_702_358_208_417, 1_702_358_208_420)
    check = consistency.check_probe
    check("SalesOrder", "LastModified", sample, window, [sample], page_size=100)
    other = _rec("o", 1_702_358_208_418)  # same tick: a full page of the burst without it
    check("SalesOrder", "LastModified", sample, window, [other] * 2, page_size=2)
    with pytest.raises(TimeSemanticsError, match="ignores the offset"):
        check("SalesOrder", "LastModified", sample, window, [], page_size=100)
    with pytest.raises(TimeSemanticsError, match="did not return it"):
        check("SalesOrder", "LastModified", sample, window, [other], page_size=100)
    stray = _rec("t", 1_702_358_208_417 + 4 * 3_600_000)
    with pytest.raises(TimeSemanticsError, match="outside it"):
        check("SalesOrder", "LastModified", sample, window, [sample, stray], page_size=100)


def test_offset_literal_is_the_same_instant(stream: ContractStream) -> None:
    ms = parse_ms("2024-07-15T07:31:28.402Z") or 0
    assert stream.offset_literal(ms, 300) == "datetimeoffset'2024-07-15T12:31:28.402+05:00'"
    assert stream.offset_literal(ms, -300) == "datetimeoffset'2024-07-15T02:31:28.402-05:00'"


# -- failing entities are classified where the answer is parsed (3) ---------------------------


def _response(status: int, body: bytes, url: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.url = url
    return response


BASE = "https://erp.example.com/AcumaticaERP/entity/Default/24.200.001"


def test_403_and_setup_errors_name_the_entity_and_the_fix() -> None:
    forbidden = _response(
        403,
        b'{"message":"An error has occurred.","exceptionMessage":"You don\'t have enough '
        b'rights on \'Select\'.","exceptionType":"PX.Data.PXNotEnoughRightsException"}',
        f"{BASE}/Employee?$top=1",
    )
    with pytest.raises(EntityUnavailableError) as info:
        messages.check(forbidden, "Employee: GET …")
    assert info.value.entity == "Employee"
    assert "screen" in info.value.fix
    assert "deselect the stream Employee" in info.value.fix
    setup = _response(
        500,
        b'{"message":"An error has occurred.","exceptionMessage":"The required configuration '
        b'data is not entered on the Projects Preferences form.","exceptionType":'
        b'"PX.Data.PXSetupNotEnteredException`1[[PX.Objects.PM.PMSetup, PX.Objects]]"}',
        f"{BASE}/Project?$filter=x",
    )
    with pytest.raises(EntityUnavailableError) as info:
        messages.check(setup, "Project: GET …")
    assert info.value.entity == "Project"
    assert "the Projects Preferences form" in info.value.fix
    # Not entity-specific: stays a plain error.
    assert messages.entity_of("https://erp.example.com/entity") is None
    assert messages.entity_of(f"{BASE}/swagger.json") is None
    assert messages.entity_of(f"{BASE}/Customer/$adHocSchema") == "Customer"
