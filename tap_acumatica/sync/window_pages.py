"""A full window read in ``$skip`` pages that overlap by one row, chained before it is used.

Issue 15's decision: a window whose end is at or before the sync end (every window the
planner makes) that comes back full is not discarded and re-read split; its first page is
page 0 and page ``i`` starts at ``i * (page_size - 1)``. ``$skip`` needs a stable list order:
the tap never sends ``$orderby`` on REST and lists come in key order (docs/acumatica-api.md
§4); a Generic Inquiry is read with ``$orderby`` on its keys (§8).

Why a chain of pages loses nothing: each page is a contiguous run, in key order, of the
window's set when it was read. If two pages A and B share a row x, a record r present
throughout the read with ``A.first <= r <= B.last`` is in one of them: A holds every row of
its time from its first to x, B every row of its time from x to its last. So pages 0, 1, ...
in which each shares a row with the next cover the order from the first row (page 0 starts
at 0) to the end (the last link is short: the list ended there). A closed window's set only
shrinks while it is read (a changed record gets a stamp after the window, a deleted one
leaves, an insert is stamped now): rows before a boundary that leave move the next page on,
and two neighbours may then share nothing, a gap where rows may hide. A gap is bridged by one
page that straddles the boundary (:meth:`PagedWindow.bridge`); a bridge that does not share
a row with both sides is a shift, always detected, never passed over: the window is re-read
split (``windows.recut``). Rows in two pages (late commits, a list that grew) are kept once.

A window still full at the page cap is not re-read either: its chained rows are the lowest
keys of its list, and they are split by stamp with the window (``windows.split_known``).
Each part's list begins with its share of them (every row of the part present throughout,
with a key up to the last one read, is among them), so a part is read on from there: that
share is its page 0 (:attr:`PagedWindow.known`), page 1 starts on its last row, and the same
chain argument holds with "every row up to x" taken from the parent's chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

Rows = list[dict[str, Any]]
Ident = Callable[[dict[str, Any]], str]

#: A measured window aims at this many pages at least (``WindowPlanner(pages=…)``) ...
PAGES_PER_WINDOW = 8
#: ... or at this many records, whichever is more: each window costs about half a page
#: more than its records fill, so the fewer windows the better, while the rows held until a
#: window is complete (and a STATE follows it) stay the same for any page size.
RECORDS_PER_WINDOW = 8000
#: A window still full after twice its aim is split by its stamps: memory stays bounded.
MAX_WINDOW_PAGES = 16
#: A window that cannot be cut (one tick: a tie burst) has no cap: it is read whole.
UNCAPPED = 1 << 30


def pages_per_window(page_size: int) -> tuple[int, int]:
    """(pages a measured window aims at, pages after which it is split) for ``page_size``."""
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
    expect: int  # pages the planner expects: fetched at once
    pages: dict[int, Rows] = field(default_factory=dict)
    futures: dict[int, Future[Rows]] = field(default_factory=dict)
    next: int = 1
    lookahead: int = 1  # beyond ``expect``: pages in flight past the full ones
    wasted: int = 0  # speculative pages past the end
    bridges: dict[int, Rows] = field(default_factory=dict)  # by the page they lead to
    bridging: dict[int, Future[Rows]] = field(default_factory=dict)
    gaps: list[int] = field(default_factory=list)  # bridges wanted, not yet asked for
    known: bool = False  # page 0 is a known prefix (a split parent's rows), not a page
    capped: Rows = field(default_factory=list)  # the chained rows of a window at its cap

    def skip(self, index: int) -> int:
        """Where page ``index`` starts (page 1 of a known prefix: on its last row)."""
        if not self.known:
            return page_skip(index, self.page_size)
        return max(0, len(self.pages[0]) - 1) + (index - 1) * (self.page_size - 1)

    def bridge(self, index: int) -> int:
        """Where the bridge over the gap before page ``index`` starts: half a page back, so
        it still holds rows of both sides after up to half a page of rows left before it."""
        return max(0, self.skip(index) - self.page_size // 2)

    def collect(self) -> None:
        """Move finished fetches into :attr:`pages` and :attr:`bridges` (errors propagate)."""
        for futures, into in ((self.futures, self.pages), (self.bridging, self.bridges)):
            for index, future in list(futures.items()):
                if future.done():
                    del futures[index]
                    if not future.cancelled():
                        into[index] = future.result()

    def short_at(self) -> int | None:
        """The first page that came back short (the window's last), if any came yet."""
        shorts = [i for i, rows in self.pages.items() if len(rows) < self.page_size]
        shorts = [i for i in shorts if i or not self.known]
        return min(shorts) if shorts else None

    def full_prefix(self) -> int:
        """How many pages from page 0 on came back, all of them full (a known prefix is)."""
        count = 1 if self.known else 0
        while len(self.pages.get(count, ())) >= self.page_size:
            count += 1
        return count

    def wanted(self) -> int | None:
        """The next page to fetch, or None: the end is known, the cap is reached, or it lies
        ``lookahead`` pages past the full ones and past what the planner expects."""
        if self.next >= self.cap or self.short_at() is not None:
            return None
        if self.next < max(self.expect, self.full_prefix() + self.lookahead):
            return self.next
        return None

    def in_flight(self) -> list[Future[Rows]]:
        """Fetches not finished."""
        return [f for f in self.all_futures() if not f.done()]

    def all_futures(self) -> list[Future[Rows]]:
        """Every page and bridge fetch still held."""
        return [*self.futures.values(), *self.bridging.values()]

    def outcome(self, ident: Ident) -> str | Rows:
        """``"pending"``, ``"cap"``, ``"shift"``, or the window's rows once they chain.

        A gap between two pages asks for a bridge (:attr:`gaps`) and stays pending.
        """
        last = self.short_at()
        if last is None:
            full = self.full_prefix()
            if full < self.cap:
                return "pending"
            last = full - 1  # at the cap: the full pages must chain before they are cut
        elif any(i not in self.pages for i in range(last)):
            return "pending"
        for index, future in list(self.futures.items()):
            if index > last and future.cancel():  # past the end (or the cap): not needed
                del self.futures[index]
        self.wasted = sum(1 for i in self.pages if i > last)
        linked = chain(self.pages, last, self.bridges, ident, self.page_size, open_first=self.known)
        if isinstance(linked, int):
            if linked not in self.bridging and linked not in self.gaps:
                self.gaps.append(linked)
            return "pending"
        if linked is None:
            return "shift"
        if self.short_at() is None:
            self.capped = linked
            return "cap"
        return linked

    def rows(self) -> Rows:
        """Every row fetched so far (a sample of the window's stamps for a re-cut)."""
        return [row for i in sorted(self.pages) for row in self.pages[i]]


def chain(
    pages: Mapping[int, Rows],
    last: int,
    bridges: Mapping[int, Rows],
    ident: Ident,
    page_size: int,
    *,
    open_first: bool = False,
) -> Rows | int | None:
    """The rows of pages ``0..last``, each once, if every neighbour shares a row with the next.

    Else the index of the first page whose gap wants a bridge (none fetched yet), or None
    when the bridge there shares no row with one of its sides (a shift: re-read split).
    A short bridge ends the chain: the list ended inside it. ``open_first``: page 0 is a
    known prefix, never an end.
    """
    links: list[Rows] = [pages[0]]
    for index in range(1, last + 1):
        before = links[-1]
        if len(before) < page_size and not (open_first and index == 1):
            break  # a short bridge: the list's end
        page = pages[index]
        if not _shares(before, page, ident):
            bridge = bridges.get(index)
            if bridge is None:
                return index
            if not _shares(before, bridge, ident):
                return None
            links.append(bridge)
            if len(bridge) < page_size:
                break
            if not _shares(bridge, page, ident):
                return None
        links.append(page)
    return _once(links, ident)


def _shares(before: Rows, after: Rows, ident: Ident) -> bool:
    keys = {ident(row) for row in before}
    return any(ident(row) in keys for row in after)


def _once(links: Iterable[Rows], ident: Ident) -> Rows:
    seen: set[str] = set()
    rows: Rows = []
    for link in links:
        for row in link:
            key = ident(row)
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows
