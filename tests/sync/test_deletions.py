"""Deletion feeds in the engine: tombstones after the records, ``deletions_until``, warnings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tap_acumatica.errors import DeletionsUntrackedError
from tap_acumatica.stamps import DAY_MS, iso_utc, parse_ms
from tap_acumatica.sync.keyset import KeysetPage
from tests.sync.test_keyset import END, KEY, T0, Harness, bookmark, rec


class Feed:
    """A deletion feed with fixed deletions; remembers what it was asked."""

    name = "SOOrder"

    def __init__(self, deleted: list[tuple[str, int]], *, tracked: bool = True) -> None:
        self.deleted = deleted
        self.tracked = tracked
        self.asked: list[tuple[int, int]] = []

    def read(self, since_ms: int, until_ms: int) -> Iterator[tuple[str, int]]:
        self.asked.append((since_ms, until_ms))
        if not self.tracked:
            msg = "GET …/SOOrder/px.GetDeletedRecords() answered 404"
            raise DeletionsUntrackedError(msg)
        yield from ((r, ms) for r, ms in self.deleted if since_ms <= ms < until_ms)


@pytest.fixture(params=[True, False], ids=["keyset", "windows"])
def box(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """Both kinds of stream: a keyset (DAC) one and a windowed (REST) one."""
    harness = Harness(monkeypatch, keyset=request.param)
    if not request.param:  # the windowed path, its windows replaced by the same pages

        def windows(
            context: object, planner: object, span: object, progress: object
        ) -> Iterator[dict[str, Any]]:
            for page in harness.pages:
                yield from page.records

        monkeypatch.setattr(harness.stream, "_emit_windows", windows)
    return harness


def test_tombstones_follow_the_records_and_move_deletions_until(box: Harness) -> None:
    feed = Feed([("d1", T0 + 5), ("d2", T0 + 70), ("late", END + 1)])
    box.stream.deletions = feed
    box.pages = [KeysetPage([rec("a", T0 + 10), rec("b", T0 + 60)], END)]
    out = box.run()
    assert [r["id"] for r in out] == ["a", "b", "d1", "d2"]
    assert out[2] == {"id": "d1", "_sdc_deleted_at": iso_utc(T0 + 5), KEY: iso_utc(T0 + 5)}
    assert feed.asked == [(parse_ms("1900-01-01T00:00:00Z"), END)]
    final = box.states[-1]
    assert final["deletions_until"] == iso_utc(END)
    assert bookmark(final) == END  # the tombstones' stamps do not pull the bookmark back
    # the STATE before the tombstones does not claim them
    assert all("deletions_until" not in s for s in box.states[:-1])


def test_the_next_run_reads_deletions_from_deletions_until(box: Harness) -> None:
    since = T0 + 50
    box.stream.get_context_state(None).update(
        replication_key=KEY,
        replication_key_value=iso_utc(T0),
        deletions_until=iso_utc(since),
    )
    feed = Feed([("old", T0 + 10), ("new", T0 + 60)])
    box.stream.deletions = feed
    box.pages = [KeysetPage([], END)]
    assert [r["id"] for r in box.run()] == ["new"]
    assert feed.asked == [(since, END)]


def test_deletions_older_than_the_retention_are_warned_about(
    box: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    old = END - 11 * DAY_MS
    box.stream.get_context_state(None).update(
        replication_key=KEY, replication_key_value=iso_utc(old), deletions_until=iso_utc(old)
    )
    box.stream.deletions = Feed([])
    box.pages = [KeysetPage([], END)]
    with caplog.at_level(logging.WARNING):
        box.run()
    warned = [r for r in caplog.records if "may have been missed" in r.getMessage()]
    assert len(warned) == 1
    assert "full refresh" in warned[0].getMessage()
    assert box.states[-1]["deletions_until"] == iso_utc(END)


def test_a_recent_position_or_a_first_run_is_not_warned_about(
    box: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    box.stream.deletions = Feed([])
    box.pages = [KeysetPage([], END)]
    with caplog.at_level(logging.WARNING):
        box.run()  # first run: reads from 1900, but nothing could have been missed
    assert "may have been missed" not in caplog.text


def test_untracked_deletions_warn_once_and_the_stream_goes_on(
    box: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    box.stream.deletions = Feed([("d1", T0 + 5)], tracked=False)
    box.pages = [KeysetPage([rec("a", T0 + 10)], END)]
    with caplog.at_level(logging.WARNING):
        out = box.run()
    assert [r["id"] for r in out] == ["a"]
    warned = [r for r in caplog.records if "SM207010" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING
    assert box.stream.report.failures == []
    assert "deletions_until" not in box.states[-1]
    assert bookmark(box.states[-1]) == END


def test_batch_mode_only_sets_deletions_until(
    box: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(box.stream, "get_batch_config", lambda config: object())
    box.stream.deletions = Feed([("d1", T0 + 5)])
    box.pages = [KeysetPage([rec("a", T0 + 10)], END)]
    assert [r["id"] for r in box.run()] == ["a", "d1"]
    assert box.states == []
    assert box.state["deletions_until"] == iso_utc(END)


def test_a_deletion_outside_the_range_stops_before_deletions_until_moves(box: Harness) -> None:
    class Liar(Feed):
        def read(self, since_ms: int, until_ms: int) -> Iterator[tuple[str, int]]:
            yield ("x", until_ms + 10)

    box.stream.deletions = Liar([])
    box.pages = [KeysetPage([rec("a", T0 + 10)], END)]
    assert [r["id"] for r in box.run()] == ["a"]
    assert [f.stream for f in box.stream.report.failures] == [box.stream.name]
    assert all("deletions_until" not in s for s in box.states)
