"""A full window read in ``$skip`` pages that overlap by one row, checked before it is used.

Issue 15's decision: a window whose end is at or before the sync end (every window the
planner makes) that comes back full is not discarded and re-read split; its first page is
page 0 and page ``i`` starts at ``i * (page_size - 1)``, so the last row of page ``i - 1``
must be the first row of page ``i``. ``$skip`` needs a stable list order: the tap never sends
``$orderby`` on REST and lists come in key order (docs/acumatica-api.md §4); a Generic
Inquiry is read with ``$orderby`` on its keys (§8). Why the check is enough: each page is a
contiguous run, in that order, of the window's set when it was read; if every page starts
with the row the page before ended with, the pages' runs tile the order from the first row
to the end (the last page is short), so a record present throughout lies in the page whose
run covers its place, whatever was deleted, restamped or committed late meanwhile. A closed
window's set only shrinks (a changed record gets a stamp after the window, a deleted one
leaves, an insert is stamped now); late commits grow it; either moves a boundary row, and
any mismatch, a short page followed by a non-empty one, or a row twice across pages is a
detected shift: the window is re-read split (``windows.recut``), never silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

Rows = list[dict[str, Any]]

#: A measured window aims at this many pages at least (``WindowPlanner(pages=…)``) ...
PAGES_PER_WINDOW = 8
#: ... or at this many records, whichever is more: each window costs about half a page
#: more than its records fill, so the fewer windows the better, while memory stays the same
#: for any page size (the windows planned ahead held about as many before issue 15).
RECORDS_PER_WINDOW = 8000
#: A window still full after this many pages is re-cut by its stamps: memory stays bounded.
MAX_WINDOW_PAGES = 16


def pages_per_window(page_size: int) -> tuple[int, int]:
    """(pages a measured window aims at, pages after which it is re-cut) for ``page_size``."""
    aim = max(PAGES_PER_WINDOW, RECORDS_PER_WINDOW // max(1, page_size))
    return aim, max(MAX_WINDOW_PAGES, 2 * aim)


def page_skip(index: int, page_size: int) -> int:
    """Where page ``index`` of a window starts: one row of overlap with the page before."""
    return index * (page_size - 1)


@dataclass
class PagedWindow:
    """The pages of one full window: fetched, in flight, and which to ask for next."""

    page_size: int
    cap: int  # at most this many pages, then the window is re-cut
    expect: int  # pages the planner expects: fetched at once; beyond, one at a time
    pages: dict[int, Rows] = field(default_factory=dict)
    futures: dict[int, Future[Rows]] = field(default_factory=dict)
    next: int = 1
    wasted: int = 0  # speculative pages past the end

    def collect(self) -> None:
        """Move finished page fetches into :attr:`pages` (their errors propagate)."""
        for index, future in list(self.futures.items()):
            if future.done():
                del self.futures[index]
                self.pages[index] = future.result()

    def short_at(self) -> int | None:
        """The first page that came back short (the window's last), if any came yet."""
        shorts = [i for i, rows in self.pages.items() if len(rows) < self.page_size]
        return min(shorts) if shorts else None

    def full_prefix(self) -> int:
        """How many pages from page 0 on came back, all of them full."""
        count = 0
        while len(self.pages.get(count, ())) >= self.page_size:
            count += 1
        return count

    def wanted(self) -> int | None:
        """The next page to fetch, or None: the end is known, the cap is reached, or it
        lies past what the planner expects and the pages before it are not all in yet."""
        if self.next >= self.cap or self.short_at() is not None:
            return None
        if self.next < self.expect or self.next <= self.full_prefix():
            return self.next
        return None

    def in_flight(self) -> list[Future[Rows]]:
        """Page fetches not finished."""
        return [f for f in self.futures.values() if not f.done()]

    def outcome(self, ident: Callable[[dict[str, Any]], str]) -> str | Rows:
        """``"pending"``, ``"cap"``, ``"shift"``, or the window's rows once all are in."""
        last = self.short_at()
        if last is None:
            return "cap" if self.full_prefix() >= self.cap else "pending"
        if any(i not in self.pages for i in range(last)):
            return "pending"
        for index, future in self.futures.items():
            if index > last:
                future.cancel()  # past the end: not needed
        self.wasted = sum(1 for i in self.pages if i > last)
        later = [rows for i, rows in self.pages.items() if i > last]
        rows = stitch([self.pages[i] for i in range(last + 1)], ident)
        return "shift" if rows is None or any(later) else rows

    def rows(self) -> Rows:
        """Every row fetched so far (a sample of the window's stamps for a re-cut)."""
        return [row for i in sorted(self.pages) for row in self.pages[i]]


def stitch(pages: Sequence[Rows], ident: Callable[[dict[str, Any]], str]) -> Rows | None:
    """The rows of pages that overlap by one row, each once; None at any sign of a shift.

    Page ``i`` must start with the row page ``i - 1`` ended with, and no other row may be in
    two pages.
    """
    rows: Rows = list(pages[0])
    seen = {ident(r) for r in rows}
    for before, page in itertools.pairwise(pages):
        if not page or not before or ident(page[0]) != ident(before[-1]):
            return None
        for row in page[1:]:
            key = ident(row)
            if key in seen:
                return None
            seen.add(key)
            rows.append(row)
    return rows
