"""Time travel's pure parts (layouts/_as_of.py) and the figure rules it brought: rank among scored cities, flagged
scores drawn off the lines, the demo's recordings told apart from a stopped harvest. Expected values by hand."""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

import pandas as pd

from layouts import _as_of
from layouts import _figures as fig
from tests.layouts.test_figures import HISTORY, T, score_rows


def test_parse_takes_real_dates_only():
    assert _as_of.parse("2020-07-25") == "2020-07-25"
    # not a date, half typed in a date box, the wrong shape, nothing
    for text in ("2020-13-01", "2020-02-30", "0202-07-25", "1989-12-31", "2020-7-25", "last week", "", None, 20200725):
        assert _as_of.parse(text) is None, text
    assert _as_of.parse("1990-01-01") == "1990-01-01"


def test_end_of_day_and_clock():
    assert _as_of.end_of_day("2020-07-25") == T("2020-07-25 23:59:59")
    assert _as_of.end_of_day(None) is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert _as_of.clock(None, now) == now
    assert _as_of.clock("2020-07-25", now) == datetime(2020, 7, 25, 23, 59, 59, tzinfo=UTC)


def test_href_keeps_the_query_and_sets_or_drops_the_date():
    assert _as_of.href("/city/chicago", "2020-07-25") == "/city/chicago?as_of=2020-07-25"
    assert _as_of.href("/city/chicago", None) == "/city/chicago"
    # the page's own parameters stay, an old date is replaced, commas stay readable
    assert _as_of.href("/compare?cities=a,b&as_of=2019-01-01", "2020-07-25") == "/compare?cities=a,b&as_of=2020-07-25"
    assert _as_of.href("/compare?cities=a,b&as_of=2019-01-01", None) == "/compare?cities=a,b"
    link = _as_of.href("/datasets", "2020-07-25", {"cities": "chicago", "department": "Parks & Rec", "x": None})
    assert unquote(link.replace("+", " ")) == "/datasets?cities=chicago&department=Parks & Rec&as_of=2020-07-25"
    assert _as_of.href("", None, {"city": "a"}) == "?city=a" and _as_of.href("", None) == ""


def test_until_and_latest_scoring_per_city():
    # HISTORY: a scored 01-01, 03-01, 04-15; b 04-10
    assert _as_of.until(HISTORY, None) is HISTORY
    kept = _as_of.until(HISTORY, "2024-03-01")  # the end of 03-01 keeps a's 01-01 and 03-01 scorings
    assert sorted(set(kept["as_of"])) == [T("2024-01-01"), T("2024-03-01")]
    latest = _as_of.scores_at(HISTORY, "2024-04-12", latest=True)
    # a's newest by 04-12 is 03-01 (3 rows), b's is 04-10 (3 rows)
    assert {(k, t) for k, t in zip(latest["city_key"], latest["as_of"], strict=True)} == {
        ("a", T("2024-03-01")), ("b", T("2024-04-10"))}
    assert len(latest) == 6
    assert _as_of.until(HISTORY, "2023-12-31").empty


def test_ranks_share_a_rank_on_ties_and_skip_the_next():
    totals = pd.DataFrame({"city_key": ["a", "a", "b", "c", "d", "e"],
                           "as_of": [T("2024-01-01"), T("2024-02-01"), T("2024-02-01"), T("2024-02-01"),
                                     T("2024-02-01"), T("2024-02-01")],
                           "value": [90.0, 40.04, 55.0, 40.0, 10.0, None], "stage": None})
    ranks = fig.overall_ranks(totals)
    # latest per city: a 40.04 (shown 40.0), b 55, c 40.0, d 10; e has no value: not ranked, not counted
    assert ranks.set_index("city_key")["rank"].to_dict() == {"b": 1, "a": 2, "c": 2, "d": 4}
    assert set(ranks["of"]) == {4}
    assert fig.rank_text(ranks, "b") == "rank 1 of 4 scored cities"
    assert fig.rank_text(ranks, "c") == "rank 2 (tied) of 4 scored cities"
    assert fig.rank_text(ranks, "e") is None
    assert fig.rank_text(fig.overall_ranks(totals[totals["city_key"] == "d"]), "d") == "rank 1 of 1 scored city"


