"""criteria.rollup / statuses / certification_estimate on hand-made Score sets."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from indicators import criteria
from indicators.base import Score
from indicators.registry import REGISTRY


def _scores(values: dict[str, float | None]) -> dict[str, Score]:
    return {k: Score(value=v, numerator=0, denominator=0) for k, v in values.items()}


def test_rollup_weighted_mean_skips_none_and_zero_weight():
    # DM4: dm4_up_to_date (weight 2) = 90, dm4_cadence_declared (1) = 60, dm4_retention None -> left out;
    # (2*90 + 60) / 3 = 80 -> "leading" (>= 80). od3_mqa has weight 0: OD3 = od3_portal_api 100 alone.
    roll = criteria.rollup(_scores({"dm4_up_to_date": 90, "dm4_cadence_declared": 60, "dm4_retention": None,
                                    "od3_mqa": 0, "od3_portal_api": 100})).set_index("criterion")
    assert roll.loc["DM4", "value"] == pytest.approx(80.0)
    assert roll.loc["DM4", "stage"] == "leading" and roll.loc["DM4", "indicators"] == 2
    assert roll.loc["OD3", "value"] == 100.0 and roll.loc["OD3", "indicators"] == 1
    assert math.isnan(roll.loc["DM8", "value"]) and roll.loc["DM8", "stage"] == "not evident"
    assert set(roll.index) == {i.criterion for i in REGISTRY}


@pytest.mark.parametrize("value,stage", [(None, "not evident"), (0, "not evident"), (19.99, "not evident"),
                                         (20, "emerging"), (40, "developing"), (59.9, "developing"),
                                         (60, "established"), (80, "leading"), (100, "leading")])
def test_stage_thresholds(value, stage):
    assert criteria.stage(value) == stage


def test_statuses_cover_all_42_criteria_with_rdc1():
    st = criteria.statuses(criteria.rollup({}), None)
    assert len(st) == 42 and st["criterion"].is_unique
    assert "RDC1" in set(st["criterion"]) and "RD1" not in set(st["criterion"])
    assert (st["status"] == "open").all() and not st["met"].any()


def test_statuses_metadata_manual_open():
    roll = criteria.rollup(_scores({"dm4_up_to_date": 70, "od1_open_licence": 100, "dm8_disaggregation": 30}))
    manual = pd.DataFrame({"criterion": ["od1", "RD1"], "url": ["https://example.gov/open-data-policy", "https://x"],
                           "date": ["2012-12-10", "2021-01-01"], "note": ["Executive order", ""]})
    st = criteria.statuses(roll, manual).set_index("criterion")
    assert st.loc["DM4", "status"] == "metadata" and st.loc["DM4", "met"]
    assert "dm4_up_to_date" in st.loc["DM4", "evidence"]
    # OD1 needs the policy document: 100/100 from metadata alone is not "met", the manual record is
    assert st.loc["OD1", "status"] == "manual" and st.loc["OD1", "met"]
    assert "https://example.gov/open-data-policy (2012-12-10): Executive order" in st.loc["OD1", "evidence"]
    assert st.loc["RDC1", "status"] == "manual"  # "RD1" in a manual record means RDC1 (seed file note)
    assert st.loc["DM8", "status"] == "open" and "below 60" in st.loc["DM8", "evidence"]
    only_meta = criteria.statuses(criteria.rollup(_scores({"od1_open_licence": 100})), None).set_index("criterion")
    assert only_meta.loc["OD1", "status"] == "open" and "policy document" in only_meta.loc["OD1", "evidence"]


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
    assert est["label"].startswith("Estimate:")


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
