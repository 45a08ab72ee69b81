"""The dashboard in headless Chromium: navigation, redraws, filters, untrusted text, a clean console.

One server for the session (conftest.live_url) on a database filled from real recorded data.json
catalogs (tests/layouts/filler.py); every test gets a fresh browser context and asserts that the console
saw no error and no dialog opened. Screenshots of every page go to test-results/screenshots/.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import storage
from tests.e2e import shots
from tests.e2e.conftest import SCREENSHOTS
from tests.layouts import filler

pytestmark = pytest.mark.e2e
TIMEOUT_MS = 30_000  # generous: the 2-core machine runs other suites too


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots.full_length(page, SCREENSHOTS / f"{name}.png")  # every grid drawn (Playwright's full_page left them blank)


def settle(page) -> None:
    """Wait until no callback is pending (Dash marks the body while it waits) and the network is idle."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=TIMEOUT_MS)


def test_overview_lists_every_city(page, live_url, errors):
    page.goto(live_url + "/")
    table = page.locator("#ov-cities")
    for key, name, _ in filler.CITIES:
        expect(page.locator(f"#ov-city-{key}")).to_have_text(name, timeout=TIMEOUT_MS)
    expect(table.locator("tbody tr")).to_have_count(len(filler.CITIES))
    expect(page.locator("#ov-matrix .main-svg").first).to_be_visible()
    settle(page)
    shot(page, "overview")
    assert errors == []


