"""Scores: save / replace / query, and `explain` back to the failing datasets with their titles."""
from __future__ import annotations

import math

import pandas as pd
import pytest

import storage
from indicators.base import Score
from tests.storage.conftest import CHICAGO, chicago_snapshot, day, save

JUNE, JULY = day("2022-06-15"), day("2022-07-23")
CRITERION_OF = {"freshness": "DM4", "frequency_declared": "DM4", "open_license": "OD2"}


def rollup(rows):
    return pd.DataFrame(rows, columns=["criterion", "value", "stage", "indicators"])


def june_scores():
    # Failing ids are real Chicago datasets of the 2022-06-15 snapshot: ydr8-5enu "Building Permits",
    # 28km-gtjn "Fire Stations" (titles read from the file with jq).
    return {
        "freshness": Score(value=75.0, numerator=3, denominator=4,
                           failing={"28km-gtjn": "data last updated 2011-08-21, declared monthly"}),
        "frequency_declared": Score(value=50.0, numerator=1, denominator=2,
                                    failing={"ydr8-5enu": "no declared update frequency",
                                             "28km-gtjn": "no declared update frequency"},
                                    matches={"22u3-xenr": "Metadata_Frequency=Daily"}),
        "open_license": Score(value=None, numerator=0, denominator=0),  # nothing to measure
    }


def test_save_query_and_replace_scores(engine):
    storage.save_scores(engine, "chicago", JUNE, june_scores(),
                        rollup([("DM4", 62.5, "developing", 2), ("OD2", float("nan"), "not evident", 1)]),
                        criterion_of=CRITERION_OF)
    s = storage.scores(engine, "chicago")
    assert list(s.columns) == ["city_key", "as_of", "criterion", "indicator", "value", "numerator",
                               "denominator", "stage", "flag"]
    assert s["flag"].isna().all()  # scores of complete crawls carry no flag
    # 3 indicator rows + 2 criterion roll-up rows (indicator "").
    assert len(s) == 5
    dm4 = s[(s.criterion == "DM4") & (s.indicator == "")].iloc[0]
    assert dm4.value == 62.5 and dm4.stage == "developing" and dm4.as_of == JUNE
    od2 = s[(s.criterion == "OD2") & (s.indicator == "")].iloc[0]
    assert math.isnan(od2.value) and od2.stage == "not evident"
    fresh = s[s.indicator == "freshness"].iloc[0]
    assert (fresh.criterion, fresh.value, fresh.numerator, fresh.denominator) == ("DM4", 75.0, 3.0, 4.0)
    assert math.isnan(s[s.indicator == "open_license"].iloc[0].value)

    # Saving the same (city, as_of) again replaces, it does not add.
    changed = dict(june_scores(), freshness=Score(value=100.0, numerator=4, denominator=4))
    storage.save_scores(engine, "chicago", JUNE, changed, rollup([("DM4", 75.0, "established", 2)]),
                        criterion_of=CRITERION_OF)
    s = storage.scores(engine, "chicago")
    assert len(s) == 4  # 3 indicators + the one roll-up row given this time
    assert s[s.indicator == "freshness"].iloc[0].value == 100.0

    # A later date adds rows; latest_scores keeps each city's newest date only.
    storage.save_scores(engine, "chicago", JULY, {"freshness": Score(value=80.0, numerator=4, denominator=5)},
                        rollup([("DM4", 80.0, "established", 1)]), criterion_of=CRITERION_OF)
    storage.save_scores(engine, "cincinnati", JUNE, {"freshness": Score(value=10.0, numerator=1, denominator=10)},
                        rollup([("DM4", 10.0, "emerging", 1)]), criterion_of=CRITERION_OF)
    assert len(storage.scores(engine)) == 4 + 2 + 2
    assert len(storage.scores(engine, criterion="DM4")) == 3 + 2 + 2
    latest = storage.latest_scores(engine)
    assert sorted(zip(latest.city_key, latest.as_of, latest.indicator, strict=True)) == [
        ("chicago", JULY, ""), ("chicago", JULY, "freshness"), ("cincinnati", JUNE, ""),
        ("cincinnati", JUNE, "freshness")]
    assert list(storage.latest_scores(engine, "cincinnati")["value"]) == [10.0, 10.0]


def test_criterion_scores_are_the_rollup_rows_of_scores(engine):
    # both backends (the engine fixture is parametrised by db_url)
    storage.save_scores(engine, "chicago", JUNE, june_scores(),
                        rollup([("DM4", 62.5, "developing", 2), ("OD2", float("nan"), "not evident", 1)]),
                        criterion_of=CRITERION_OF)
    storage.save_scores(engine, "chicago", JULY, {"freshness": Score(value=80.0, numerator=4, denominator=5)},
                        rollup([("DM4", 80.0, "established", 1)]), criterion_of=CRITERION_OF)
    storage.save_scores(engine, "cincinnati", JUNE, {"freshness": Score(value=10.0, numerator=1, denominator=10)},
                        rollup([("DM4", 10.0, "emerging", 1)]), criterion_of=CRITERION_OF)

    def same(got, want):
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))

    every = storage.scores(engine)
    got = storage.criterion_scores(engine)
    assert list(got.columns) == list(every.columns)
    same(got, every[every.indicator == ""])
    assert len(got) == 4  # chicago June DM4 + OD2, July DM4; cincinnati June DM4
    chicago = storage.scores(engine, "chicago")
    same(storage.criterion_scores(engine, "chicago"), chicago[chicago.indicator == ""])
    # since: rows at or after the date only (the date itself included)
    same(storage.criterion_scores(engine, since=JULY), every[(every.indicator == "") & (every.as_of >= JULY)])
    assert list(storage.criterion_scores(engine, "chicago", since=JULY)["value"]) == [80.0]
    assert storage.criterion_scores(engine, "cincinnati", since=JULY).empty
    assert storage.criterion_scores(engine, "nowhere").empty


