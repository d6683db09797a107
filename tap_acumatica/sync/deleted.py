"""Deleted records as tombstones: what a stream emits after its records when it has a feed.

Filtering on a change stamp cannot see a record that is gone (docs/acumatica-api.md §10). A
deletion feed (``odata.deletions``: DAC OData's ``px.GetDeletedRecords()``) lists the ids and
deletion times of removed rows, for the tables an administrator tracks on SM207010, kept for
its "Days to Keep Records". Each becomes a record ``{"id", "_sdc_deleted_at", <replication
key>}``: the Singer convention for a hard delete, with the deletion time as the record's last
change, because the SDK's state update reads the replication key of every record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Protocol

from tap_acumatica.errors import DeletionsUntrackedError, StampInconsistencyError
from tap_acumatica.stamps import DAY_MS, iso_utc, parse_ms

#: The stream-state member that says up to when deletions have been emitted.
STATE_KEY = "deletions_until"
DELETED_AT = "_sdc_deleted_at"


class DeletedSource(Protocol):
    """Where a stream's deletions come from (one tracked DAC)."""

    #: The table the deletions are tracked for (e.g. ``SOOrder``), for messages.
    name: str

    def read(self, since_ms: int, until_ms: int) -> Iterator[tuple[str, int]]:
        """(id in lower case, deletion time in epoch ms) of every row deleted in
        ``[since_ms, until_ms)``, in deletion-time order.

        Raises :class:`DeletionsUntrackedError` when the table's deletions are not tracked.
        """
        ...


def tombstone(rid: str, deleted_ms: int, replication_key: str) -> dict[str, Any]:
    """The record that tells a target ``rid`` was deleted at ``deleted_ms``."""
    at = iso_utc(deleted_ms)
    return {"id": rid, DELETED_AT: at, replication_key: at}


def since(state: MutableMapping[str, Any], begin_ms: int) -> tuple[int, bool]:
    """Where this run's deletions start: ``state[STATE_KEY]``, else the records' ``begin_ms``.

    Read before any record leaves (the records' commits move the bookmark). The flag says
    whether an earlier run got that far (a first run has no deletions to have missed).
    """
    known = state.get(STATE_KEY)
    at = parse_ms(known) if isinstance(known, str) else None
    resumed = at is not None or state.get("replication_key_value") is not None
    return (begin_ms if at is None else at), resumed


def tombstones(
    feed: DeletedSource,
    state: MutableMapping[str, Any],
    *,
    stream: str,
    replication_key: str,
    span: tuple[int, int, bool],
    now_ms: int,
    keep_days: float,
    warn: Callable[[str], None],
) -> Iterator[dict[str, Any]]:
    """Tombstones of ``[since, until)`` (``span``: since, until, resumed); then the state moves on.

    ``state[STATE_KEY]`` is set only after the last tombstone has been yielded, so a STATE
    carrying it follows every tombstone it covers. An untracked table: one warning, no
    tombstones, the state unchanged, and the stream goes on.
    """
    begin, until, resumed = span
    if begin >= until:
        return  # an earlier run read further (its clock ran ahead): nothing new
    if resumed and now_ms - begin > keep_days * DAY_MS:
        warn(
            f"{stream}: deletions are read from {iso_utc(begin)}, more than {keep_days:g} days "
            f"ago, but SM207010 keeps deleted records of {feed.name} only for its 'Days to Keep "
            f"Records' (deleted_records_keep_days = {keep_days:g}): deletions before "
            f"{iso_utc(now_ms - int(keep_days * DAY_MS))} may have been missed; a full refresh "
            f"of {stream} reconciles (docs/acumatica-api.md §10)"
        )
    try:
        for rid, deleted in feed.read(begin, until):
            if not begin <= deleted < until:
                msg = (
                    f"{stream}: {feed.name} reports record {rid} deleted at {iso_utc(deleted)}, "
                    f"outside [{iso_utc(begin)}, {iso_utc(until)}) that was asked for "
                    "(docs/acumatica-api.md §3, §13); stopping before its deletions are committed"
                )
                raise StampInconsistencyError(msg)
            yield tombstone(rid, deleted, replication_key)
    except DeletionsUntrackedError as exc:
        warn(
            f"{stream}: deletions are not tracked for {feed.name} ({exc}); add {feed.name} on "
            "Tables to Track Deleted Records (SM207010) to receive them; its records are read "
            "as usual (docs/acumatica-api.md §10)"
        )
        return
    state[STATE_KEY] = iso_utc(until)
