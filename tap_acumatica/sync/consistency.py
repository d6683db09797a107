"""Do the stamps agree with the filters that returned them? (docs/acumatica-api.md §3, §13)

A window's records must be stamped inside the window, and no later than the server's own clock;
a record without its change field cannot be placed at all. Any of these means the instance
reads the filter differently from how the tap writes it (time zone, precision) or returns data
the bookmark cannot cover, so the stream stops before the window that shows it: nothing from
it is emitted and no STATE moves past the last consistent window. Stamps are compared as
times (epoch microseconds), never as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tap_acumatica.errors import StampInconsistencyError, TimeSemanticsError
from tap_acumatica.stamps import iso_utc, next_tick, parse_micros, tick_floor
from tap_acumatica.sync.windows import Window

#: The server's ``Date`` header has whole seconds; a stamp may lead it by that and a little.
CLOCK_TOLERANCE_SECONDS = 5.0
#: Offsets of the time-semantics probe's literals: the same instants, written far from UTC.
PROBE_OFFSETS_MINUTES = (5 * 60, -5 * 60)


def stamp_us(record: Mapping[str, Any], key: str, stream: str) -> int:
    """The record's change stamp in epoch µs; an error naming the record when it has none.

    A stamp that is missing, null, not text (a number) or not a date-time (``"n/a"``) cannot
    place the record in any window, now or later: the stream stops rather than drop it.
    """
    value = record.get(key)
    micros = parse_micros(value) if isinstance(value, str) else None
    if micros is None:
        got = "none" if value is None else f"{value!r}, not a date-time"
        msg = (
            f"{stream}: record {record.get('id')} has no {key} (got {got}); without its "
            "change stamp it cannot be placed in a window, so the stream stops here rather "
            "than drop it (select the stream FULL_TABLE to read it without one)"
        )
        raise StampInconsistencyError(msg)
    return micros


def checked_window(
    stream: str,
    key: str,
    window: Window,
    records: Iterable[dict[str, Any]],
    server_now_us: int,
    *,
    log: Callable[[str], None] | None = None,
    ident: Callable[[dict[str, Any]], str] | None = None,
) -> list[dict[str, Any]]:
    """Records deduplicated by ``ident`` (the ``id``), sorted by stamp; or the first inconsistency.

    ``log`` hears of every record left out as a duplicate (its id and why).
    """
    lower, upper = window.start * 1000, window.end * 1000
    limit = server_now_us + int(CLOCK_TOLERANCE_SECONDS * 1_000_000)
    batch: dict[str, tuple[int, dict[str, Any]]] = {}
    for record in records:
        micros = stamp_us(record, key, stream)
        stamp = record.get(key)
        if micros > limit:
            msg = (
                f"{stream}: record {record.get('id')} has {key}={stamp}, later than the "
                f"server's own clock ({iso_utc(server_now_us // 1000)}): the instance's stamps "
                "and clock disagree (docs/acumatica-api.md §3, §13); stopping at the last "
                "consistent window"
            )
            raise StampInconsistencyError(msg)
        if not lower <= micros < upper:
            msg = (
                f"{stream}: record {record.get('id')} has {key}={stamp}, outside the window "
                f"{window} that returned it: the instance reads the filter's date-times "
                "differently from the stamps it returns (docs/acumatica-api.md §3, §13); "
                "stopping at the last consistent window"
            )
            raise StampInconsistencyError(msg)
        rid = ident(record) if ident is not None else str(record.get("id"))
        earlier = batch.get(rid)
        if earlier is not None:
            # The same record twice in one answer: it changed while being read; the newer
            # copy is the one to keep, and the user is told which was left out.
            keep, drop = sorted((earlier, (micros, record)), key=lambda pair: pair[0])[::-1]
            if log is not None:
                log(
                    f"{stream}: record {rid} came twice in the window {window}; keeping the "
                    f"copy with {key}={keep[1].get(key)}, not the one with {drop[1].get(key)}"
                )
            batch[rid] = keep
            continue
        batch[rid] = (micros, record)
    return [record for _, record in sorted(batch.values(), key=lambda pair: pair[0])]


def probe_window(stamp_ms: int) -> Window:
    """The one-tick window holding ``stamp_ms``: what the time-semantics probe re-reads."""
    start = tick_floor(stamp_ms)
    return Window(start, next_tick(start))


def probe(
    stream: str,
    key: str,
    sample: Callable[[], Mapping[str, Any] | None],
    read: Callable[[Window, tuple[int, int]], list[dict[str, Any]]],
    *,
    page_size: int,
) -> bool:
    """The time-semantics probe: does the instance honour a ``$filter`` literal's offset?

    One record (``sample``: the dialect's ``fetch_sample``) is re-read through its one-tick
    window written with non-zero offsets, the same instants (``read``: ``fetch_offset_window``).
    An instance that reads the clock time and ignores the offset selects another range and does
    not return it: :func:`check_probe` raises. False when there is no record to probe with.
    """
    record = sample()
    if record is None:
        return False
    window = probe_window(stamp_us(record, key, stream) // 1000)
    rows = read(window, PROBE_OFFSETS_MINUTES)
    check_probe(stream, key, record, window, rows, page_size=page_size)
    return True


def check_probe(
    stream: str,
    key: str,
    sample: Mapping[str, Any],
    window: Window,
    returned: Iterable[Mapping[str, Any]],
    *,
    page_size: int,
) -> None:
    """Raise unless ``returned`` (``window`` read with offset literals) holds ``sample``, and
    only records inside ``window``.

    A full page (a tie burst larger than a page) may not hold ``sample``; being all inside the
    one-tick window is then proof enough: the misread range would be empty.
    """
    rows = list(returned)
    found = len(rows) >= page_size or any(r.get("id") == sample.get("id") for r in rows)
    outside = [r for r in rows if not _inside(r, key, window, stream)]
    if found and not outside:
        return
    what = "did not return it" if not found else f"returned {len(outside)} record(s) outside it"
    msg = (
        f"{stream}: the instance ignores the offset of $filter date-time literals: record "
        f"{sample.get('id')} has {key}={sample.get(key)}, but the window {window} written "
        f"with offsets {'/'.join(_offset_text(m) for m in PROBE_OFFSETS_MINUTES)} {what} "
        "(docs/acumatica-api.md §3, §13). Windows would miss records, so the run stops before "
        "any bookmark; ask the instance's administrator how date-time filters are read"
    )
    raise TimeSemanticsError(msg)


def _inside(record: Mapping[str, Any], key: str, window: Window, stream: str) -> bool:
    return window.start * 1000 <= stamp_us(record, key, stream) < window.end * 1000


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
