"""Keyset streams in the engine: pages leave checked and in order, a STATE after each one."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tap_acumatica import sdk
from tap_acumatica.contract.stream import ContractStream
from tap_acumatica.stamps import iso_utc, parse_ms
from tap_acumatica.sync.keyset import KeysetPage
from tests.sync.offline import offline_stream

KEY = "LastModified"
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        KEY: {"type": ["string", "null"], "format": "date-time"},
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
T0 = 1_700_000_000_000  # on a tick (ends in 0)
END = T0 + 100_000


def rec(rid: str, ms: int) -> dict[str, Any]:
    """A record stamped at ``ms``."""
    return {"id": rid, KEY: iso_utc(ms)}


class Harness:
    """An offline stream whose reads, clock and STATE messages the test controls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, keyset: bool = True) -> None:
        self.stream: ContractStream = offline_stream(SCHEMA, replication_key=KEY)
        self.stream.keyset = keyset
        self.pages: list[KeysetPage] = []
        self.asked: list[tuple[int, int]] = []
        self.states: list[dict[str, Any]] = []  # STATE messages written (copies)
        self.now_ms = END + 1000
        s = self.stream
        self.stream.report.probed()  # no time probe: it would need a server
        monkeypatch.setattr(s, "prepare", lambda: None)
        monkeypatch.setattr(s.connection, "sync_end_ms", lambda lag: END)
        monkeypatch.setattr(s, "_server_now_us", lambda: self.now_ms * 1000)
        monkeypatch.setattr(s, "read_pages", self._read)
        monkeypatch.setattr(sdk, "emit_state", self._emit)

    def _read(self, begin: int, end: int) -> Iterator[KeysetPage]:
        self.asked.append((begin, end))
        yield from self.pages

    def _emit(self, stream: Any) -> None:
        self.states.append(copy.deepcopy(self.state))

    @property
    def state(self) -> dict[str, Any]:
        """The stream's state as the engine keeps it."""
        return dict(self.stream.get_context_state(None))

    def run(self) -> list[dict[str, Any]]:
        """Sync the stream once; every record it yields."""
        return list(self.stream.get_records(None))


def bookmark(state: dict[str, Any]) -> int | None:
    """The bookmark of a STATE of the stream, in ms."""
    value = state.get("replication_key_value")
    return parse_ms(value) if isinstance(value, str) else None


@pytest.fixture
def box(monkeypatch: pytest.MonkeyPatch) -> Harness:
    return Harness(monkeypatch)


def test_pages_leave_in_order_with_a_state_after_each(box: Harness) -> None:
    box.pages = [
        KeysetPage([rec("a", T0 + 10), rec("b", T0 + 20)], T0 + 20),
        KeysetPage([rec("c", T0 + 20), rec("d", T0 + 53)], T0 + 53),
        KeysetPage([rec("e", T0 + 90)], END),
    ]
    out = box.run()
    assert [r["id"] for r in out] == ["a", "b", "c", "d", "e"]
    assert box.asked == [(parse_ms("1900-01-01T00:00:00Z"), END)]  # no bookmark, no start_date
    # one STATE per page, then the final one; each covers only what has left
    assert [bookmark(s) for s in box.states] == [T0 + 20, T0 + 53, END, END]
    assert box.stream.report.failures == []


def test_the_final_bookmark_never_moves_back(box: Harness) -> None:
    later = END + 60_000
    box.stream.get_context_state(None).update(
        replication_key=KEY, replication_key_value=iso_utc(later)
    )
    box.pages = [KeysetPage([], END)]
    assert box.run() == []
    assert bookmark(box.states[-1]) == later


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (rec("x", END), "outside the range"),
        (rec("x", parse_ms("1899-12-31T00:00:00Z") or 0), "outside the range"),
        (rec("x", T0 + 5), "earlier than the record before it"),
        ({"id": "x", KEY: None}, "has no LastModified"),
        ({"id": "x", KEY: "n/a"}, "has no LastModified"),
    ],
)
def test_an_inconsistent_page_emits_nothing_and_stops_the_stream(
    box: Harness, bad: dict[str, Any], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    box.pages = [
        KeysetPage([rec("a", T0 + 10), rec("b", T0 + 20)], T0 + 20),
        KeysetPage([rec("c", T0 + 30), bad], T0 + 40),
        KeysetPage([rec("z", T0 + 90)], END),
    ]
    out = box.run()
    assert [r["id"] for r in out] == ["a", "b"]  # nothing of the bad page
    assert [bookmark(s) for s in box.states] == [T0 + 20]  # no STATE past the good page
    assert why in caplog.text
    assert [f.stream for f in box.stream.report.failures] == [box.stream.name]


def test_a_stamp_past_the_server_clock_stops_the_stream(box: Harness) -> None:
    box.now_ms = T0 + 50
    box.pages = [KeysetPage([rec("a", T0 + 10)], T0 + 10), KeysetPage([rec("b", T0 + 5_090)], END)]
    assert [r["id"] for r in box.run()] == ["a"]
    assert [bookmark(s) for s in box.states] == [T0 + 10]


def test_a_page_position_that_moves_back_stops_the_stream(box: Harness) -> None:
    box.pages = [KeysetPage([rec("a", T0 + 50)], T0 + 50), KeysetPage([rec("b", T0 + 60)], T0 + 40)]
    assert [r["id"] for r in box.run()] == ["a"]
    assert [bookmark(s) for s in box.states] == [T0 + 50]


def test_equal_stamps_across_pages_are_consistent(box: Harness) -> None:
    tie = T0 + 33
    box.pages = [
        KeysetPage([rec("a", tie), rec("b", tie)], tie),
        KeysetPage([rec("c", tie), rec("d", tie)], tie),
        KeysetPage([rec("e", tie)], END),
    ]
    assert len(box.run()) == 5
    assert [bookmark(s) for s in box.states] == [tie, tie, END, END]


def test_batch_mode_only_sets_the_bookmark(box: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(box.stream, "get_batch_config", lambda config: object())
    box.pages = [KeysetPage([rec("a", T0 + 10)], T0 + 10), KeysetPage([rec("b", T0 + 60)], END)]
    assert len(box.run()) == 2
    assert box.states == []
    assert bookmark(box.state) == END
