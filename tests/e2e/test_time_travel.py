"""Issue 12, time travel, rank and flagged scores in headless Chromium: every page at `?as_of=`, the header's date
box, links that keep the date, the city's rank, partial crawls drawn as hollow points.

The e2e database (tests/layouts/filler.py): Chicago scored 2019-04-26, 2020-07-22 and weekly to 2020-08-12, with a
partial crawl on 2019-06-01 (scored, stored flagged); Indianapolis 2019-01-04, 2020-08-04 and weekly to 08-25;
Minneapolis and Philadelphia from 2020-08-04. Every portal is harvested daily. On 2020-07-25 (end of day) only
Chicago (its 07-22 scoring) and Indianapolis (its 2019-01-04 one) were scored. Expected values come from storage
and indicators.criteria.overall (the one rule), never from the page under test.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from playwright.sync_api import expect

import storage
from layouts import _figures as fig
from tests.e2e.test_dashboard import TIMEOUT_MS, settle

pytestmark = pytest.mark.e2e

DAY = "2020-07-25"
END = pd.Timestamp(f"{DAY} 23:59:59", tz="UTC")


def overall(e2e_db, city: str, at: str, *, flagged: bool = False) -> float:
    """indicators.criteria.overall of the city's stored roll-up scored at `at` (06:00 UTC)."""
    from indicators import criteria

    url, _ = e2e_db
    rows = storage.scores(storage.open_db(url), city, flagged=flagged)
    rows = rows[(rows["indicator"] == "") & (pd.to_datetime(rows["as_of"], utc=True)
                                             == pd.Timestamp(f"{at} 06:00", tz="UTC"))]
    if flagged:
        rows = rows[rows["flag"].notna()]
    return criteria.overall(rows)[0]


def test_overview_as_of_a_past_date(page, live_url, errors, e2e_db):
    chicago, indy = overall(e2e_db, "chicago", "2020-07-22"), overall(e2e_db, "indianapolis", "2019-01-04")
    page.goto(live_url + f"/?as_of={DAY}")
    expect(page.locator("#as-of-note")).to_contain_text(f"As of {DAY}", timeout=TIMEOUT_MS)
    rows = page.locator("#ov-cities tbody tr")
    expect(rows.filter(has_text="Chicago, IL").locator("td").nth(2)).to_have_text(f"{chicago:.0f}",
                                                                                  timeout=TIMEOUT_MS)
    expect(rows.filter(has_text="Indianapolis, IN").locator("td").nth(2)).to_have_text(f"{indy:.0f}")
    # Minneapolis was first scored on 2020-08-04: not yet
    expect(rows.filter(has_text="Minneapolis, MN")).to_contain_text("not scored")
    # Chicago's trend has its two complete runs by then (2019-04-26, 2020-07-22)
    expect(page.locator("#ov-trend-chicago")).to_have_attribute("alt", "overall score over 2 complete runs")
    # old data judged at the end of that day: Chicago's 07-22 06:00 run was 3 days old (over 2 daily intervals)
    expect(page.locator("#ov-stale")).to_contain_text("Chicago, IL: latest complete harvest 2020-07-22 (3 days ago)")
    # the links keep the date: the city link, the header's links, and the date box shows it
    expect(page.locator("#ov-city-chicago")).to_have_attribute("href", f"/city/chicago?as_of={DAY}")
    expect(page.locator("#nav-harvests")).to_have_attribute("href", f"/harvests?as_of={DAY}")
    expect(page.locator("#as-of")).to_have_value(DAY)
    settle(page)
    page.locator("#ov-city-chicago").click()
    expect(page).to_have_url(re.compile(rf"/city/chicago\?as_of={DAY}$"), timeout=TIMEOUT_MS)
    expect(page.locator("#city-overall-score")).to_have_text(f"{chicago:.0f}", timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []


def test_the_header_date_box_opens_the_page_at_that_date_and_today_again(page, live_url, errors, e2e_db):
    today = overall(e2e_db, "chicago", "2020-08-12")
    then = overall(e2e_db, "chicago", "2020-07-22")
    page.goto(live_url + "/city/chicago?criterion=DM4")
    expect(page.locator("#city-overall-score")).to_have_text(f"{today:.0f}", timeout=TIMEOUT_MS)
    settle(page)
    page.locator("#as-of").fill(DAY)
    # the page's own parameters stay, the date joins them; the page redraws as it stood
    expect(page).to_have_url(re.compile(rf"/city/chicago\?criterion=DM4&as_of={DAY}$"), timeout=TIMEOUT_MS)
    expect(page.locator("#city-overall-score")).to_have_text(f"{then:.0f}", timeout=TIMEOUT_MS)
    expect(page.locator("#as-of-note")).to_contain_text(f"As of {DAY}")
    settle(page)
    page.locator("#as-of-today").click()
    expect(page).to_have_url(re.compile(r"/city/chicago\?criterion=DM4$"), timeout=TIMEOUT_MS)
    expect(page.locator("#city-overall-score")).to_have_text(f"{today:.0f}", timeout=TIMEOUT_MS)
    expect(page.locator("#as-of-note")).to_have_count(0)
    expect(page.locator("#as-of")).to_have_value("")
    settle(page)
    assert errors == []


def test_city_header_ranks_the_city_among_scored_cities(page, live_url, errors, e2e_db):
    # today: the four cities' latest overall scores, ranked by hand (highest first, one decimal as shown)
    latest = {"chicago": "2020-08-12", "indianapolis": "2020-08-25", "minneapolis": "2020-08-25",
              "philadelphia": "2020-08-25"}
    url, _ = e2e_db
    runs = storage.runs(storage.open_db(url))
    # a test of the live poll may have added a later Minneapolis run (scored or not): take each city's newest score
    scores = storage.criterion_scores(storage.open_db(url))
    newest = scores.groupby("city_key")["as_of"].max()
    latest = {k: pd.Timestamp(newest[k]).strftime("%Y-%m-%d") for k in latest}
    assert len(runs)
    values = {k: round(overall(e2e_db, k, d), 1) for k, d in latest.items()}
    rank = 1 + sum(v > values["chicago"] for v in values.values())
    tied = " (tied)" if sum(v == values["chicago"] for v in values.values()) > 1 else ""
    page.goto(live_url + "/city/chicago")
    expect(page.locator("#city-rank")).to_have_text(f"rank {rank}{tied} of 4 scored cities", timeout=TIMEOUT_MS)
    # on 2020-07-25 only Chicago and Indianapolis were scored
    chicago, indy = round(overall(e2e_db, "chicago", "2020-07-22"), 1), round(overall(e2e_db, "indianapolis",
                                                                                     "2019-01-04"), 1)
    then = 1 if chicago > indy else 2 if chicago < indy else 1
    page.goto(live_url + f"/city/chicago?as_of={DAY}")
    expect(page.locator("#city-rank")).to_have_text(
        f"rank {then}{' (tied)' if chicago == indy else ''} of 2 scored cities", timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []


def test_partial_crawl_scores_are_hollow_points_off_the_lines(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    flagged = storage.scores(storage.open_db(url), "chicago", flagged=True)
    dm4 = flagged[(flagged["flag"] == "partial") & (flagged["criterion"] == "DM4") & (flagged["indicator"] == "")]
    assert len(dm4) == 1  # the 2019-06-01 partial crawl's DM4 roll-up
    page.goto(live_url + "/city/chicago?criterion=DM4")
    expect(page.locator("#city-history .gtitle")).to_have_text("DM4 over time", timeout=TIMEOUT_MS)
    settle(page)
    # the traces as Plotly drew them (_fullData: arrays decoded from the figure's binary form)
    traces = page.evaluate("""() => document.querySelector('#city-history .js-plotly-plot')._fullData.map(t => ({
        name: t.name, mode: t.mode, x: Array.from(t.x, String), y: Array.from(t.y), legend: t.showlegend,
        hovertemplate: t.hovertemplate,
        symbol: (t.marker || {}).symbol, hover: t.customdata ? Array.from(t.customdata) : null}))""")
    line = next(t for t in traces if t["name"] == "DM4 (criterion)")
    hollow = next(t for t in traces if t["mode"] == "markers" and "DM4 (criterion)" in t["hovertemplate"])
    # one legend entry for every hollow marker
    assert [t["name"] for t in traces if t["mode"] == "markers" and t["legend"]] == [fig.FLAGGED_LEGEND]
    assert not any(x.startswith("2019-06-01") for x in line["x"])  # never joined into the line
    assert hollow["mode"] == "markers" and hollow["symbol"] == "circle-open"
    assert [x[:10] for x in hollow["x"]] == ["2019-06-01"]
    assert hollow["y"] == [pytest.approx(float(dm4["value"].iloc[0]))]
    assert hollow["hover"] == ["partial crawl: not counted"]
    # Plotly drew the hollow marker (an open circle path) in the plot
    expect(page.locator("#city-history .scatterlayer .trace .points path")).not_to_have_count(0)
    # the overall trend lines: the partial crawl's overall score beside the line, with a hover saying why
    value = overall(e2e_db, "chicago", "2019-06-01", flagged=True)
    note = f"2019-06-01: {value:.0f}, partial crawl: not counted"
    expect(page.locator("#city-overall-trend")).to_have_attribute("title", re.compile(re.escape(note)))
    page.goto(live_url + "/")
    trend = page.locator("#ov-trend-chicago")
    expect(trend).to_have_attribute("title", re.compile(re.escape(note)), timeout=TIMEOUT_MS)
    expect(trend).to_have_attribute("src", re.compile("class%3D%27flagged%27"))
    expect(page.locator("#ov-trend-indianapolis")).not_to_have_attribute("src", re.compile("flagged"))
    settle(page)
    assert errors == []


def test_compare_as_of_a_past_date(page, live_url, errors, e2e_db):
    chicago, indy = overall(e2e_db, "chicago", "2020-07-22"), overall(e2e_db, "indianapolis", "2019-01-04")
    page.goto(live_url + f"/compare?cities=chicago,indianapolis&as_of={DAY}")
    pinned = page.locator("#cmp-gaps .ag-floating-top .ag-row").first
    expect(pinned).to_contain_text("Overall score", timeout=TIMEOUT_MS)
    expect(pinned.locator("[col-id='chicago']")).to_have_text(f"{round(chicago, 1):g}")
    expect(pinned.locator("[col-id='indianapolis']")).to_have_text(f"{round(indy, 1):g}")
    settle(page)
    # choosing cities keeps the date in the address bar
    page.locator("#cmp-cities").click()
    page.get_by_role("option", name="Philadelphia, PA").click()
    expect(page).to_have_url(re.compile(rf"cities=chicago,indianapolis,philadelphia&as_of={DAY}$"),
                             timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []


def test_datasets_as_of_a_past_date(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    engine = storage.open_db(url)
    then = storage.city_harvest(engine, "chicago", END.to_pydatetime()).frame  # the 2020-07-22 run's 801 datasets
    now = storage.city_harvest(engine, "chicago").frame
    assert len(then) != len(now)
    page.goto(live_url + f"/datasets?cities=chicago&as_of={DAY}")
    expect(page.locator("#ds-count")).to_have_text(f"{len(then):,} of {len(then):,} datasets match in the chosen "
                                                   "cities", timeout=TIMEOUT_MS)
    settle(page)
    # a grid filter answered at the same date: freshness judged at that run, as the explorer rows derive it
    rows = fig.dataset_table(then, pd.Timestamp("2020-07-22 06:00", tz="UTC"))
    fresh = int((rows["freshness"] == "fresh").sum())
    page.locator("#ds-freshness").click()
    page.get_by_role("option", name="fresh", exact=True).click()
    expect(page.locator("#ds-count")).to_have_text(re.compile(rf"^{fresh:,} of {len(then):,} "), timeout=TIMEOUT_MS)
    expect(page).to_have_url(re.compile(rf"freshness=fresh&as_of={DAY}$"), timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []


def test_harvests_as_of_a_past_date(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    runs = storage.runs(storage.open_db(url))
    runs = runs[pd.to_datetime(runs["as_of"], utc=True) <= END]
    # by hand: Chicago 2019-04-26 and 2020-07-22, Indianapolis 2019-01-04 complete; Chicago 2019-06-01 partial
    assert (runs["status"] == "ok").sum() == 3 and (runs["status"] == "suspect").sum() == 1
    page.goto(live_url + f"/harvests?as_of={DAY}")
    expect(page.locator("#hv-count-ok")).to_have_text("3", timeout=TIMEOUT_MS)
    expect(page.locator("#hv-count-suspect")).to_have_text("1")
    settle(page)
    page.locator("#hv-city").click()
    page.get_by_role("option", name="Chicago, IL").click()
    expect(page).to_have_url(re.compile(rf"city=chicago&as_of={DAY}$"), timeout=TIMEOUT_MS)
    expect(page.locator("#hv-count-ok")).to_have_text("2", timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []


def test_evidence_as_of_a_past_date(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    engine = storage.open_db(url)
    # a record made on 2020-07-26: not yet there at the end of the 25th, there today
    eid = storage.add_evidence(engine, "indianapolis", "OD1", url="https://example.org/policy", date="2020-07-01",
                               note="open data policy", actor="e2e", at=datetime(2020, 7, 26, 9, tzinfo=UTC))
    try:
        page.goto(live_url + f"/evidence?as_of={DAY}")
        expect(page.locator("#ev-past")).to_contain_text(DAY, timeout=TIMEOUT_MS)
        expect(page.locator("#ev-grid")).to_be_visible(timeout=TIMEOUT_MS)
        settle(page)
        expect(page.locator("#ev-grid .ag-center-cols-container .ag-row")).to_have_count(0)
        expect(page.locator("#ev-save")).to_be_disabled()
        page.goto(live_url + "/evidence?as_of=2020-07-26")
        expect(page.locator("#ev-grid .ag-center-cols-container .ag-row")).to_have_count(1, timeout=TIMEOUT_MS)
        settle(page)
    finally:
        storage.delete_evidence(engine, eid, actor="e2e", at=datetime.now(UTC))
    assert errors == []
