"""Session-scoped record ids: detect them once, then key the stream by its natural key.

A top-level record's ``id`` is its NoteID, stable across sessions; records without one get an
id that holds within one server session only (docs/acumatica-api.md §2.1). A FULL_TABLE stream
keyed by such an id would give a target a new row for every record on every run. So, on a
FULL_TABLE stream's first sync, its first page is read in two server sessions at once; when
the same natural keys carry different ids the ids are session-scoped. The verdict is kept in
the stream's state (:data:`VERDICT`, next to the bookmarks) and later runs do not check again.
A run with one session cannot compare: a stream with a known natural key is then keyed by it as
a precaution (verdict :data:`UNVERIFIED`), since a wrong guess the other way duplicates rows.
An unstable stream is keyed by its natural key in the SCHEMA message; ``id`` stays in the
records, described as session-scoped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tap_acumatica import sdk
from tap_acumatica.errors import AcumaticaAPIError, ShuttingDownError

if TYPE_CHECKING:
    from tap_acumatica.contract.stream import ContractStream

#: The stream state's key for the verdict: True (session-scoped ids), False (stable), or
#: :data:`UNVERIFIED`.
VERDICT = "ids_unstable"
#: The run had one server session, so the ids could not be compared; a stream with a known
#: natural key is keyed by it anyway, since session-scoped ids would duplicate every row.
UNVERIFIED = "unverified"

ID_DESCRIPTION = (
    "Record id of one Acumatica session: it may change between sessions (records without a "
    "stable NoteID), so it is not a key; the stream is keyed by its natural key."
)


def unstable(
    first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]], keys: Sequence[str]
) -> bool | None:
    """Whether one page read in two sessions shows session-scoped ids; None: cannot tell.

    With natural keys: the records both reads hold, matched by natural key, mostly carry
    different ids. Without: the two reads share no id at all.
    """
    if not keys:
        ids_a = {r.get("id") for r in first} - {None}
        ids_b = {r.get("id") for r in second} - {None}
        return ids_a.isdisjoint(ids_b) if ids_a and ids_b else None
    by_key_a = _by_key(first, keys)
    by_key_b = _by_key(second, keys)
    common = by_key_a.keys() & by_key_b.keys()
    if not common:
        return None
    differ = sum(1 for k in common if by_key_a[k] != by_key_b[k])
    return differ * 2 > len(common)


def _by_key(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[tuple[Any, ...], Any]:
    out: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        if None not in key and row.get("id") is not None:
            out[key] = row["id"]
    return out


def settle_key(stream: ContractStream) -> None:
    """Before the SCHEMA message: check the ids on a first sync, re-key an unstable stream."""
    state = stream.get_context_state(None)
    if VERDICT not in state:
        verdict = _check(stream)
        if verdict is None:
            return
        # Kept with the stream's state, which the SDK writes after the stream's records: a
        # STATE ahead of the records would leave targets that keep only their last STATE
        # (target-jsonl) with none. A run that dies before then simply checks again.
        state[VERDICT] = verdict
    if state[VERDICT] is True:
        _rekey(stream)
    elif state[VERDICT] == UNVERIFIED:
        _rekey(stream, verified=False)


def _check(stream: ContractStream) -> bool | str | None:
    """The first page read at once in two server sessions, compared; None: not checked.

    :data:`UNVERIFIED` when the run has one session and the stream a natural key to fall back on.
    """
    try:
        pages = stream.connection.in_two_sessions(stream.first_page)
    except ShuttingDownError:
        raise
    except AcumaticaAPIError as exc:  # the read itself reports it (e.g. a 403)
        stream.logger.debug("%s: ids not checked for stability: %s", stream.name, exc)
        return None
    if pages is None:
        stream.logger.debug("%s: ids not checked for stability: %s", stream.name, _ONE_SESSION)
        return UNVERIFIED if stream.natural_keys else None
    verdict = unstable(*pages, stream.natural_keys)
    stream.logger.debug("%s: ids unstable across sessions: %s", stream.name, verdict)
    return verdict


_ONE_SESSION = (
    "that needs two server sessions (max_concurrent_requests >= 2, and for OAuth the scope "
    "api:concurrent_access)"
)


def _rekey(stream: ContractStream, *, verified: bool = True) -> None:
    """One warning; the natural key as primary key when the tap knows it and it is selected."""
    keys = stream.natural_keys
    props = stream.schema.get("properties") or {}
    why = (
        f"{stream.name}: record ids change between Acumatica sessions (these records have no "
        "stable NoteID, docs/acumatica-api.md §2.1), so id is session-scoped"
        if verified
        else f"{stream.name}: record ids may change between Acumatica sessions (records without "
        "a stable NoteID, docs/acumatica-api.md §2.1) and could not be checked, as "
        f"{_ONE_SESSION}; as a precaution id is not used as the key"
    )
    if not keys:
        stream.logger.warning(
            "%s, and the tap knows no natural key for %s: the stream stays keyed by id and a "
            "target cannot de-duplicate it; load it as a full replacement of the table",
            why,
            stream.name,
        )
        return
    missing = [k for k in keys if k not in props or not stream.mask.get(("properties", k), True)]
    if missing:
        stream.logger.warning(
            "%s; select %s to key the stream by its natural key: it stays keyed by id, which "
            "a target cannot de-duplicate on",
            why,
            ", ".join(missing),
        )
        return
    if list(stream.primary_keys) != ["id"]:  # the catalog chose another key: keep it
        stream.logger.warning("%s; keyed by %s", why, ", ".join(stream.primary_keys))
        return
    sdk.rekey(stream, keys, ID_DESCRIPTION)
    stream.logger.warning(
        "%s: the stream is keyed by its natural key %s instead; id stays in the records but "
        "may change from run to run",
        why,
        ", ".join(keys),
    )
