"""Pure figure builders on small frames shaped as docs/internals.md specifies; expected values by hand."""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from layouts import _figures as fig

T = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731


def score_rows(rows):
    """rows: (city, as_of, criterion, indicator, value, stage) → a storage.scores-shaped frame."""
    return pd.DataFrame([{"city_key": c, "as_of": T(t), "criterion": cr, "indicator": i, "value": v,
                          "numerator": None, "denominator": 10.0 if i else None, "stage": s}
                         for c, t, cr, i, v, s in rows])


HISTORY = score_rows([
    ("a", "2024-01-01", "DM4", "", 40.0, "developing"),
    ("a", "2024-01-01", "OD1", "", 20.0, "emerging"),
    ("a", "2024-01-01", "DM4", "dm4_fresh", 40.0, None),
    ("a", "2024-03-01", "DM4", "", 60.0, "established"),
    ("a", "2024-03-01", "OD1", "", 30.0, "emerging"),
    ("a", "2024-03-01", "DM4", "dm4_fresh", 60.0, None),
    ("a", "2024-04-15", "DM4", "", 70.0, "established"),
    ("a", "2024-04-15", "OD1", "", 90.0, "leading"),
    ("a", "2024-04-15", "DM4", "dm4_fresh", 70.0, None),
    ("b", "2024-04-10", "DM4", "", 10.0, "not evident"),
    ("b", "2024-04-10", "OD1", "", None, "not evident"),
    ("b", "2024-04-10", "DM4", "dm4_fresh", 10.0, None),
])
CITIES = pd.DataFrame({"key": ["a", "b", "c"], "name": ["Alpha", "Beta", "Gamma"]})


def test_overall_score_and_stage_are_one_rule():
    from indicators import criteria

    totals = fig.city_score_history(HISTORY)
    # the same numbers as indicators.criteria.overall for each scoring (one rule, not a second implementation)
    for r in totals.itertuples(index=False):
        at = (HISTORY["city_key"] == r.city_key) & (HISTORY["as_of"] == r.as_of)
        rows = HISTORY[at & (HISTORY["indicator"] == "")]
        assert (r.value, r.stage) == criteria.overall(rows)
    # b: DM4 10 + OD1 without a value (counts 0) + 6 criteria with indicators not scored (0) = 10 / 8 = 1.25
    # (8 criteria carry an indicator: BF1 and RDC7 are possible evidence only, see the README's topic section)
    b = totals[totals["city_key"] == "b"].iloc[0]
    assert (b["value"], b["stage"]) == (1.25, "not evident")


def test_change_since_measures_back_from_the_latest_time():
    totals = fig.city_score_history(HISTORY)
    a = totals[totals["city_key"] == "a"]
    # mean over the 8 criteria with indicators (criteria.OVERALL_CRITERIA), the 6 not in HISTORY counting 0:
    # 01-01 (40+20)/8 = 7.5, 03-01 (60+30)/8 = 11.25, 04-15 (70+90)/8 = 20
    assert list(a["value"]) == [7.5, 11.25, 20.0]
    # 30 days before 04-15 is 03-16: last value at/before is 03-01 (11.25) → +8.75
    assert fig.change_since(a, 30) == 8.75
    # 90 days before 04-15 is 2024-01-16: last at/before is 01-01 (7.5) → +12.5
    assert fig.change_since(a, 90) == 12.5
    # history shorter than the window → None
    assert fig.change_since(a, 365) is None


def test_overview_table_rows_per_city_with_run_status():
    runs = pd.DataFrame([
        {"run_id": 3, "city_key": "a", "portal_key": "a-dcat", "status": "failed", "finished_at": T("2024-04-16"),
         "started_at": T("2024-04-16"), "error": "HTTP 503 after 4 retries", "suspect_reason": None},
        {"run_id": 2, "city_key": "a", "portal_key": "a-dcat", "status": "ok", "finished_at": T("2024-04-15"),
         "started_at": T("2024-04-15"), "error": None, "suspect_reason": None},
    ])
    t = fig.overview_table(CITIES, HISTORY, runs)
    assert list(t["city_key"]) == ["a", "b", "c"]
    a, b, c = (t.iloc[i] for i in range(3))
    assert a["stage"] == "emerging"  # stage(20.0): the stage of the score shown beside it
    # a: 7.5 (01-01), 11.25 (03-01), 20 (04-15). 30 days back is 03-16: the nearest earlier scoring, 03-01, is 15
    # days off (> NEAR_DAYS[30] = 10): no comparison. 90 days back is 01-16: 01-01 is 15 days off (<= 21):
    # 20 - 7.5 = +12.5 over 105 days (01-01 to 04-15: 30 + 29 + 31 + 15)
    assert a["score"] == 20.0 and a["change_30d"] is None and a["change_90d"] == 12.5
    assert a["since_30d"] == "no run near that date" and a["since_90d"] == "+12.5 since 2024-01-01, 105 days"
    assert list(a["series"]["value"]) == [7.5, 11.25, 20.0]  # the trend line: every complete scoring
    assert a["harvest_status"] == "failed" and a["harvest_error"] == "HTTP 503 after 4 retries"
    assert b["score"] == 1.2 and b["stage"] == "not evident" and pd.isna(b["harvest_status"])  # 1.25 shown as 1.2
    assert pd.isna(c["stage"]) and pd.isna(c["score"]) and pd.isna(c["last_harvest"])


def overall_series(points):
    return pd.DataFrame({"as_of": [T(t) for t, _ in points], "value": [v for _, v in points]})


def test_comparison_point_is_the_nearest_scoring_near_30_and_90_days_back():
    s = overall_series([("2022-01-22", 10.0), ("2022-04-23", 20.0), ("2022-05-20", 25.0), ("2022-06-20", 30.0),
                        ("2022-07-23", 40.0)])
    # 90 days before 07-23 is 04-24: 04-23 is 1 day off (05-20 is 26) -> 40 - 20 = +20, 91 days before the latest
    p90 = fig.comparison_point(s, 90)
    assert (p90["as_of"], p90["days"], p90["change"]) == (T("2022-04-23"), 91, 20.0)
    assert fig.change_text(p90) == "+20.0 since 2022-04-23, 91 days"
    # 30 days before is 06-23: 06-20 is 3 days off -> 40 - 30 = +10 over 33 days
    assert fig.change_text(fig.comparison_point(s, 30)) == "+10.0 since 2022-06-20, 33 days"
    # two runs 19 months apart: neither window has a run near it (issue 12 compared them as "30 days")
    far = overall_series([("2020-12-01", 5.0), ("2022-07-23", 40.0)])
    assert fig.comparison_point(far, 30) is None and fig.comparison_point(far, 90) is None
    assert fig.change_text(None) == "no run near that date"
    # four runs in 45 days: 30 days back (06-23) is a run; 90 days back has none (issue 12 showed "–" for both)
    short = overall_series([("2022-06-08", 10.0), ("2022-06-23", 12.0), ("2022-07-08", 11.0), ("2022-07-23", 15.0)])
    assert fig.change_text(fig.comparison_point(short, 30)) == "+3.0 since 2022-06-23, 30 days"
    assert fig.comparison_point(short, 90) is None
    # the latest scoring is never its own comparison point, a single scoring has none
    assert fig.comparison_point(overall_series([("2022-07-23", 40.0)]), 30) is None


