"""Issue 12, "the CDO's morning view", in headless Chromium: each test fails without its fix.

Same session server and database as test_dashboard.py (conftest.live_url: four real cities' recorded
data.json catalogs). Expected numbers are computed here from the stored catalog, the way a reader would
count them by hand (comments say how), never read back from the page under test.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from playwright.sync_api import expect

import storage
from layouts import _figures as fig
from tests.e2e.test_dashboard import TIMEOUT_MS, settle

pytestmark = pytest.mark.e2e


def explorer_rows(url: str, city: str) -> pd.DataFrame:
    """The explorer rows of a city as the Datasets page derives them from its latest stored catalog."""
    harvest = storage.city_harvest(storage.open_db(url), city)
    return fig.dataset_table(harvest.frame, pd.Timestamp(harvest.runs["as_of"].max()))


# --- item 1: department links open the filtered Datasets page -------------------------------------------

def click_first_department_link(page, city_url: str, column: str) -> str:
    """Open the city page, click the link in `column` of the department table's first row; its department."""
    page.goto(city_url)
    grid = page.locator("#city-departments-grid")
    expect(grid).to_be_attached(timeout=TIMEOUT_MS)
    settle(page)  # every callback answered: the grid is not redrawn under the click
    grid.scroll_into_view_if_needed(timeout=TIMEOUT_MS)
    first = grid.locator(".ag-center-cols-container .ag-row[row-index='0']")
    expect(first).to_be_visible(timeout=TIMEOUT_MS)
    dept = first.locator("[col-id='department']").inner_text()
    first.locator(f"[col-id='{column}'] a").click()
    return dept


def test_department_stale_link_opens_the_filtered_datasets(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    rows = explorer_rows(url, "chicago")
    dept = click_first_department_link(page, live_url + "/city/chicago", "stale_pct")
    expect(page).to_have_url(re.compile(r"/datasets\?"), timeout=TIMEOUT_MS)
    q = parse_qs(urlparse(page.url).query)
    assert q["cities"] == ["chicago"] and q["department"] == [dept]
    # by hand: the department's datasets whose freshness is overdue or delinquent
    d = rows[(rows["department"].fillna("(no department)") == dept)
             & rows["freshness"].isin(["overdue", "delinquent"])]
    expect(page.locator("#ds-count")).to_have_text(re.compile(rf"^{len(d):,} of {len(rows):,} "),
                                                   timeout=TIMEOUT_MS)
    settle(page)
    assert errors == []


def test_department_undocumented_link_opens_the_filtered_datasets(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    rows = explorer_rows(url, "philadelphia")
    dept = click_first_department_link(page, live_url + "/city/philadelphia", "undocumented_pct")
    expect(page).to_have_url(re.compile(r"/datasets\?.*doc_max=49"), timeout=TIMEOUT_MS)
    # by hand: the department's datasets with a documentation score under 50
    d = rows[(rows["department"].fillna("(no department)") == dept) & (rows["doc_score"] < 50)]
    expect(page.locator("#ds-count")).to_have_text(re.compile(rf"^{len(d):,} of {len(rows):,} "),
                                                   timeout=TIMEOUT_MS)
    assert errors == []


# --- item 2: filter menus from normalized values, capped and searchable ---------------------------------

def test_licence_menu_offers_normalized_ids_capped(page, live_url, errors, e2e_db):
    url, cfg = e2e_db
    all_rows = pd.concat([explorer_rows(url, c.key) for c in cfg.cities], ignore_index=True)
    raw_texts = all_rows["license"].dropna().nunique()
    page.goto(live_url + "/datasets")
    expect(page.locator("#ds-count")).to_contain_text("datasets match", timeout=TIMEOUT_MS)
    page.locator("#ds-licence").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=TIMEOUT_MS)
    labels = options.all_inner_texts()
    assert len(labels) <= fig.OPTIONS_SHOWN
    assert not any(re.search(r"https?://", x) for x in labels), labels  # ids, not licence URLs
    # by hand: the distinct licence ids, plus one choice for a licence text no id was found for
    ids = set(all_rows["license_id"])
    assert {re.sub(r" \([\d,]+\)$", "", x) for x in labels} == ids
    assert raw_texts > len(ids)  # the fixture really has more licence texts than ids (else this proves nothing)
    page.keyboard.press("Escape")
    assert errors == []


def test_department_menu_is_capped_and_finds_the_rest_by_typing(page, live_url, errors, e2e_db, monkeypatch):
    url, cfg = e2e_db
    all_rows = pd.concat([explorer_rows(url, c.key) for c in cfg.cities], ignore_index=True)
    counts = all_rows["department"].dropna().value_counts()
    # the test cities have few departments (one publisher per data.json): a cap of 2 makes one of them
    # unlisted (the server runs in this process, so the module constant is the one it reads)
    cap = len(counts) - 1
    monkeypatch.setattr(fig, "OPTIONS_SHOWN", cap)
    rare = counts.index[-1]  # the department with the fewest datasets: past the cap
    page.goto(live_url + "/datasets")
    expect(page.locator("#ds-count")).to_contain_text("datasets match", timeout=TIMEOUT_MS)
    page.locator("#ds-department").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=TIMEOUT_MS)
    expect(options).to_have_count(cap)
    assert not any(x.startswith(rare) for x in options.all_inner_texts())
    page.keyboard.type(rare[:12])
    expect(page.get_by_role("option", name=f"{rare} ({int(counts[rare]):,})")).to_be_visible(timeout=TIMEOUT_MS)
    page.keyboard.press("Escape")
    assert errors == []


# --- item 6: the drill-down comes into view, takes the focus and is announced ---------------------------

def test_clicking_a_score_scrolls_to_and_focuses_the_drill_down(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    latest = storage.latest_scores(storage.open_db(url), "indianapolis")
    criteria = fig.criteria_order(latest.loc[latest["indicator"] == "", "criterion"])
    page.goto(live_url + f"/city/indianapolis?criterion={criteria[0]}")
    caption = page.locator("#city-drill-caption")
    expect(caption).to_have_attribute("aria-live", "polite")
    expect(page.locator("#city-cards .criterion-card").first).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    title = page.locator("#city-drill-title")
    expect(title).not_to_be_in_viewport()  # below the fold at 1280 x 900: the click must bring it up
    target = criteria[-1]
    page.locator(f"#city-cards button[data-criterion='{target}']").click()
    expect(title).to_be_in_viewport(timeout=TIMEOUT_MS)
    expect(title).to_be_focused()
    expect(page.locator("#city-criterion")).to_contain_text(target)
    expect(page).to_have_url(re.compile(rf"criterion={target}"), timeout=TIMEOUT_MS)
    expect(caption).to_contain_text(target, timeout=TIMEOUT_MS)
    settle(page)
    expect(title).to_be_in_viewport()
    assert errors == []


# --- item 7: the count, the grid and the CSV agree; menu filters keep the grid's own filters -----------

def test_grid_filter_and_menu_filter_add_up_in_count_and_csv(page, live_url, errors, e2e_db, tmp_path):
    url, _ = e2e_db
    rows = explorer_rows(url, "chicago")
    page.goto(live_url + "/datasets?cities=chicago")
    count = page.locator("#ds-count")
    expect(count).to_have_text(re.compile(rf"^{len(rows):,} of {len(rows):,} "), timeout=TIMEOUT_MS)
    grid = page.locator("#ds-grid")
    expect(grid.locator(".ag-row").first).to_be_visible(timeout=TIMEOUT_MS)
    word = "police"
    title_filter = grid.locator(".ag-floating-filter[aria-colindex='2'] input")
    title_filter.fill(word)
    # by hand: Chicago titles containing the word, case-blind
    by_title = rows[rows["title"].fillna("").str.lower().str.contains(word)]
    assert 0 < len(by_title) < len(rows)
    expect(count).to_have_text(re.compile(rf"^{len(by_title):,} of {len(rows):,} "), timeout=TIMEOUT_MS)
    # a menu filter on top keeps the typed filter: both apply
    state = by_title["freshness"].value_counts().index[0]
    page.locator("#ds-freshness").click()
    page.get_by_role("option", name=state, exact=True).click()
    page.keyboard.press("Escape")
    both = by_title[by_title["freshness"] == state]
    expect(count).to_have_text(re.compile(rf"^{len(both):,} of {len(rows):,} "), timeout=TIMEOUT_MS)
    expect(grid.locator(".ag-floating-filter[aria-colindex='2'] input")).to_have_value(word)
    settle(page)
    with page.expect_download(timeout=TIMEOUT_MS) as dl:
        page.locator("#ds-download-btn").click()
    path = tmp_path / "datasets.csv"
    dl.value.save_as(path)
    csv = pd.read_csv(path)
    assert sorted(csv["source_id"]) == sorted(both["source_id"])
    assert errors == []


def test_fix_first_usage_is_blank_where_the_portal_reports_no_use(page, live_url, errors, e2e_db):
    url, _ = e2e_db
    rows = explorer_rows(url, "chicago")
    page.goto(live_url + "/city/chicago")
    fix = page.locator("#city-fix-first")
    expect(fix).to_be_attached(timeout=TIMEOUT_MS)
    settle(page)
    fix.scroll_into_view_if_needed(timeout=TIMEOUT_MS)
    shown = fix.locator(".ag-center-cols-container .ag-row")
    expect(shown.first).to_be_visible(timeout=TIMEOUT_MS)
    seen = []
    for i in range(shown.count()):
        r = shown.nth(i)
        title, usage = r.locator("[col-id='title']").inner_text(), r.locator("[col-id='usage']").inner_text()
        same = rows[rows["title"] == title]
        if len(same) != 1:
            continue  # a title used twice cannot be matched by hand
        views, downloads = same.iloc[0][["views", "downloads"]]
        # by hand: views + downloads; blank (as in the Datasets grid and CSV) when the portal reports neither
        expected = "" if pd.isna(views) and pd.isna(downloads) else \
            f"{int((0 if pd.isna(views) else views) + (0 if pd.isna(downloads) else downloads))}"
        seen.append((title, usage, expected))
    # every row shown: blank exactly where the portal reports no usage, the sum where it does (since the
    # scoring changes of issue 9, the top of Chicago's list holds only datasets with usage figures)
    assert seen and [s[1] for s in seen] == [s[2] for s in seen], seen
    assert errors == []


# --- item 9: a print view with the city page's numbers --------------------------------------------------

def test_print_view_shows_the_city_page_numbers_in_one_column(page, live_url, errors):
    page.goto(live_url + "/city/chicago")
    scores = page.locator("#city-cards button[data-criterion]")
    expect(scores.first).to_be_visible(timeout=TIMEOUT_MS)
    on_page = {b.get_attribute("data-criterion"): b.inner_text() for b in scores.all()}
    bg = "e => getComputedStyle(e).backgroundColor"
    stage_colors = {c: page.locator(f"#city-cards .criterion-card:has(button[data-criterion='{c}']) .stage-badge")
                    .evaluate(bg) for c in on_page}
    page.locator("#city-print").click()
    expect(page).to_have_url(re.compile(r"/print/city/chicago$"), timeout=TIMEOUT_MS)
    expect(page.locator("h1")).to_contain_text("Chicago, IL")
    printed = {}
    for row in page.locator("table.criteria tr").all()[1:]:
        cells = row.locator("td").all_inner_texts()
        printed[cells[0]] = cells[4].strip()
    assert {c: printed.get(c) for c in on_page} == on_page
    # the report's stage colours are the dashboard's (one palette)
    printed_colors = {c: page.locator(f"table.criteria tr:has(td:text-is('{c}')) .stage").evaluate(bg)
                      for c in on_page}
    assert printed_colors == stage_colors
    assert page.locator(".plotly-graph-div").count() == 0  # tables only: nothing to draw before printing
    page.emulate_media(media="print")
    expect(page.locator(".toolbar")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert errors == []


def test_print_view_links_the_whole_list_of_failing_datasets(page, live_url, errors):
    """An indicator with more failing datasets than the print view lists says where all of them are: a link to the
    city page's drill-down for that indicator, which counts as many (the exported report's evidence.json is not
    beside a page the dashboard serves)."""
    page.goto(live_url + "/print/city/chicago")
    more = page.locator("a.all-failing").first
    expect(more).to_be_visible(timeout=TIMEOUT_MS)
    n = re.fullmatch(r"all ([\d,]+) on the city page", more.inner_text()).group(1)
    heading = page.locator("h4:has(+ table a.all-failing)").first.inner_text()
    # the heading says "<criterion> · <title> — <score> (<num>/<den>), <n> failing": the same count as the link
    assert heading.endswith(f", {n} failing"), heading
    more.click()
    expect(page).to_have_url(re.compile(r"/city/chicago\?criterion=[A-Z]+\d+&indicator=\w+$"), timeout=TIMEOUT_MS)
    expect(page.locator("#city-drill-caption")).to_contain_text(f"{n} datasets fail", timeout=TIMEOUT_MS)
    assert errors == []


# --- item 8: a city keeps its colour; plain /compare opens on the scored cities -------------------------

def _rgb(hex_color: str) -> str:
    """"#0072B2" as the browser computes a CSS colour: "rgb(0, 114, 178)"."""
    r, g, b = (int(hex_color.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def trace_colors(page, graph_id: str) -> dict[str, str]:
    """Legend name → colour of each trace, as Plotly drew them (its full data, after defaults)."""
    return page.evaluate("""(id) => {
        const gd = document.querySelector('#' + id + ' .js-plotly-plot');
        const out = {};
        for (const t of gd._fullData) { out[t.name] = (t.marker && t.marker.color) || (t.line && t.line.color); }
        return out;
    }""", graph_id)


def test_a_city_keeps_its_colour_whatever_else_is_compared(page, live_url, errors):
    seen = {}
    for choice in ("chicago,philadelphia", "indianapolis,minneapolis,philadelphia", "philadelphia"):
        page.goto(live_url + f"/compare?cities={choice}")
        expect(page.locator("#cmp-profile .legendtext, #cmp-profile .bars").first).to_be_attached(timeout=TIMEOUT_MS)
        settle(page)
        for graph in ("cmp-profile", "cmp-history-Overall", "cmp-history-OD1"):
            colors = trace_colors(page, graph)
            seen.setdefault(colors["Philadelphia, PA"], set()).add((choice, graph))
    assert len(seen) == 1, seen  # one colour for Philadelphia in every selection and every chart
    # and the page's legend (one for every chart) shows it in that colour
    swatch = page.locator("#cmp-chosen-philadelphia .legend-swatch").evaluate(
        "e => getComputedStyle(e).backgroundColor")
    assert swatch == _rgb(next(iter(seen))), (swatch, seen)
    assert errors == []


@contextmanager
def served_copy(e2e_db, tmp_path, extra_cities=(), change=None):
    """A copy of the e2e database (changed by `change(engine, cfg)`), on a server of its own."""
    import sqlite3
    import threading

    from werkzeug.serving import make_server

    from maturity import app
    from tests.layouts import filler

    url, _ = e2e_db
    src, dst = url.removeprefix("sqlite:///"), tmp_path / "copy.db"
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    new_url = f"sqlite:///{dst}"
    cfg = filler.make_settings(list(extra_cities) + [(k, n) for k, n, _ in filler.CITIES], tmp_path / "config.toml",
                               new_url)
    engine = storage.open_db(new_url)
    storage.sync_config(engine, cfg)
    if change is not None:
        change(engine, cfg)
    srv = make_server("127.0.0.1", 0, app.create_app(cfg, url=new_url, warm=False).server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join()
        storage.dispose(new_url)


@pytest.fixture
def unscored_city_url(e2e_db, tmp_path):
    """The e2e database plus a city that sorts first and has never been scored."""
    with served_copy(e2e_db, tmp_path, [("albany", "Albany, NY")]) as base:
        yield base


def test_plain_compare_opens_on_scored_cities(page, unscored_city_url, errors):
    from tests.layouts import filler

    page.goto(unscored_city_url + "/compare")
    chosen = page.locator("#cmp-chosen .badge")
    # by hand: the four test cities are scored, Albany (first by key) never was
    expect(chosen).to_have_text([n for _, n, _ in filler.CITIES], timeout=TIMEOUT_MS)
    assert errors == []


# --- item 10: a phone (390 px): the navigation folds away, grids stay readable ---------------------------

def test_phone_navigation_collapses_and_tables_stay_readable(page, live_url, errors):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_url + "/city/chicago")
    expect(page.locator("#city-cards .criterion-card").first).to_be_visible(timeout=TIMEOUT_MS)
    compare = page.locator("#nav-compare")
    expect(compare).to_be_hidden()  # folded behind the menu button
    page.locator("#nav-toggler").click()
    expect(compare).to_be_visible(timeout=TIMEOUT_MS)
    # the page itself never scrolls sideways; wide grids scroll inside their own box
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    # open a criterion whose datasets fail it (DM4, data quality), as a CDO taps a score
    page.locator(".score-link[data-criterion='DM4']").click()
    title = page.locator("#city-drill-grid .ag-header-cell[role='columnheader'][col-id='title']")
    title.scroll_into_view_if_needed(timeout=TIMEOUT_MS)
    # the dataset title column (flex 3) keeps a readable width: 300 px, not the ~90 px that fits the screen
    assert title.bounding_box()["width"] >= 299
    compare.click()
    expect(page).to_have_url(re.compile(r"/compare"), timeout=TIMEOUT_MS)
    expect(page.locator("#nav-datasets")).to_be_hidden(timeout=TIMEOUT_MS)  # following a link folds it again
    settle(page)
    assert errors == []


def test_phone_grid_paging_bar_wraps_instead_of_overlapping(page, live_url, errors):
    """With AG Grid's CSS theme (layouts/_grid.py) the paging bar stayed one line at 390 px: "Page 1 of 68" was drawn
    over the row count. Its parts now wrap onto two lines, none over another."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_url + "/datasets")
    expect(page.locator("#ds-grid .ag-row .ag-cell-value").first).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    # every piece of text in the bar (labels, numbers, "of") with its box
    parts = page.evaluate("""() => Array.from(document.querySelectorAll('#ds-grid .ag-paging-panel *'))
        .filter(el => !el.children.length && el.textContent.trim() && el.getClientRects().length)
        .map(el => { const r = el.getBoundingClientRect();
                     return {text: el.textContent.trim(), x: r.x, y: r.y, width: r.width, height: r.height}; })""")
    assert {"Page", "of"} <= {p["text"] for p in parts}, parts

    def apart(a: dict, b: dict) -> bool:
        return (a["x"] + a["width"] <= b["x"] + 1 or b["x"] + b["width"] <= a["x"] + 1
                or a["y"] + a["height"] <= b["y"] + 1 or b["y"] + b["height"] <= a["y"] + 1)

    assert all(apart(a, b) for i, a in enumerate(parts) for b in parts[i + 1:]), parts
    assert min(p["x"] for p in parts) >= 0, parts  # "Page Size:" was pushed off the left edge
    assert errors == []


# --- item 5: words a CDO uses -----------------------------------------------------------------------------

def test_names_titles_and_cadences_instead_of_codes(page, live_url, errors, e2e_db):
    import indicators
    from indicators import criteria

    url, _ = e2e_db
    wwc = criteria.wwc_criteria()
    names = dict(zip(wwc["criterion"], wwc["title"], strict=True))
    # heatmap rows: the id and the start of the criterion's name
    page.goto(live_url + "/")
    ticks = page.locator("#ov-matrix .ytick text")
    expect(ticks.first).to_be_visible(timeout=TIMEOUT_MS)
    for t in ticks.all_text_contents():
        code = t.split(" · ")[0]
        assert t.startswith(f"{code} · {names[code][:10]}"), t
    # drill-down "Fails": indicator titles, not keys
    latest = storage.latest_scores(storage.open_db(url), "chicago")
    od1 = latest[(latest["criterion"] == "OD1") & (latest["indicator"] != "")]
    keys, titles = set(od1["indicator"]), {i.key: i.title for i in indicators.REGISTRY}
    page.goto(live_url + "/city/chicago?criterion=OD1")
    fails = page.locator("#city-drill-grid .ag-center-cols-container [col-id='indicators']")
    # the rows are drawn (empty) before their block of data arrives: wait for the block, not for the rows
    expect(page.locator("#city-drill-grid .ag-row-loading")).to_have_count(0, timeout=TIMEOUT_MS)
    expect(fails.first).to_have_text(re.compile(r"\S"), timeout=TIMEOUT_MS)
    for text in fails.all_inner_texts():
        assert not any(k in text for k in keys), text
        assert set(text.split(", ")) <= {titles[k] for k in keys}, text
    # OD1 says what it measures: a low score is not a verdict on a city's open data law
    expect(page.locator("#city-note-OD1")).to_contain_text("policy itself needs a record on the Evidence page")
    # Methodology: heading once, criterion names, no "None"
    page.goto(live_url + "/methodology")
    body = page.locator("#meth-body")
    expect(body.locator("h2").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Methodology", exact=True)).to_have_count(1)
    expect(body).to_contain_text(f"OD1 · {names['OD1']}")
    assert "None" not in body.inner_text()
    settle(page)
    assert errors == []


CADENCES = {"P1D": "daily", "P3M": "every 3 months", "PT1H": "hourly"}  # as DCAT-US / Socrata declare them


def test_declared_cadence_in_words(page, e2e_db, tmp_path, errors):
    """The test catalogs declare no frequency: a later Philadelphia run declares three, as portals write them."""
    import dataclasses
    from datetime import timedelta

    from tests.layouts import filler

    def declare(engine, cfg):
        cat = storage.city_catalog(engine, "philadelphia")
        recs = filler.records_from_catalog(cat)
        for i, iso in enumerate(CADENCES):
            recs[i] = dataclasses.replace(recs[i], declared_frequency=iso, raw_hash=f"declared-{iso}")
        last = storage.runs(engine, city_key="philadelphia").iloc[0]
        filler.save_run(engine, last["portal_key"], recs, last["as_of"].to_pydatetime() + timedelta(days=7))

    with served_copy(e2e_db, tmp_path, change=declare) as base:
        page.goto(base + "/datasets?cities=philadelphia")
        grid = page.locator("#ds-grid")
        expect(grid.locator(".ag-row").first).to_be_visible(timeout=TIMEOUT_MS)
        grid.locator("[col-id='declared_frequency'] .ag-header-cell-label").click()  # sort: declared first
        cells = grid.locator(".ag-center-cols-container [col-id='declared_frequency']")
        expect(cells.filter(has_text="every 3 months")).to_have_count(1, timeout=TIMEOUT_MS)
        shown = {c for c in cells.all_inner_texts() if c}
        assert shown == set(CADENCES.values()), shown
        settle(page)
    assert errors == []


def test_axis_labels_are_not_cut_off(page, live_url, errors):
    page.goto(live_url + "/city/chicago")
    graph = page.locator("#city-departments")
    expect(graph.locator(".main-svg").first).to_be_attached(timeout=TIMEOUT_MS)
    settle(page)  # every callback answered: the chart is not redrawn under the measurement
    graph.scroll_into_view_if_needed(timeout=TIMEOUT_MS)
    ticks = graph.locator(".xtick text")
    expect(ticks.last).to_have_text("100", timeout=TIMEOUT_MS)  # the last tick is drawn …
    box, frame = ticks.last.bounding_box(), graph.locator(".main-svg").first.bounding_box()
    assert box["x"] + box["width"] <= frame["x"] + frame["width"]  # … inside the chart, not clipped at its edge
    assert errors == []
