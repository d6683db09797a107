"""Paging a set that no value range can split, with overlapping pages that detect any shift."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tap_acumatica.errors import AcumaticaAPIError


def page_consistently(
    fetch_page: Callable[[int, int], Sequence[dict[str, Any]]],
    *,
    page_size: int,
    first_page: Sequence[dict[str, Any]] | None = None,
    max_restarts: int = 10,
    what: str = "records",
    ident: Callable[[dict[str, Any]], str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Read a whole result set with ``$top/$skip`` and overlapping pages; never lose a row.

    Used only where no value range can split the set further: a tie burst (one stamp) or an
    entity with no change field. Pages overlap by ``overlap`` rows. The set can only shrink
    while it is read (a record leaves a tie burst when it is modified or deleted; inserts get a
    new stamp), and the server lists it in a stable key order, so a page whose first row was
    also in the previous page continues it without a gap; if it was not, rows before the page
    boundary vanished and the read restarts from the top. Rows are yielded as they arrive,
    each identity (``ident``, default the ``id``) once.
    """
    _row_id = ident or _id
    overlap = max(1, min(page_size // 10, 200))
    if page_size <= overlap:
        msg = f"page_size {page_size} is too small to page {what} safely (need at least 2)"
        raise AcumaticaAPIError(msg)
    seen: set[str] = set()
    restarts = 0
    skip = 0
    prev_ids: set[str] | None = None
    page = list(first_page) if first_page is not None else None
    while True:
        if page is None:
            page = list(fetch_page(skip, page_size))
        if prev_ids is not None and (not page or _row_id(page[0]) not in prev_ids):
            restarts += 1
            if restarts > max_restarts:
                msg = (
                    f"{what} kept shifting while being paged ({restarts} restarts); "
                    "retry when the instance is quieter or lower max_concurrent_requests"
                )
                raise AcumaticaAPIError(msg)
            skip, prev_ids, page = 0, None, None
            continue
        for row in page:
            rid = _row_id(row)
            if rid not in seen:
                seen.add(rid)
                yield row
        if len(page) < page_size:
            return
        prev_ids = {_row_id(r) for r in page[-overlap:]}
        skip += page_size - overlap
        page = None


def _id(row: dict[str, Any]) -> str:
    return str(row.get("id"))
