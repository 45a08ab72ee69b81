"""The city page's drill-down in the browser: the server sends one block of the failing datasets, never all of
them, and the grid pages through every one (issue 13, target 6, at the e2e database's size)."""
from __future__ import annotations

import json
import re

from playwright.sync_api import expect

import storage
from tests.e2e.test_dashboard import TIMEOUT_MS, settle

BLOCK = 100  # layouts.city.DRILL_BLOCK


def _failing_of_criteria(url: str, city: str) -> dict[str, set[str]]:
    """criterion -> the datasets failing any of its indicators' latest scores, from the stored evidence."""
    engine = storage.open_db(url)
    latest = storage.latest_scores(engine, city)
    out: dict[str, set[str]] = {}
    for r in latest[latest["indicator"] != ""].itertuples(index=False):
        found = storage.score_evidence(engine, city, r.indicator)
        out.setdefault(r.criterion, set()).update((found[1].get("failing") or {}) if found else ())
    return out


def _asks_for_drill_rows(response) -> bool:
    body = response.request.post_data or ""
    return "_dash-update-component" in response.url and "city-drill-grid.getRowsResponse" in body


def test_drill_down_sends_one_block_and_pages_through_all(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    failing = _failing_of_criteria(url, "chicago")
    crit = max(failing, key=lambda c: len(failing[c]))  # Chicago's most failed criterion: more than a block
    expected = len(failing[crit])
    assert expected > BLOCK
    with page.expect_response(_asks_for_drill_rows, timeout=TIMEOUT_MS) as first:
        page.goto(f"{live_url}/city/chicago?criterion={crit}")
    answer = first.value.json()["response"]["city-drill-grid"]["getRowsResponse"]
    assert len(answer["rowData"]) == BLOCK and answer["rowCount"] == expected  # one block, the whole count
    assert len(json.dumps(answer)) < 200_000  # a block's worth of bytes
    grid = page.locator("#city-drill-grid")
    expect(grid.locator(".ag-row").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#city-drill-caption")).to_contain_text(f"{expected:,} datasets fail")
    # the paging bar counts them all, and its last page is fetched as one more block and shows the last rows
    summary = grid.locator(".ag-paging-row-summary-panel")
    expect(summary).to_contain_text(re.compile(rf"of\s+{expected:,}|of\s+{expected}"), timeout=TIMEOUT_MS)
    with page.expect_response(_asks_for_drill_rows, timeout=TIMEOUT_MS) as last:
        grid.locator(".ag-paging-button[aria-label='Last Page']").click()
    block = last.value.json()["response"]["city-drill-grid"]["getRowsResponse"]
    assert 0 < len(block["rowData"]) <= BLOCK and block["rowCount"] == expected
    expect(summary).to_contain_text(re.compile(rf"to\s+({expected:,}|{expected})\s+of"), timeout=TIMEOUT_MS)
    expect(grid.locator(".ag-row").first).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []
