"""Deleted records of one DAC: ``{DAC}/px.GetDeletedRecords()`` (docs/acumatica-api.md §10).

Tables listed on *Tables to Track Deleted Records* (SM207010) keep each removed row's NoteID
(``RefNoteID``, the REST ``id``) and ``DeleteDate`` for "Days to Keep Records". The feed reads
``[since, until)`` on ``DeleteDate`` in keyset pages sorted by (``DeleteDate``, ``RefNoteID``),
like DAC rows (``odata.dac``): ⌈N/page⌉ requests, no ``$skip``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from tap_acumatica.errors import AnswerShapeError, DeletionsUntrackedError
from tap_acumatica.odata.dac import keyset_filter
from tap_acumatica.odata.service import literal
from tap_acumatica.stamps import parse_ms

if TYPE_CHECKING:
    from tap_acumatica.connection import Connection
    from tap_acumatica.odata.service import ODataServices

#: §10: the members of a deleted-record row.
REF_NOTE_ID = "RefNoteID"
DELETE_DATE = "DeleteDate"
FUNCTION = "px.GetDeletedRecords()"
#: §10, UNVERIFIED: how an instance answers for a DAC not on SM207010. Without the bound function
#: an OData service answers "segment … refers to a collection" as 404 or, on some versions of
#: the OData library, 400; both mean "not tracked" here. A 500 is retried and then fails.
UNTRACKED = (400, 404)


class DeletionFeed:
    """The deletions of the DAC ``dac_name``: a ``sync.deleted.DeletedSource``."""

    def __init__(
        self,
        connection: Connection,
        services: ODataServices,
        dac_name: str,
        *,
        stream: str | None = None,
    ) -> None:
        """A feed for ``dac_name`` (short, full or display name); no network I/O here.

        ``stream``: the stream whose requests these are (the request tally, messages).
        """
        self.connection = connection
        self.services = services
        self.name = dac_name
        self.stream = stream

    def read(self, since_ms: int, until_ms: int) -> Iterator[tuple[str, int]]:
        """(RefNoteID in lower case, DeleteDate in ms) of rows deleted in ``[since, until)``.

        In (DeleteDate, RefNoteID) order. A DAC whose deletions are not tracked has no bound
        function, so the service answers 404 or 400: :class:`DeletionsUntrackedError`.
        """
        service = self.services.service("dac")
        path = f"{self.services.path('dac', self.name)}/{FUNCTION}"
        size = self.connection.settings.page_size
        bounds = (DELETE_DATE, literal(since_ms, service), literal(until_ms, service))
        base = {"$orderby": f"{DELETE_DATE},{REF_NOTE_ID}", "$top": size}
        position: list[tuple[str, str]] = []
        latest = -(2**63)  # out-of-range rows are for the caller to judge (sync.deleted)
        while True:
            params = {**base, "$filter": keyset_filter(position, bounds)}
            rows = self._page(path, params)
            for rid, ms in rows:
                if ms < latest:  # unsorted: a position after the last row could skip rows
                    msg = f"{self.name}: GET {path} did not sort deleted records by {DELETE_DATE}"
                    raise AnswerShapeError(msg)
                latest = ms
                yield rid, ms
            if len(rows) < size:
                return
            rid, ms = rows[-1]
            new = [(DELETE_DATE, literal(ms, service)), (REF_NOTE_ID, rid)]
            if new == position:
                msg = f"{self.name}: GET {path} returned the same deletions again"
                raise AnswerShapeError(msg)
            position = new

    def _page(self, path: str, params: dict[str, Any]) -> list[tuple[str, int]]:
        body = bytearray()
        found = self.connection.client.get_chunks(
            path,
            params,
            consume=body.extend,
            restart=body.clear,
            stream=self.stream,
            absent=UNTRACKED,
        )
        if not found:
            msg = f"GET {path} answered that {self.name}'s deletions are not tracked (SM207010)"
            raise DeletionsUntrackedError(msg)
        where = f"{self.stream or self.name}: GET {path}"
        try:
            value = msgspec.json.decode(bytes(body)).get("value")
        except (msgspec.DecodeError, AttributeError):
            value = None
        if not isinstance(value, list):
            msg = f"{where} did not return an OData value array"
            raise AnswerShapeError(msg)
        out = []
        for row in value:
            rid = row.get(REF_NOTE_ID) if isinstance(row, dict) else None
            when = row.get(DELETE_DATE) if isinstance(row, dict) else None
            ms = parse_ms(when) if isinstance(when, str) else None
            if not isinstance(rid, str) or ms is None:
                msg = f"{where} returned a deleted record without {REF_NOTE_ID} or {DELETE_DATE}"
                raise AnswerShapeError(msg)
            out.append((rid.lower(), ms))
        return out