def test_flagged_scores_are_kept_but_never_a_line_or_the_latest(engine):
    """Scores of a partial crawl (the 2022-06-29 Chicago short crawl) are stored flagged: every reader leaves
    them out unless asked for the marked points, so a 100 -> 0 -> 100 dip never reaches a line, and the
    latest value stays the one of the last complete crawl."""
    june29 = day("2022-06-29")
    for when, value, flag in ((JUNE, 100.0, None), (june29, 0.0, "partial"), (JULY, 100.0, None)):
        storage.save_scores(engine, "chicago", when,
                            {"freshness": Score(value=value, numerator=value, denominator=100)},
                            rollup([("DM4", value, "leading" if value else "not evident", 1)]),
                            criterion_of=CRITERION_OF, flag=flag)
    lines = storage.criterion_scores(engine, "chicago")
    assert list(zip(lines.as_of, lines.value, strict=True)) == [(JUNE, 100.0), (JULY, 100.0)]  # no dip
    assert list(storage.scores(engine, "chicago")["as_of"].unique()) == [JUNE, JULY]
    marked = storage.criterion_scores(engine, "chicago", flagged=True)
    flags = [f if isinstance(f, str) else None for f in marked.flag]  # missing: None or NaN (pandas' strings)
    assert list(zip(marked.as_of, marked.value, flags, strict=True)) == [
        (JUNE, 100.0, None), (june29, 0.0, "partial"), (JULY, 100.0, None)]
    assert len(storage.scores(engine, "chicago", flagged=True)) == 6

    # The newest scores are flagged (an empty crawl after July): "latest" is still July's.
    aug = day("2022-08-01")
    storage.save_scores(engine, "chicago", aug, {"freshness": Score(value=0.0, numerator=0, denominator=0)},
                        rollup([("DM4", 0.0, "not evident", 1)]), criterion_of=CRITERION_OF, flag="empty")
    assert set(storage.latest_scores(engine, "chicago")["as_of"]) == {JULY}
    assert storage.score_evidence(engine, "chicago", "freshness")[0] == JULY
    # Re-scoring a date with nothing to score (every crawl empty) removes its rows.
    storage.save_scores(engine, "chicago", aug, {}, pd.DataFrame(), criterion_of=CRITERION_OF)
    assert aug not in set(storage.scores(engine, "chicago", flagged=True)["as_of"])
    with pytest.raises(ValueError, match="score flag"):
        storage.save_scores(engine, "chicago", aug, {}, pd.DataFrame(), criterion_of=CRITERION_OF, flag="suspect")


def test_explain_lists_failing_datasets_with_titles(engine):
    snap = chicago_snapshot("2022-06-15")
    save(engine, snap)
    storage.save_scores(engine, "chicago", JUNE, june_scores(), rollup([("DM4", 62.5, "developing", 2)]),
                        criterion_of=CRITERION_OF)
    ex = storage.explain(engine, "chicago", "frequency_declared")
    assert list(ex.columns) == ["source_id", "title", "reason", "landing_url"]
    landing = {r.source_id: r.landing_url for r in snap.records}
    assert ex.to_dict("records") == [
        {"source_id": "ydr8-5enu", "title": "Building Permits", "reason": "no declared update frequency",
         "landing_url": landing["ydr8-5enu"]},
        {"source_id": "28km-gtjn", "title": "Fire Stations", "reason": "no declared update frequency",
         "landing_url": landing["28km-gtjn"]},
    ]
    assert storage.explain(engine, "chicago", "open_license").empty  # nothing failed
    assert storage.explain(engine, "chicago", "no_such_indicator").empty
    # The stored evidence keeps the matches too (explainable matching).
    _, ev = storage.score_evidence(engine, "chicago", "frequency_declared")
    assert ev["matches"] == {"22u3-xenr": "Metadata_Frequency=Daily"}


def test_run_dates_and_live_marker(engine):
    assert storage.latest_run_marker(engine) == ((0, 0), 0)
    for d in ("2022-06-08", "2022-06-29", "2022-06-15"):  # 06-29 (95 ids) against 06-08 (313): suspect
        save(engine, chicago_snapshot(d))
    run_id = storage.start_run(engine, CHICAGO.key, as_of=day("2022-07-01"))
    # started: the id moves; three runs finished so far
    assert storage.latest_run_marker(engine) == ((run_id, 3), 0)
    storage.fail_run(engine, run_id, "PortalUnavailable: HTTP 503", finished_at=day("2022-07-01"))
    # failed: the same newest id, but the marker moves (a failed harvest must not look "running")
    assert storage.latest_run_marker(engine) == ((run_id, 4), 0)
    # crawled runs (complete, partial or empty) are scoreable dates; the failed one is not.
    assert storage.run_dates(engine, "chicago") == [day("2022-06-08"), day("2022-06-15"), day("2022-06-29")]
    storage.save_scores(engine, "chicago", JUNE, june_scores(), rollup([]), criterion_of=CRITERION_OF)
    assert storage.latest_run_marker(engine)[1] > 0