def test_flagged_overall_uses_the_one_rule_and_keeps_the_flag():
    flagged = score_rows([("a", "2024-02-01", "DM4", "", 80.0, "leading"),
                          ("a", "2024-02-01", "OD1", "", 0.0, "not evident"),
                          ("a", "2024-02-01", "DM4", "dm4_fresh", 80.0, None)]).assign(flag="partial")
    out = fig.flagged_overall(flagged)
    # (80 + 0) / the 8 criteria with indicators = 10
    assert list(out["value"]) == [10.0] and list(out["flag"]) == ["partial"]
    assert fig.flagged_points(out) == [(T("2024-02-01"), 10.0, "partial")]
    assert fig.flagged_points(None) == []


def test_sparkline_draws_flagged_scores_as_hollow_points_off_the_line():
    series = pd.DataFrame({"as_of": [T("2024-01-01"), T("2024-03-01")], "value": [0.0, 100.0]})
    flagged = pd.DataFrame({"as_of": [T("2024-02-01")], "value": [50.0], "flag": ["partial"]})
    svg = unquote(fig.sparkline_svg(series, width=104, height=44, flagged=flagged))
    # the line has the two complete runs only; x spans 01-01..03-01 (60 days) over 96 px from 4 (fig.INSET):
    # 02-01 is day 31
    assert "points='4.0,40.0 100.0,4.0'" in svg
    assert f"<circle class='flagged' cx='{4 + 31 / 60 * 96:.1f}' cy='22.0' r='2.5' fill='white'" in svg
    assert "class='flagged'" not in unquote(fig.sparkline_svg(series, width=104, height=44))


def test_city_chart_marks_flagged_scores_without_joining_them():
    flagged = score_rows([("a", "2024-02-01", "DM4", "", 5.0, "not evident"),
                          ("a", "2024-02-01", "DM4", "dm4_fresh", 5.0, None),
                          ("a", "2024-02-01", "OD1", "", 0.0, "not evident")]).assign(flag="partial")
    figure = fig.criterion_history(HISTORY[HISTORY["city_key"] == "a"], "DM4", flagged=flagged)
    lines = [t for t in figure.data if "lines" in t.mode]
    marks = [t for t in figure.data if t.mode == "markers"]
    # the lines hold the three complete scorings only; one hollow marker for the criterion, one for its indicator
    assert all(len(t.x) == 3 for t in lines)
    assert len(marks) == 2 and all(t.marker.symbol == "circle-open" for t in marks)
    assert all(list(t.y) == [5.0] and list(t.customdata) == ["partial crawl: not counted"] for t in marks)
    assert all("%{customdata}" in t.hovertemplate for t in marks)
    assert [t.showlegend for t in marks] == [True, False] and marks[0].name == fig.FLAGGED_LEGEND


def test_stale_portals_tell_the_demo_recording_from_a_stopped_harvest():
    runs = pd.DataFrame([
        {"portal_key": "a-socrata", "city_key": "a", "as_of": T("2022-07-23 23:59:59"), "status": "ok",
         "complete": True, "source": "import"},
        {"portal_key": "b-socrata", "city_key": "b", "as_of": T("2022-07-23 23:59:59"), "status": "ok",
         "complete": True, "source": "harvest"},
        {"portal_key": "c-dcat", "city_key": "c", "as_of": T("2022-07-20 23:59:59"), "status": "ok",
         "complete": True, "source": "import"},
    ])
    schedules = dict.fromkeys(("a-socrata", "b-socrata", "c-dcat"), "0 4 * * *")
    # the bundle recorded a and b on 07-23 and c on 07-19: only a's latest run is the demo's own recording
    recorded = {("a-socrata", T("2022-07-23 23:59:59")), ("b-socrata", T("2022-07-23 23:59:59")),
                ("c-dcat", T("2022-07-19 23:59:59"))}
    st = fig.stale_portals(runs, schedules, T("2026-01-01"), recorded=recorded)
    assert st.set_index("portal_key")["demo"].to_dict() == {"a-socrata": True, "b-socrata": False, "c-dcat": False}
    assert not fig.stale_portals(runs, schedules, T("2026-01-01"))["demo"].any()
