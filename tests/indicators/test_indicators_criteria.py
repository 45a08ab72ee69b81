"""criteria.rollup / statuses / certification_estimate on hand-made Score sets."""
from __future__ import annotations

import pandas as pd
import pytest

from indicators import criteria
from indicators.base import Score
from indicators.registry import REGISTRY


def _scores(values: dict[str, float | None]) -> dict[str, Score]:
    return {k: Score(value=v, numerator=0, denominator=0) for k, v in values.items()}


def test_rollup_weighted_mean_skips_zero_weight():
    # DM4 with every indicator valued: up_to_date (w 2) 90, cadence_adherence (2) 50, cadence_declared (1) 60,
    # days_behind (1) 40, metadata_conformance (1) 100, unique_titles (0.5) 80, retention (0.5) 100:
    # (180 + 100 + 60 + 40 + 100 + 40 + 50) / 8 = 570 / 8 = 71.25 -> "established" (>= 60).
    # od3_mqa has weight 0: never counts.
    dm4 = {"dm4_up_to_date": 90, "dm4_cadence_adherence": 50, "dm4_cadence_declared": 60, "dm4_days_behind": 40,
           "dm4_metadata_conformance": 100, "dm4_unique_titles": 80, "dm4_retention": 100}
    roll = criteria.rollup(_scores({**dm4, "od3_mqa": 0})).set_index("criterion")
    assert roll.loc["DM4", "value"] == pytest.approx(71.25)
    assert roll.loc["DM4", "stage"] == "established" and roll.loc["DM4", "indicators"] == 7
    assert roll.loc["DM4", "not_evident"] == ""
    assert set(roll.index) == {i.criterion for i in REGISTRY}


def test_rollup_counts_a_missing_carrying_indicator_as_zero():
    # The case: no declared cadence, so the freshness indicators are None. Before, they were dropped and
    # DM4 = (100 + 100 + 100) / 3 on the always-100 checks ("met"). Now up_to_date (2), cadence_adherence (2) and
    # days_behind (1) count 0; cadence_declared 0; conformance 100 (1); unique_titles 100 (0.5) and retention
    # None (0.5, a supporting signal: left out, not zero): (0*2 + 0*2 + 0 + 0 + 100 + 50) / 7.5 = 20.0
    roll = criteria.rollup(_scores({"dm4_up_to_date": None, "dm4_cadence_adherence": None, "dm4_days_behind": None,
                                    "dm4_cadence_declared": 0, "dm4_metadata_conformance": 100,
                                    "dm4_unique_titles": 100, "dm4_retention": None})).set_index("criterion")
    assert roll.loc["DM4", "value"] == pytest.approx(150 / 7.5)
    assert roll.loc["DM4", "stage"] == "emerging" and roll.loc["DM4", "indicators"] == 3
    assert roll.loc["DM4", "not_evident"] == "dm4_up_to_date, dm4_cadence_adherence, dm4_days_behind"
    # an indicator that was not scored at all is not evident too: DM8's only indicator -> 0, "not evident"
    assert roll.loc["DM8", "value"] == 0.0 and roll.loc["DM8", "stage"] == "not evident"
    assert roll.loc["DM8", "not_evident"] == "dm8_disaggregation"
    # and the criterion's evidence text says so
    st = criteria.statuses(criteria.rollup(_scores({"dm4_up_to_date": None, "dm4_metadata_conformance": 100})),
                           None).set_index("criterion")
    # in the words a CDO reads: the indicators' titles, not their keys
    assert ("not evident, counted 0: Declared update cadence · Up to date (HDX fresh or due) · Cadence adherence "
            "over history · Days behind schedule (by department)" in st.loc["DM4", "evidence"])
    assert "dm4_" not in st.loc["DM4", "evidence"]


def test_missing_evidence_never_scores_better_than_evidence_of_failure():
    # declaring no cadence (freshness None) must not beat declaring one and missing it (freshness 0)
    base = {"dm4_cadence_declared": 0, "dm4_metadata_conformance": 100, "dm4_unique_titles": 100,
            "dm4_retention": 100}
    missing = criteria.rollup(_scores({**base, "dm4_up_to_date": None, "dm4_cadence_adherence": None,
                                       "dm4_days_behind": None})).set_index("criterion")
    failed = criteria.rollup(_scores({**base, "dm4_up_to_date": 0, "dm4_cadence_adherence": 0,
                                      "dm4_days_behind": 0})).set_index("criterion")
    assert missing.loc["DM4", "value"] == pytest.approx(failed.loc["DM4", "value"])


