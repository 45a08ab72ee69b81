"""The one paging loop: page until nothing is left, each id once, and check the portal's own total.

A silently short catalog is the worst bug this product can have, so every paged connector runs this loop
and configures only what differs between APIs: how to ask for a page, an item's id, the next cursor, and
what the portal's total counts. Each connector keeps its own I/O (`connectors.http`) and its own errors
for a malformed page; the loop raises `PortalIncompatible` for a page that holds only already-seen ids (a
cursor that does not move) and for a catalog that comes back shorter than the portal's reported total.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.base import FetchStats, PortalIncompatible


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of a paged API: its items and the total the portal reported with it (None: not given)."""

    items: list[Any]
    total: int | None = None


@dataclass(slots=True)
class PagingState:
    """What the loop has seen so far; `stats(notes)` is the connector's FetchStats."""

    pages: int = 0
    unique: int = 0
    repeats: int = 0
    reported: int | None = None

    def stats(self, notes: tuple[str, ...] = ()) -> FetchStats:
        return FetchStats(items_seen=self.unique, repeats=self.repeats, reported_total=self.reported,
                          pages=self.pages, notes=notes)


@dataclass
class Paginator:
    """Configure once per fetch, then iterate: yields each raw item once, in the order served.

    - `get_page(cursor) -> Page`: one request (the cursor is `first` for the first page).
    - `item_id(item) -> str`: raises the connector's error for an item without an id.
    - `next_cursor(cursor, page, state) -> cursor | None`: None when the API says this was the last page.
    - `describe(cursor, page_number) -> str`: names a page in the repeated-page error.
    - `total_counts_repeats`: the portal's total counts every item it served, repeats included (Socrata
      Discovery: 295 served lines, 260 unique, resultSetSize 295), so the short check compares what was
      delivered; otherwise it compares unique ids (CKAN's `count` of packages).
    - `total_cap`: a total at or above this is a cap, not a count, and is not checked (Discovery: 10,000).
    - `keep_largest_total`: the largest total any page reported stands (else the latest one).
    - `on_page(state)`: called after each page's items were taken (stats, progress bars).
    """

    url: str
    first: Any
    get_page: Callable[[Any], Page]
    item_id: Callable[[Any], str]
    next_cursor: Callable[[Any, Page, PagingState], Any]
    describe: Callable[[Any, int], str]
    total_counts_repeats: bool = False
    total_cap: int | None = None
    keep_largest_total: bool = False
    on_page: Callable[[PagingState], None] | None = None
    state: PagingState = field(default_factory=PagingState)

    def __iter__(self) -> Iterator[Any]:
        seen: set[str] = set()
        state = self.state = PagingState()
        cursor = self.first
        while True:
            page = self.get_page(cursor)
            state.pages += 1
            if page.total is not None:
                larger = state.reported is not None and state.reported > page.total and self.keep_largest_total
                state.reported = state.reported if larger else page.total
            fresh = 0
            for item in page.items:
                rid = self.item_id(item)
                if rid in seen:
                    state.repeats += 1
                    continue
                seen.add(rid)
                state.unique += 1
                fresh += 1
                yield item
            if self.on_page:
                self.on_page(state)
            if not page.items:
                break
            if fresh == 0:
                raise PortalIncompatible(
                    f"{self.url}: page repeated: {self.describe(cursor, state.pages)} held only already-seen ids")
            cursor = self.next_cursor(cursor, page, state)
            if cursor is None:
                break
            del page  # freed before the next page is parsed: one page in memory at a time, not two
        self._check_total(state)

    def _check_total(self, state: PagingState) -> None:
        reported = state.reported
        if reported is None or (self.total_cap is not None and reported >= self.total_cap):
            return
        delivered = state.unique + state.repeats if self.total_counts_repeats else state.unique
        if delivered < reported:
            raise PortalIncompatible(
                f"{self.url}: catalog came back short: got {delivered} of {reported} ({state.unique} unique)")
