"""The one paging loop on its own, over a real recorded catalog (Chicago's 2022-07-23 scrape: 295 lines,
260 unique ids, 35 repeats) served page by page from memory, for the rules the emulator cannot vary:
a total that changes between pages, and a cursor the API does not move."""
from __future__ import annotations

import pytest

from connectors.base import PortalIncompatible
from connectors.paging import Page, Paginator, PagingState
from tests.conftest import FIXTURES
from tests.emulator import load_socrata_jsonl

ROWS = 100


@pytest.fixture(scope="module")
def lines():
    return load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")


def rid(item):
    return item["resource"]["id"]


def offset_paginator(lines, totals, **kw):
    """rows/start paging over the recorded lines; page n reports totals[n] (the last one after)."""
    def get_page(start):
        n = start // ROWS
        return Page(lines[start:start + ROWS], totals[min(n, len(totals) - 1)])

    def next_cursor(start, page, state: PagingState):
        start += len(page.items)
        return start if start < len(lines) else None

    return Paginator("https://portal.example/api", 0, get_page, rid, next_cursor,
                     describe=lambda start, _n: f"start={start}", **kw)


def test_pages_once_each_id_and_reports_progress(lines):
    seen = []
    pages = offset_paginator(lines, [295], total_counts_repeats=True,
                             on_page=lambda s: seen.append((s.pages, s.unique, s.repeats)))
    items = list(pages)
    assert len(items) == len({rid(i) for i in items}) == 260
    assert pages.state.stats().repeats == 35 and pages.state.pages == 3  # 295 lines at 100 a page
    assert seen[-1] == (3, 260, 35) and [p for p, _, _ in seen] == [1, 2, 3]


def test_a_total_that_shrinks_mid_crawl(lines):
    # the portal reported 300 on the first page and 295 after (an item deleted while paging): the latest
    # total stands, so the crawl is complete; keeping the largest (Socrata's rule) calls it short
    assert len(list(offset_paginator(lines, [300, 295], total_counts_repeats=True))) == 260
    with pytest.raises(PortalIncompatible, match=r"came back short: got 295 of 300 \(260 unique\)"):
        list(offset_paginator(lines, [300, 295], total_counts_repeats=True, keep_largest_total=True))


def test_unique_ids_are_compared_unless_the_total_counts_repeats(lines):
    # 295 served, 260 unique: a total of unique packages (CKAN) at 295 is short by 35
    with pytest.raises(PortalIncompatible, match="got 260 of 295"):
        list(offset_paginator(lines, [295]))


def test_a_total_at_the_cap_is_not_a_count(lines):
    assert len(list(offset_paginator(lines, [10_000], total_cap=10_000))) == 260


def test_a_cursor_that_does_not_move_fails(lines):
    stuck = Paginator("https://portal.example/api", None, lambda _c: Page(lines[:ROWS], 295), rid,
                      lambda _c, page, _s: rid(page.items[-1]), describe=lambda c, n: f"page {n} (scroll_id={c})")
    with pytest.raises(PortalIncompatible, match=r"page repeated: page 2 \(scroll_id=\w{4}-\w{4}\) held only"):
        list(stuck)