def test_overall_score_and_stage_follow_one_rule():
    # The contradiction: a score of 43 shown with the stage "not evident" (stage from a median that
    # counted a missing criterion, score from a mean that skipped it). One rule now: mean over the criteria
    # with indicators, a missing one counting 0, and stage = stage(score).
    # BF1 and RDC7 rest on topic words whose precision is below 0.9 ("possible evidence", weight 0: README,
    # topic precision), so they carry no indicator and stay out of the overall score
    assert set(criteria.OVERALL_CRITERIA) == {"OD1", "OD2", "OD3", "DM2", "DM3", "DM4", "DM8", "PA3"}
    roll = pd.DataFrame({"criterion": ["OD1", "OD2", "OD3", "DM2", "DM3", "DM4", "DM8", "PA3", "BF1"],
                         "value": [60, 40, 80, 70, 90, 50, 10, None, 100]})
    # (60 + 40 + 80 + 70 + 90 + 50 + 10 + 0) / 8 = 400 / 8 = 50 -> "developing"; BF1's row is not counted
    assert criteria.overall(roll) == (pytest.approx(50.0), "developing")
    # a criterion absent from the roll-up counts 0 as well: without the PA3 row, the same 50
    assert criteria.overall(roll[roll["value"].notna()])[0] == pytest.approx(50.0)
    assert criteria.overall_score({"OD3": 100.0, "XX9": 100.0}) == pytest.approx(12.5)  # only criteria with indicators
    assert criteria.overall(roll.iloc[0:0]) == (None, None)  # never scored


@pytest.mark.parametrize("value,stage", [(None, "not evident"), (0, "not evident"), (19.99, "not evident"),
                                         (20, "emerging"), (40, "developing"), (59.9, "developing"),
                                         (60, "established"), (80, "leading"), (100, "leading")])
def test_stage_thresholds(value, stage):
    assert criteria.stage(value) == stage


def test_statuses_cover_all_42_criteria_with_rdc1():
    st = criteria.statuses(criteria.rollup({}), None)
    assert len(st) == 42 and st["criterion"].is_unique
    assert "RDC1" in set(st["criterion"]) and "RD1" not in set(st["criterion"])
    assert (st["status"] == "open").all() and not st["met"].any() and not st["met_if_confirmed"].any()


def test_what_metadata_can_prove_is_data_for_every_criterion():
    w = criteria.wwc_criteria().set_index("criterion")
    assert set(w["metadata"]) <= set(criteria.METADATA_LEVELS) and w["metadata_why"].str.len().gt(20).all()
    # metadata can show something only where an indicator measures it, and every measured criterion says what
    # (BF1 and RDC7 included: their topic matches are shown as possible evidence, weight 0, until confirmed)
    assert set(w.index[w["metadata"] != "none"]) == {i.criterion for i in REGISTRY}
    # processes and policies (issue 9: DM3, DM4, DM8; PA3's goals) are shown only in part; the portal itself fully
    assert w.loc[["DM3", "DM4", "DM8", "PA3", "OD1"], "metadata"].eq("partial").all()
    assert w.loc["OD3", "metadata"] == "full"


def test_statuses_metadata_supported_manual_open():
    roll = criteria.rollup(_scores({"dm4_up_to_date": 70, "dm4_cadence_adherence": 70, "dm4_cadence_declared": 70,
                                    "dm4_days_behind": 70, "dm4_metadata_conformance": 70,
                                    "od1_open_licence": 100, "od1_datajson_inventory": 100, "dm8_disaggregation": 30,
                                    "od3_portal_api": 100, "od3_dataset_count": 100, "od3_growth": 100,
                                    "od3_bulk_open_formats": 100, "od3_five_star": 100,
                                    "od3_census_key_datasets": 40}))
    manual = pd.DataFrame({"criterion": ["od1", "RD1"], "url": ["https://example.gov/open-data-policy", "https://x"],
                           "date": ["2012-12-10", "2021-01-01"], "note": ["Executive order", ""]})
    st = criteria.statuses(roll, manual).set_index("criterion")
    # OD3 ("full"): (5 * 100 + 0.5 * 100 + 40) / 6.5 = 90.8 -> shown by metadata, met
    assert st.loc["OD3", "status"] == "metadata" and st.loc["OD3", "met"] and st.loc["OD3", "metadata"] == "full"
    # DM4 ("partial") at 70: supported by metadata, met only if confirmed
    assert st.loc["DM4", "status"] == "supported" and not st.loc["DM4", "met"] and st.loc["DM4", "met_if_confirmed"]
    dm4 = st.loc["DM4", "evidence"]
    assert "Up to date (HDX fresh or due)" in dm4 and "supported by metadata" in dm4
    # OD1: 100/100 from metadata alone is not "met" (the policy is a document); the manual record is
    assert st.loc["OD1", "status"] == "manual" and st.loc["OD1", "met"]
    assert "https://example.gov/open-data-policy (2012-12-10): Executive order" in st.loc["OD1", "evidence"]
    assert st.loc["RDC1", "status"] == "manual"  # "RD1" in a manual record means RDC1 (seed file note)
    assert st.loc["DM8", "status"] == "open" and "below 60" in st.loc["DM8", "evidence"]
    assert st.loc["DM1", "status"] == "open" and "no portal metadata shows this" in st.loc["DM1", "evidence"]
    only_meta = criteria.statuses(criteria.rollup(_scores({"od1_open_licence": 100, "od1_datajson_inventory": 100})),
                                  None).set_index("criterion")
    assert only_meta.loc["OD1", "status"] == "supported" and "codified policy" in only_meta.loc["OD1", "evidence"]
    # two estimates: proven = OD3 (metadata) + OD1, RDC1 (records) = 3; if confirmed also DM4 -> 4
    est = criteria.certification_estimate(st.reset_index())
    assert (est["met"], est["if_confirmed"]["met"], est["supported"]) == (3, 4, 1)
    assert est["proven_label"] == "Proven: 3 of 42 criteria met (7%) - below the Silver band; 19 more for Silver."
    assert est["if_confirmed_label"] == ("If the supported criteria are confirmed: 4 of 42 criteria met (10%)"
                                         " - below the Silver band; 18 more for Silver.")
    assert est["proven_label"] in est["label"] and est["if_confirmed_label"] in est["label"]


def _statuses_with(met: int) -> pd.DataFrame:
    st = criteria.statuses(criteria.rollup({}), None)
    st["met"] = [i < met for i in range(len(st))]
    return st


@pytest.mark.parametrize("met,level,next_level,needed", [
    (21, None, "Silver", 1),       # 21/42 = 50.0% < 51%; Silver needs ceil(0.51*42) = 22 -> 1 more
    (22, "Silver", "Gold", 7),     # 52.4%; Gold needs ceil(0.67*42 = 28.14) = 29 -> 7 more
    (35, "Gold", "Platinum", 1),   # 83.3%; Platinum needs ceil(0.84*42 = 35.28) = 36 -> 1 more
    (36, "Platinum", None, 0),     # 85.7%
    (0, None, "Silver", 22),
])
def test_certification_estimate_bands(met, level, next_level, needed):
    est = criteria.certification_estimate(_statuses_with(met))
    assert (est["level"], est["next_level"], est["needed"]) == (level, next_level, needed)
    assert est["share_met"] == pytest.approx(met / 42) and est["estimate"] is True
    assert est["label"].startswith("Estimate. Proven: ")
    # nothing is only "supported" here, so both estimates agree
    assert est["if_confirmed"]["level"] == level and est["supported"] == 0


def test_statuses_accept_stored_shapes():
    # rows read back from storage may carry None values; evidence rows from storage.evidence / the pipeline carry
    # extra columns (id, actor, source) and dates as text
    roll = pd.DataFrame({"criterion": ["DM4", "OD3"], "value": [None, 75.0], "stage": ["not evident", "established"],
                         "indicators": [0, 3]})
    manual = pd.DataFrame({"id": [1], "criterion": ["DM1"], "url": ["https://example.gov/governance"],
                           "date": ["2023-02-01"], "note": [None], "actor": ["cdo"], "source": ["dashboard"]})
    st = criteria.statuses(roll, manual).set_index("criterion")
    assert st.loc["OD3", "status"] == "metadata" and st.loc["DM4", "status"] == "open"
    assert st.loc["DM1", "evidence"] == "manual record - https://example.gov/governance (2023-02-01) [dashboard]"


def test_stored_rollup_says_what_counted_zero_as_the_rollup_did():
    # storage keeps one row per indicator (compute_all scores every one; value None when not evident) and one per
    # criterion; pages and exports rebuild the roll-up from them and must name the same not-evident indicators
    scores = _scores({**{i.key: None for i in REGISTRY}, "dm4_cadence_declared": 0,
                      "dm4_days_behind": None, "dm4_metadata_conformance": 100, "dm4_unique_titles": 100,
                      "dm4_retention": None, "od3_portal_api": 100, "od3_mqa": 50})
    roll = criteria.rollup(scores)
    crit_of = {i.key: i.criterion for i in REGISTRY}
    rows = pd.concat([
        pd.DataFrame({"criterion": [crit_of[k] for k in scores], "indicator": list(scores),
                      "value": [s.value for s in scores.values()], "stage": None}),
        roll.assign(indicator="")[["criterion", "indicator", "value", "stage"]]], ignore_index=True)
    again = criteria.stored_rollup(rows).set_index("criterion")
    expect = roll.set_index("criterion")
    for c in expect.index:
        got, want = again.loc[c, "value"], expect.loc[c, "value"]
        assert (pd.isna(got) and pd.isna(want)) or got == pytest.approx(want)  # NaN: no carrying indicator
        assert again.loc[c, "indicators"] == expect.loc[c, "indicators"]
        assert again.loc[c, "not_evident"] == expect.loc[c, "not_evident"]
    assert again.loc["DM4", "not_evident"] == "dm4_up_to_date, dm4_cadence_adherence, dm4_days_behind"
    st = criteria.statuses(criteria.stored_rollup(rows), None).set_index("criterion")
    assert "not evident, counted 0: Up to date (HDX fresh or due)" in st.loc["DM4", "evidence"]
