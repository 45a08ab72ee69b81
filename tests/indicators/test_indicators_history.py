"""Cadence adherence and freshness on the Chicago weekly history (eight snapshots 2022-06-08 ... 2022-07-23).

History columns are built by `_real.chicago_history_catalog` the way storage.city_catalog defines them
(first_seen = first snapshot holding the id, data_modified_seen = distinct data_updated_at values seen up to
as_of). Each snapshot is the state at the end of its day, so the window runs from 2022-06-08T23:59:59 to
2022-07-23T23:59:59 = 45 days, and with weekly observation (H = 7 d) a daily dataset can show at most
floor(45 / 7) = 6 changes.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from indicators import quality
from indicators.base import RunFact
from tests.indicators._real import chicago_history_catalog

# data_updated_at per snapshot, read from tests/fixtures/socrata/history/data.cityofchicago.org/*.jsonl.gz:
NAMED = {
    # Building Permits, "Data are updated daily": 06-08T12:07 (before the window), then a new value in each
    # of the 7 later snapshots (06-15 ... 07-22) -> O = 7, E = floor(45 / max(1, 7)) = 6 -> min(7/6, 1) = 1
    "ydr8-5enu": 1.0,
    # Vacant and Abandoned Buildings - Violations, "Data is updated daily": 06-07, then 06-15 in every later
    # snapshot -> O = 1, E = 6 -> 1/6
    "kc9i-wq85": 1 / 6,
    # Performance Metrics - Procurement Services, "Data is updated weekly": 06-08T11:10 (before the window),
    # 07-20 -> O = 1, E = floor(45 / 7) = 6 -> 1/6 (it was missing from the short 06-29 ... 07-13 crawls)
    "s9wg-6is6": 1 / 6,
    # Chicago Park District - Event Permits, "Data is updated weekly": 06-06 (before), 06-13, 06-21, 06-27,
    # 07-11, 07-18 -> O = 5, E = 6 -> 5/6
    "pk66-w54g": 5 / 6,
    # Taxi Trips, "Data are updated monthly" (P1M = 30.42 d): 05-11 (before), 06-08T21:57 (before the window
    # start 06-08T23:59:59), 07-08 -> O = 1, E = floor(45 / 30.42) = 1 -> 1
    "wrvz-psew": 1.0,
    # Transportation Network Providers - Trips, monthly: 05-24 (before), 06-24 -> O = 1, E = 1 -> 1
    "m6dm-c72p": 1.0,
    # Mural Registry, monthly: 04-27 (before), 06-10 -> O = 1, E = 1 -> 1
    "we8h-apcf": 1.0,
}


@pytest.fixture(scope="module")
def named():
    return chicago_history_catalog(list(NAMED))


def test_dm4_cadence_adherence_named_chicago(named):
    df, as_of = named
    assert len(df.frame) == 7
    s = quality.cadence_adherence(df, as_of)
    # mean = (1 + 1/6 + 1/6 + 5/6 + 1 + 1 + 1) / 7 = (31/6) / 7 = 31/42 = 73.81 %
    assert s.value == pytest.approx(100 * 31 / 42)
    assert s.denominator == 7
    assert s.detail["harvest_interval_days"] == 7.0
    assert set(s.failing) == {"kc9i-wq85", "s9wg-6is6", "pk66-w54g"}
    # the window opens at the history start (2022-06-08); the reason names that day, not its length
    assert s.failing["pk66-w54g"] == "5 data update(s) seen since 2022-06-08, fewer than declared (weekly)"


def test_dm4_freshness_named_chicago(named):
    df, as_of = named
    s = quality.up_to_date(df, as_of)
    # age at 2022-07-23T23:59:59 from the last data_updated_at:
    #   ydr8 P1D 07-22T12:15 -> 1.49 d: due        kc9i P1D 06-15T12:16 -> 38.5 d: delinquent (>= 3)
    #   s9wg P1W 07-20T11:10 -> 3.53: fresh        pk66 P1W 07-18T14:16 -> 5.40: fresh
    #   wrvz P1M 07-08T16:15 -> 15.3: fresh        m6dm P1M 06-24T23:14 -> 29.03 < 30.42: fresh
    #   we8h P1M 06-10T18:59 -> 43.2: due (30.42 <= age < 30.42 + 15.1)
    # up to date = (4 fresh + 2 due) / 7 = 85.714
    assert {k: s.detail[k] for k in ("fresh", "due", "overdue", "delinquent")} == \
        {"fresh": 4, "due": 2, "overdue": 0, "delinquent": 1}
    assert s.value == pytest.approx(600 / 7)
    assert list(s.failing) == ["kc9i-wq85"]


def test_dm4_cadence_adherence_whole_chicago_history():
    df, as_of = chicago_history_catalog()
    s = quality.cadence_adherence(df, as_of)
    assert 0 <= s.value <= 100
    # every evaluable asset has a finite period and at least one expected update in the 45-day window
    assert s.denominator == s.detail["evaluable"] > 50


def _runs(portal_key: str, days: range | tuple[int, ...], hour: int, status: str = "ok") -> list[RunFact]:
    return [RunFact(run_id=0, portal_key=portal_key, as_of=datetime(2022, 6, d, hour, tzinfo=UTC), status=status,
                    items=None, complete=status == "ok") for d in days]


def test_dm4_harvest_interval_from_runs(named):
    df, as_of = named
    # two portals: Socrata weekly (06-08, 06-15, 06-22) and a data.json portal harvested daily minutes later;
    # a failed run does not count. The coarser portal sets H = 7 days, so the named values do not change.
    runs = _runs("chicago-socrata", (8, 15, 22), 4) + _runs("chicago-dcat", range(8, 23), 4)
    runs += _runs("chicago-socrata", (10,), 4, "failed")
    s = quality.cadence_adherence(replace(df, facts=replace(df.facts, runs=tuple(runs))), as_of)
    assert s.detail["harvest_interval_days"] == 7.0
    assert s.value == pytest.approx(100 * 31 / 42)
    # with daily observation only (the data.json portal alone), daily datasets owe floor(45/1) = 45 changes:
    # Building Permits (ydr8-5enu) showed 7 -> 7/45
    daily = tuple(r for r in runs if r.portal_key == "chicago-dcat")
    s = quality.cadence_adherence(replace(df, facts=replace(df.facts, runs=daily)), as_of)
    assert s.detail["harvest_interval_days"] == 1.0
    assert s.failing["ydr8-5enu"] == "7 data update(s) seen since 2022-06-08, fewer than declared (daily)"


def test_dm4_declared_vs_observed_mismatch(named):
    df, as_of = named
    # counterfactual on a real history: Building Permits (ydr8-5enu) changed 7 times in the 45-day window;
    # had it been declared monthly, 7 > 2 * max(1, floor(45 / 30.42) = 1) would flag a documentation error
    frame = df.frame.copy()
    frame.loc[frame["source_id"] == "ydr8-5enu", "declared_frequency"] = "P1M"
    s = quality.cadence_adherence(replace(df, frame=frame), as_of)
    assert s.detail["more_often_than_declared"] == 1
    assert s.matches == {"ydr8-5enu": "7 data updates since 2022-06-08, more often than declared (monthly)"}
    # as really declared (daily) it is no mismatch
    assert quality.cadence_adherence(named[0], as_of).detail["more_often_than_declared"] == 0