def test_overall_summary_and_compare_overall_row_use_the_one_rule():
    from indicators import criteria

    a = HISTORY[HISTORY["city_key"] == "a"]
    o = fig.overall_summary(a)
    last = a[(a["as_of"] == T("2024-04-15")) & (a["indicator"] == "")]
    assert (o["score"], o["stage"]) == criteria.overall(last) == (20.0, "emerging")  # (70 + 90) / 8
    assert o["since_90d"] == "+12.5 since 2024-01-01, 105 days" and o["since_30d"] == "no run near that date"
    assert fig.overall_summary(HISTORY.iloc[0:0]) is None
    # Compare: an "Overall" panel first in the history and a first bar group in the profile
    panels = fig.compare_panels(HISTORY, CITIES, ["a", "b"])
    assert panels[0][:2] == ("Overall", "Overall")
    overall_a = [d for d in panels[0][2]["data"] if d["name"] == "Alpha"][0]
    assert overall_a["y"] == [7.5, 11.25, 20.0]
    latest = HISTORY[HISTORY["as_of"] >= T("2024-04-10")]
    prof = fig.compare_profile(latest, CITIES, ["a", "b"])
    assert list(prof.data[0].x)[0] == "Overall" and list(prof.data[0].y)[0] == 20.0
    assert list(prof.data[1].y)[0] == 1.25  # Beta: DM4 10 / 8
    row = fig.overall_gap_row(latest, ["a", "b"]).iloc[0]
    assert (row["title"], row["a"], row["b"], row["gap"]) == ("Overall score", 20.0, 1.2, 18.8)  # 1.25 -> 1.2


def matrix_cells(f) -> dict[tuple[str, str], dict]:
    """The stage matrix's cells by (criterion, city key): colour, text, hover, column span."""
    bars = f.data[0]
    return {(y, k): {"color": c, "text": t, "hover": h, "span": (b, b + x)}
            for y, k, c, t, h, b, x in zip(bars.y, bars.customdata, bars.marker.color, bars.text, bars.hovertext,
                                          bars.base, bars.x, strict=True)}


def test_stage_matrix_cells_carry_stage_colour_and_score_text():
    latest = HISTORY[HISTORY["as_of"] >= T("2024-04-10")]
    f = fig.stage_matrix(latest, CITIES)
    cells = matrix_cells(f)
    assert list(f.layout.yaxis.tickvals) == ["DM4", "OD1"]
    assert list(f.layout.xaxis.ticktext) == ["Alpha", "Beta", "Gamma"]
    # DM4: established, not evident (a real 10: the grey of a 0), not scored (empty)
    assert [cells["DM4", k]["color"] for k in "abc"] == [fig.STAGE_COLORS["established"],
                                                         fig.STAGE_COLORS["not evident"], fig.EMPTY_CELL]
    assert [cells["DM4", k]["text"] for k in "abc"] == ["70", "10", ""]
    # OD1: Beta has a stage but no value: an empty cell (no colour, no text), not the grey of a real 0
    assert [cells["OD1", k]["color"] for k in "abc"] == [fig.STAGE_COLORS["leading"], fig.EMPTY_CELL, fig.EMPTY_CELL]
    assert [cells["OD1", k]["text"] for k in "abc"] == ["90", "", ""]
    assert cells["OD1", "b"]["hover"] == "Beta · OD1: no value (nothing to measure)"
    assert "Gamma · DM4: not scored" in cells["DM4", "c"]["hover"]
    # city j's cells span j..j+1 of the axis (less the gap), under its name's tick at j + 0.5
    assert cells["OD1", "c"]["span"] == pytest.approx((2 + fig.CELL_GAP / 2, 3 - fig.CELL_GAP / 2))
    assert list(f.layout.xaxis.tickvals) == [0.5, 1.5, 2.5] and list(f.layout.xaxis.range) == [0, 3]


def test_stage_matrix_empty_says_what_to_do():
    f = fig.stage_matrix(HISTORY.iloc[0:0], CITIES)
    assert "maturity demo" in f.layout.annotations[0].text


def test_criterion_cards_and_history_traces():
    cards = fig.criterion_cards(HISTORY[HISTORY["city_key"] == "a"])
    assert list(cards["criterion"]) == ["DM4", "OD1"]
    dm4 = cards.iloc[0]
    assert dm4["value"] == 70.0 and dm4["stage"] == "established"
    assert dm4["change_90d"] == 30.0  # 70 at 04-15 minus 40 at 01-01
    assert len(dm4["series"]) == 3
    f = fig.criterion_history(HISTORY[HISTORY["city_key"] == "a"], "DM4", titles={"dm4_fresh": "Fresh share"},
                              suspect_times=[T("2024-03-01")])
    names = [t.name for t in f.data]
    assert names == ["Fresh share", "DM4 (criterion)"]
    assert list(f.data[1].y) == [40.0, 60.0, 70.0]
    assert len(f.layout.shapes) == 1  # the suspect run's marker line


def catalog(rows):
    base = {"portal_key": "a-dcat", "asset_type": "dataset", "landing_url": None, "title": None,
            "description": None, "keywords": (), "theme": None, "department": None, "contact_name": None,
            "contact_email": None, "license": None, "license_id": None, "declared_frequency": None,
            "data_modified": None, "formats": (), "column_count": None, "described_column_count": None,
            "views": None, "downloads": None, "city_key": "a"}
    return pd.DataFrame([{**base, **r} for r in rows])


AS_OF = datetime(2024, 4, 15, tzinfo=UTC)
CAT = catalog([
    # fresh: monthly, updated 10 days ago; fully documented (6/6)
    {"source_id": "d1", "title": "Permits", "department": "Buildings", "declared_frequency": "P1M",
     "data_modified": T("2024-04-05"), "description": "All building permits issued since 2006.",
     "keywords": ("permits",), "license_id": "cc-by-4.0", "contact_email": "x@y.org", "theme": "Housing",
     "column_count": 10, "described_column_count": 10, "formats": ("CSV", "JSON"), "views": 990,
     "landing_url": "https://data.example.org/d/d1"},
    # monthly, 60 days old: P=30.44, g1=15 → overdue from 45.4 d, delinquent from 60.4 d → overdue
    {"source_id": "d2", "title": "<script>alert(1)</script>", "department": "Buildings",
     "declared_frequency": "P1M", "data_modified": T("2024-02-15"), "column_count": 4,
     "described_column_count": 1, "formats": ("XLSX",), "views": 0, "landing_url": "javascript:alert(1)"},
    # no declared period → "no schedule"; documented: description + licence (2 checks) + no columns (1) = 3/6
    {"source_id": "d3", "title": "Budget", "department": "Finance", "description": "Adopted budget by fund.",
     "license": "Public Domain", "formats": ("CSV",), "views": 10, "downloads": 5},
])


def test_freshness_follows_hdx_aging():
    # HDX aging for a daily period: due from 1 day, overdue from 2, delinquent from 3
    c = catalog([{"source_id": s, "declared_frequency": f, "data_modified": m} for s, f, m in [
        ("a", "P1D", T("2024-04-14T12:00")),  # 0.5 d
        ("b", "P1D", T("2024-04-13T12:00")),  # 1.5 d
        ("c", "P1D", T("2024-04-12T12:00")),  # 2.5 d
        ("d", "P1D", T("2024-04-01")),
        ("e", "irregular", T("2024-04-01")),
        ("f", "R/P1W", None),
    ]])
    assert fig.freshness_states(c, AS_OF) == ["fresh", "due", "overdue", "delinquent", "no schedule", "unknown"]


def test_dataset_table_derives_freshness_doc_score_and_safe_links():
    t = fig.dataset_table(CAT, AS_OF)
    assert list(t["freshness"]) == ["fresh", "overdue", "no schedule"]
    # the OD2 documentation index per dataset (DOC_WEIGHTS: description 20, dictionary 25, attachments 10,
    # keywords 15, category 15, contact 15; the dictionary only for assets with columns):
    # d1: description 39 chars < 100 fails, dictionary 10/10, no attachment, keywords, theme, e-mail → 70/100
    # d2: only 1 of 4 columns described → 25 * 0.25 / 100 = 6.25 → 6.2 shown
    # d3: short description, no columns (dictionary not applicable), nothing else → 0/75 (licence is not OD2)
    assert list(t["doc_score"]) == [70.0, 6.2, 0.0]
    assert [None if pd.isna(x) else x for x in t["license"]] == ["cc-by-4.0", None, "Public Domain"]
    assert list(t["formats"]) == ["CSV, JSON", "XLSX", "CSV"]
    assert [None if pd.isna(x) else x for x in t["landing_url"]] == ["https://data.example.org/d/d1", None, None]
    assert t.loc[1, "title"] == "<script>alert(1)</script>"  # kept verbatim; rendered as text by the grid


def test_doc_score_is_the_od2_indicator_per_dataset():
    # A real catalog (Chicago's 2022-07-23 scrape, 260 assets): the explorer's per-dataset values average, over
    # the public data assets the indicator counts, to the OD2 documentation index the City page shows.
    from connectors.archive import read_items
    from connectors.base import records_frame
    from connectors.socrata import SocrataConnector
    from indicators.derived import derive
    from indicators.open_data import documentation_index
    from tests.conftest import FIXTURES
    from tests.emulator import portal_config

    items, _ = read_items(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz", "socrata")
    conn = SocrataConnector(portal_config("socrata", "https://data.cityofchicago.org", domain="x"))
    cat = records_frame([conn.normalize(it) for it in items])
    score = documentation_index(cat, AS_OF)
    table = fig.dataset_table(cat, AS_OF)
    data = derive(cat, AS_OF).data
    assert len(table) == 260 and 0 < data.sum() <= 260
    assert abs(table["doc_score"][data].mean() - score.value) < 0.05  # rounding to 0.1 per dataset only
    # and the datasets it fails are those below 100 in the explorer
    assert set(score.failing) == set(table["source_id"][data & (table["doc_score"] < 100).to_numpy()])


def test_filter_datasets_combines_filters():
    t = fig.dataset_table(CAT, AS_OF)
    assert list(fig.filter_datasets(t, departments=["Buildings"])["source_id"]) == ["d1", "d2"]
    assert list(fig.filter_datasets(t, freshness=["overdue", "delinquent"])["source_id"]) == ["d2"]
    assert list(fig.filter_datasets(t, min_doc=50)["source_id"]) == ["d1"]
    assert list(fig.filter_datasets(t, max_doc=49)["source_id"]) == ["d2", "d3"]
    assert list(fig.filter_datasets(t, formats=["csv"])["source_id"]) == ["d1", "d3"]
    # the licence filter works on normalized ids: "Public Domain" has no id here, d2 has no licence at all
    assert list(t["license_id"]) == ["cc-by-4.0", fig.LICENCE_NONE, fig.LICENCE_UNRECOGNISED]
    assert list(fig.filter_datasets(t, licenses=[fig.LICENCE_UNRECOGNISED], cities=["a"])["source_id"]) == ["d3"]
    assert list(fig.filter_datasets(t, licenses=["cc-by-4.0", fig.LICENCE_NONE])["source_id"]) == ["d1", "d2"]
    assert fig.format_options(t) == ["CSV", "JSON", "XLSX"]


def test_menu_options_are_capped_commonest_first_and_searchable():
    t = fig.dataset_table(CAT, AS_OF)
    counts = fig.value_counts(t, "formats")  # CSV in d1 and d3, JSON in d1, XLSX in d2
    assert counts.to_dict() == {"CSV": 2, "JSON": 1, "XLSX": 1}
    assert fig.capped_options(counts, cap=2) == [{"label": "CSV (2)", "value": "CSV"},
                                                 {"label": "JSON (1)", "value": "JSON"}]
    # a chosen value always stays listed, first; typing finds values past the cap
    assert [o["value"] for o in fig.capped_options(counts, ["XLSX"], cap=1)] == ["XLSX", "CSV"]
    assert [o["value"] for o in fig.capped_options(counts, search="xl", cap=1)] == ["XLSX"]


def test_department_breakdown_worst_first():
    b = fig.department_breakdown(fig.dataset_table(CAT, AS_OF))
    assert list(b["department"]) == ["Buildings", "Finance"]
    assert b.iloc[0][["datasets", "stale_pct", "undocumented_pct", "views"]].tolist() == [2, 50.0, 50.0, 990.0]
    # Finance's one dataset (d3) scores 0 on the OD2 documentation index: undocumented (below 50)
    assert b.iloc[1][["datasets", "stale_pct", "undocumented_pct"]].tolist() == [1, 0.0, 100.0]


def test_fix_first_ranks_points_times_usage():
    t = fig.dataset_table(CAT, AS_OF)
    failing = pd.DataFrame([
        {"indicator": "dm4_fresh", "source_id": "d2", "reason": "overdue", "title": "x", "landing_url": None},
        {"indicator": "dm2_doc", "source_id": "d2", "reason": "no description", "title": "x", "landing_url": None},
        {"indicator": "dm2_doc", "source_id": "d3", "reason": "no keywords", "title": "Budget", "landing_url": None},
        # not a dataset of the catalog (e.g. a missing key dataset): nothing to fix on the portal
        {"indicator": "od3_census", "source_id": "census:crime", "reason": "no match", "title": None,
         "landing_url": None},
    ])
    # dm4_fresh: weight 1 of its criterion, 2 datasets counted → 50 points; dm2_doc: 0.5 weight, 4 counted → 12.5
    r = fig.fix_first(failing, t, {"dm4_fresh": 1.0, "dm2_doc": 0.5, "od3_census": 1.0},
                      {"dm4_fresh": 2, "dm2_doc": 4, "od3_census": 20})
    assert list(r["source_id"]) == ["d2", "d3"]
    assert r.loc[0, "points"] == 62.5 and r.loc[0, "usage"] == 0
    assert r.loc[0, "priority"] == 62.5  # × log10(10 + 0) = 1
    assert r.loc[1, "points"] == 12.5 and r.loc[1, "usage"] == 15
    assert r.loc[1, "priority"] == round(12.5 * 1.3979400086720377, 2)  # log10(25)
    assert r.loc[0, "indicators"] == "dm2_doc, dm4_fresh"


def test_compare_builders():
    latest = HISTORY[HISTORY["as_of"] >= T("2024-04-10")]
    panels = fig.compare_panels(HISTORY, CITIES, ["a", "b"], {"DM4": "Data Quality"})
    # the overall score's panel first, then DM4 and OD1, each a figure of its own with a line per city
    assert [(c, label) for c, label, _ in panels] == [("Overall", "Overall"), ("DM4", "DM4 · Data Quality"),
                                                      ("OD1", "OD1")]
    assert [[t["name"] for t in f["data"]] for _, _, f in panels] == [["Alpha", "Beta"]] * 3
    dm4 = panels[1][2]
    assert dm4["data"][0]["y"] == [40.0, 60.0, 70.0]  # Alpha's DM4 over time
    # the same axes in every panel: 0-100 and every run's date (2024-01-01 .. 2024-04-15, 105 days, 3% each side)
    assert {str(f["layout"]["yaxis"]["range"]) for _, _, f in panels} == {"[-2, 102]"}
    start, end = (pd.Timestamp(x) for x in dm4["layout"]["xaxis"]["range"])
    assert (start, end) == (T("2024-01-01") - pd.Timedelta(days=3.15), T("2024-04-15") + pd.Timedelta(days=3.15))
    assert all(f["layout"]["xaxis"]["range"] == dm4["layout"]["xaxis"]["range"] for _, _, f in panels)
    assert all(f["layout"]["showlegend"] is False for _, _, f in panels)  # the page's legend serves them all
    import plotly.graph_objects as go

    for _, _, f in panels:
        go.Figure(f)  # a valid figure (plotly validates every key here)
    assert fig.compare_panels(HISTORY, CITIES, ["zz"]) == []  # no scores for the chosen cities: no panel
    p = fig.compare_profile(latest, CITIES, ["b", "a"])
    assert [t.name for t in p.data] == ["Beta", "Alpha"]
    assert list(p.data[1].y) == [20.0, 70.0, 90.0]  # Alpha: overall (70 + 90) / 8, DM4, OD1
    gaps = fig.indicator_gaps(latest, ["a", "b"], {"dm4_fresh": "Fresh share"})
    first = gaps.iloc[0][["indicator", "title", "a", "b", "gap"]].tolist()
    assert first == ["dm4_fresh", "Fresh share", 70.0, 10.0, 60.0]


def test_run_log_and_counts():
    runs = pd.DataFrame([
        {"run_id": 2, "city_key": "a", "portal_key": "a-dcat", "source": "harvest", "as_of": T("2024-04-16"),
         "finished_at": T("2024-04-16"), "duration_s": 12.345, "status": "suspect", "items": 40,
         "reported_total": 120, "repeats": 0, "new_versions": 0, "removed": 0, "error": None,
         "suspect_reason": "40 items < 0.4 x 120"},
        {"run_id": 1, "city_key": "a", "portal_key": "a-dcat", "source": "harvest", "as_of": T("2024-04-15"),
         "finished_at": None, "duration_s": None, "status": "failed", "items": 0, "reported_total": None,
         "repeats": 0, "new_versions": 0, "removed": 0, "error": "timeout", "suspect_reason": None},
    ])
    log = fig.run_log(runs)
    assert log["problem"].tolist() == ["40 items < 0.4 x 120", "timeout"]
    assert log.loc[0, "duration_s"] == 12.3
    assert fig.run_status_counts(runs) == {"ok": 0, "suspect": 1, "failed": 1, "running": 0}
    tl = fig.run_timeline(runs)
    assert list(tl.data[0].marker.symbol) == ["x", "diamond"]  # sorted by time: failed then suspect


def test_palette_is_okabe_ito():
    okabe_ito = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000", "#999999"}
    assert set(fig.STAGE_COLORS.values()) <= okabe_ito
    assert set(fig.SERIES_COLORS) <= okabe_ito


def test_department_labels_escape_plotly_markup():
    b = pd.DataFrame({"department": ['<a href="https://evil.example">Parks</a>'], "datasets": [1],
                      "stale_pct": [0.0], "undocumented_pct": [0.0], "views": [0]})
    f = fig.department_figure(b)
    label = f.data[0].y[0]
    assert "<" not in label and label.startswith("&lt;a href=")
    assert f.data[0].customdata[0] == '&lt;a href="https://evil.example"&gt;Parks&lt;/a&gt;'


def test_stage_matrix_cells_carry_city_and_criterion_for_click_through():
    latest = HISTORY[HISTORY["as_of"] >= T("2024-04-10")]
    bars = fig.stage_matrix(latest, CITIES).data[0]
    # a click's point: y the criterion, customdata the city key (overview.cell_href)
    assert list(zip(bars.y, bars.customdata, strict=True)) == [("DM4", "a"), ("DM4", "b"), ("DM4", "c"),
                                                  ("OD1", "a"), ("OD1", "b"), ("OD1", "c")]


def test_sparkline_svg_draws_the_series_on_a_fixed_0_100_scale():
    from urllib.parse import unquote

    s = pd.DataFrame({"as_of": [T("2024-01-01"), T("2024-01-11"), T("2024-01-21")], "value": [0.0, 50.0, 100.0]})
    svg = unquote(fig.sparkline_svg(s, width=104, height=44).removeprefix("data:image/svg+xml;utf8,"))
    # 4 px clear of the edges (fig.INSET), so the end points' circles are whole: x 4 + share of the time span
    # x 96; y 40 - value / 100 x 36 (0 at the bottom, 100 at the top)
    assert "points='4.0,40.0 52.0,22.0 100.0,4.0'" in svg
    assert "<circle cx='100.0' cy='4.0'" in svg  # the latest value marked
    assert "<polyline" not in unquote(fig.sparkline_svg(s.iloc[:1]))  # one run: a dot, no line


def test_schedule_interval_reads_the_cron_line_as_the_scheduler_does():
    from datetime import timedelta

    assert fig.schedule_interval("0 4 * * *") == timedelta(days=1)
    assert fig.schedule_interval("0 3 * * 1") == timedelta(days=7)  # Mondays (crontab weekday 1)
    assert fig.schedule_interval("0 4 1 * *") == timedelta(days=31)  # monthly: the longest month
    assert fig.schedule_interval("0 */6 * * *") == timedelta(hours=6)
    assert fig.schedule_interval("0 4 * * 1,3") == timedelta(days=5)  # Wed -> Mon is the longer gap


def test_stale_portals_are_older_than_twice_their_schedule():
    runs = pd.DataFrame([
        # weekly portal: last complete 04-01, a later failed run does not count; at 04-16 12:00 it is 15.25 days
        # old > 2 x 7 days -> stale
        {"portal_key": "a-dcat", "city_key": "a", "as_of": T("2024-04-15"), "status": "failed", "complete": False},
        {"portal_key": "a-dcat", "city_key": "a", "as_of": T("2024-04-01"), "status": "ok", "complete": True},
        # daily portal: complete 04-15 06:00, 30 h old < 2 x 24 h -> fine; its partial run later changes nothing
        {"portal_key": "b-socrata", "city_key": "b", "as_of": T("2024-04-15 06:00"), "status": "ok", "complete": True},
        {"portal_key": "b-socrata", "city_key": "b", "as_of": T("2024-04-16"), "status": "suspect",
         "complete": False},
        # a portal that never completed a run is left to the failing / no-harvest states
        {"portal_key": "c-ckan", "city_key": "c", "as_of": T("2023-01-01"), "status": "failed", "complete": False},
    ])
    schedules = {"a-dcat": "0 3 * * 1", "b-socrata": "0 4 * * *", "c-ckan": "0 4 * * *"}
    now = T("2024-04-16 12:00")
    st = fig.stale_portals(runs, schedules, now)
    assert list(st["portal_key"]) == ["a-dcat"]
    assert st.iloc[0]["last_complete"] == T("2024-04-01") and fig.duration_words(st.iloc[0]["age"]) == "15 days"
    assert fig.duration_words(st.iloc[0]["interval"]) == "7 days"
    # the daily portal once two days pass without a complete run (06:00 + 48 h is not yet "older than")
    assert list(fig.stale_portals(runs, schedules, T("2024-04-17 06:00"))["portal_key"]) == ["a-dcat"]
    assert list(fig.stale_portals(runs, schedules, T("2024-04-17 06:01"))["portal_key"]) == ["a-dcat", "b-socrata"]


def test_schema_error_rows_list_each_dataset_with_its_messages():
    from connectors.base import SchemaCheck

    check = SchemaCheck(schema="POD v1.1 non-federal", entries=3, error_count=4, errors={
        "d1": ("contactPoint/hasEmail: 'mailto:x' does not match",),
        "": ("conformsTo: required",),
        "d2": ("'' is too short", "accessLevel: 'open' is not one of ['public']"),
    })
    datasets = pd.DataFrame({"source_id": ["d1", "d2", "d3"], "title": ["Crimes", "Permits", "Budget"],
                             "landing_url": ["https://x/d1", None, "https://x/d3"]})
    rows = fig.schema_error_rows({"c-dcat": check, "c-socrata": None}, datasets)
    # the document first, then the dataset with most messages (d2: 2), then d1; d3 validates and is not listed
    assert list(rows["title"]) == [fig.DOCUMENT_TITLE, "Permits", "Crimes"]
    assert list(rows["errors"]) == [1, 2, 1]
    assert rows.iloc[1]["messages"] == "'' is too short | accessLevel: 'open' is not one of ['public']"
    assert rows.iloc[2]["landing_url"] == "https://x/d1" and set(rows["portal_key"]) == {"c-dcat"}
    # the commonest messages, counted once per dataset: each of the four here is on one dataset; ties by text
    assert fig.schema_error_kinds(rows, top=2).to_dict() == {"'' is too short": 1,
                                                             "accessLevel: 'open' is not one of ['public']": 1}
    twice = pd.DataFrame({"messages": ["a | b", "b", "c | b | b", "a", "z"]})  # b on 3 datasets, a on 2
    assert fig.schema_error_kinds(twice).to_dict() == {"b": 3, "a": 2, "c": 1, "z": 1}
    # an id the catalog does not hold shows the id itself
    odd = fig.schema_error_rows({"c-dcat": SchemaCheck("s", 1, 1, {"zz": ("m",)})}, datasets)
    assert list(odd["title"]) == ["zz"]
