"""Keyset-paged streams: pages in stamp order, each one a resumable position.

A dialect whose source can sort (``$orderby``) reads ``[begin, end)`` as pages ordered by
(stamp, keys), each page continuing after the previous one's last row (docs/acumatica-api.md
§8: DAC OData sorts and filters on any column). No page is re-read and no range re-cut: a
read costs one request per page. After each page, every record stamped before the page's
``covered_ms`` has left, so that is a bookmark a STATE may carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

from tap_acumatica.errors import StampInconsistencyError
from tap_acumatica.stamps import iso_utc
from tap_acumatica.sync.consistency import CLOCK_TOLERANCE_SECONDS, stamp_us
from tap_acumatica.sync.windows import Window


@dataclass(frozen=True)
class KeysetPage:
    """One page of a keyset read.

    ``covered_ms``: every record stamped before it has been yielded by this page or an earlier
    one (the tick of the page's last stamp; the read's end after its last page).
    """

    records: list[dict[str, Any]]
    covered_ms: int


@dataclass
class PageChecker:
    """The per-page consistency rules of a keyset read (``sync.consistency`` for windows).

    Every record must carry its change stamp, lie in the read's ``span``, be no later than the
    server's clock (plus :data:`CLOCK_TOLERANCE_SECONDS`) and come no earlier than the record
    before it, across pages: the source sorted by the stamp, so anything else means it reads
    the filter or the sort differently from the tap (docs/acumatica-api.md §3, §13).
    ``covered_ms`` may not move back nor pass the span's end.
    """

    stream: str
    key: str
    span: Window
    last_us: int | None = None
    covered: int | None = field(default=None)

    def check(self, page: KeysetPage, server_now_us: int) -> None:
        """Raise :class:`StampInconsistencyError` at the first rule ``page`` breaks."""
        lower, upper = self.span.start * 1000, self.span.end * 1000
        limit = server_now_us + int(CLOCK_TOLERANCE_SECONDS * 1_000_000)
        for record in page.records:
            micros = stamp_us(record, self.key, self.stream)
            if micros > limit:
                self._fail(record, f"later than the server's own clock ({iso_utc(limit // 1000)})")
            if not lower <= micros < upper:
                self._fail(record, f"outside the range {self.span} that was read")
            if self.last_us is not None and micros < self.last_us:
                before = iso_utc(self.last_us // 1000)
                self._fail(record, f"earlier than the record before it ({before})")
            self.last_us = micros
        if page.covered_ms > self.span.end or (
            self.covered is not None and page.covered_ms < self.covered
        ):
            msg = (
                f"{self.stream}: a page claims to cover up to {iso_utc(page.covered_ms)}, "
                f"outside {self.span} or before the previous page's position; stopping at the "
                "last consistent page"
            )
            raise StampInconsistencyError(msg)
        self.covered = page.covered_ms

    def _fail(self, record: dict[str, Any], why: str) -> NoReturn:
        msg = (
            f"{self.stream}: record {record.get('id')} has {self.key}={record.get(self.key)}, "
            f"{why}: the instance reads the filter or sort on date-times differently from the "
            "stamps it returns (docs/acumatica-api.md §3, §13); stopping at the last "
            "consistent page"
        )
        raise StampInconsistencyError(msg)