def test_clicking_a_city_opens_its_page(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    crit = storage.latest_scores(storage.open_db(url), "indianapolis")
    n_criteria = int((crit["indicator"] == "").sum())
    page.goto(live_url + "/")
    page.locator("#ov-city-indianapolis").click()
    expect(page).to_have_url(re.compile(r"/city/indianapolis"), timeout=TIMEOUT_MS)
    expect(page.locator("h2")).to_have_text("Indianapolis, IN")
    expect(page.locator("#city-cards .criterion-card")).to_have_count(n_criteria, timeout=TIMEOUT_MS)
    settle(page)
    shot(page, "city")
    # the WWC status grid (at the bottom; AG Grid draws rows once in view) and its labelled estimate
    page.locator("#city-estimate").scroll_into_view_if_needed()
    expect(page.locator("#city-estimate")).to_contain_text("Certification estimate (not a certification)")
    page.locator("#city-statuses").scroll_into_view_if_needed()
    expect(page.locator("#city-statuses .ag-row").first).to_be_visible(timeout=TIMEOUT_MS)
    page.screenshot(path=str(SCREENSHOTS / "city-wwc-status.png"))
    assert errors == []


def test_changing_the_criterion_redraws_the_chart(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    latest = storage.latest_scores(storage.open_db(url), "chicago")
    criteria = sorted(latest.loc[latest["indicator"] == "", "criterion"])
    page.goto(live_url + f"/city/chicago?criterion={criteria[0]}")
    title = page.locator("#city-history .gtitle")
    expect(title).to_have_text(f"{criteria[0]} over time", timeout=TIMEOUT_MS)
    page.locator("#city-criterion").click()
    page.get_by_role("option", name=re.compile(rf"^{criteria[1]} ·")).click()
    expect(title).to_have_text(f"{criteria[1]} over time", timeout=TIMEOUT_MS)
    # the choice is in the address bar, so the view can be shared
    expect(page).to_have_url(re.compile(rf"criterion={criteria[1]}"))
    settle(page)
    assert errors == []


def test_compare_shows_the_chosen_cities(page, live_url, errors):
    page.goto(live_url + "/compare?cities=chicago,philadelphia")
    chosen = page.locator("#cmp-chosen .badge")
    expect(chosen).to_have_text(["Chicago, IL", "Philadelphia, PA"], timeout=TIMEOUT_MS)
    legend = page.locator("#cmp-profile .legendtext")
    expect(legend).to_have_text(["Chicago, IL", "Philadelphia, PA"], timeout=TIMEOUT_MS)
    settle(page)
    shot(page, "compare")
    assert errors == []


def test_dataset_grid_filters(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    n_mpls = len(storage.city_catalog(storage.open_db(url), "minneapolis"))
    page.goto(live_url + "/datasets")
    count = page.locator("#ds-count")
    expect(count).to_contain_text("datasets match", timeout=TIMEOUT_MS)
    page.locator("#ds-cities").click()
    page.get_by_role("option", name="Minneapolis, MN").click()
    page.keyboard.press("Escape")
    expect(count).to_have_text(re.compile(rf"^{n_mpls:,} of "), timeout=TIMEOUT_MS)
    cells = page.locator("#ds-grid .ag-center-cols-container [col-id='city']")
    expect(cells.first).to_have_text("Minneapolis, MN", timeout=TIMEOUT_MS)  # the name, not the key
    assert set(cells.all_text_contents()) == {"Minneapolis, MN"}
    expect(page).to_have_url(re.compile(r"cities=minneapolis"))
    settle(page)
    shot(page, "datasets")
    assert errors == []


def test_script_title_shows_as_text_and_runs_nothing(page, live_url, errors):
    page.goto(live_url + "/datasets?cities=chicago")
    grid = page.locator("#ds-grid")
    expect(grid.locator(".ag-row").first).to_be_visible(timeout=TIMEOUT_MS)
    # AG Grid's own floating filter on the Title column
    grid.locator(".ag-floating-filter[aria-colindex='2'] input").fill("alert(1)")
    cell = grid.locator(".ag-center-cols-container [col-id='title']")
    expect(cell).to_have_count(1, timeout=TIMEOUT_MS)
    expect(cell.first).to_have_text(filler.XSS_TITLE)
    assert page.locator("#ds-grid script").count() == 0
    # the whole title on hover, as text too
    cell.first.hover()
    tooltip = page.locator(".ag-tooltip")
    expect(tooltip).to_have_text(filler.XSS_TITLE, timeout=TIMEOUT_MS)
    assert page.locator(".ag-tooltip script, .ag-tooltip img").count() == 0
    settle(page)
    shot(page, "datasets-untrusted-title")
    assert errors == []  # the errors fixture also records any dialog (alert) as an error


@pytest.mark.parametrize("path,ready", [
    ("/harvests", "#hv-grid .ag-row"),
    ("/methodology", "#meth-body h2"),
    ("/evidence", "#ev-disabled"),
    ("/city/philadelphia", "#city-drill-title"),
    ("/city/nowhere", "#city-unknown"),
])
def test_every_page_renders_with_a_clean_console(page, live_url, errors, path, ready):
    page.goto(live_url + path)
    expect(page.locator(ready).first).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    shot(page, path.strip("/").replace("/", "-"))
    assert errors == []


def test_narrow_laptop_layout_has_no_horizontal_scroll(page, live_url, errors):
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(live_url + "/city/chicago")
    expect(page.locator("#city-cards")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert errors == []


def test_a_new_run_shows_up_without_a_reload(page, live_url, errors, e2e_db):
    from datetime import timedelta

    url, cfg = e2e_db
    engine = storage.open_db(url)
    runs = storage.runs(engine)
    n_ok = int((runs["status"] == "ok").sum())
    page.goto(live_url + "/harvests")
    counter = page.locator("#hv-count-ok")
    expect(counter).to_have_text(str(n_ok), timeout=TIMEOUT_MS)
    page.evaluate("window.__same_document = true")
    # a new weekly run of Minneapolis lands (same records a week later), as the scheduler would write it
    last = runs[runs["city_key"] == "minneapolis"].iloc[0]
    recs = filler.records_from_catalog(storage.city_catalog(engine, "minneapolis"))
    filler.save_run(engine, last["portal_key"], recs, last["as_of"].to_pydatetime() + timedelta(days=7))
    expect(counter).to_have_text(str(n_ok + 1), timeout=TIMEOUT_MS)
    assert page.evaluate("window.__same_document") is True  # no reload happened
    assert errors == []


def test_a_matrix_cell_opens_the_city_on_that_criterion(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    latest = storage.latest_scores(storage.open_db(url))
    criteria = sorted(latest.loc[latest["indicator"] == "", "criterion"].unique(),
                      key=lambda c: (re.match(r"[A-Z]+", c).group(0), int(re.search(r"\d+", c).group(0))))
    page.goto(live_url + "/")
    drag = page.locator("#ov-matrix .nsewdrag").first
    expect(drag).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    box = drag.bounding_box()
    # the top-left cell: first city (Chicago, IL: cities sort by key), first criterion
    drag.click(position={"x": box["width"] / len(filler.CITIES) / 2, "y": box["height"] / len(criteria) / 2})
    expect(page).to_have_url(re.compile(rf"/city/chicago\?criterion={criteria[0]}$"), timeout=TIMEOUT_MS)
    expect(page.locator("#city-history .gtitle")).to_have_text(f"{criteria[0]} over time", timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []
