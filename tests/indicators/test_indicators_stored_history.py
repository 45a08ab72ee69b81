"""The same Chicago hand counts as test_indicators_history.py, but through the real product path: the eight
weekly snapshots imported by pipeline.import_files (real Socrata normalisation, change-only storage), the
catalog and its facts assembled by pipeline.scoring_input from storage, scored by indicators.compute_all.

Each snapshot is imported as of the end of its day (the file holds the newest scrape commit on or before the
date), so the window and ages are those worked out in test_indicators_history.py.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC

import pytest

import indicators
import storage
from indicators import criteria
from maturity import pipeline
from tests.indicators._real import CHICAGO_HISTORY, history_as_of
from tests.indicators.test_indicators_history import NAMED


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    from maturity import settings

    tmp = tmp_path_factory.mktemp("stored")
    url = f"sqlite:///{tmp / 'maturity.db'}"
    cfg_path = tmp / "config.toml"
    cfg_path.write_text(f"""
[storage]
url = "{url}"
[[cities]]
key = "chicago"
name = "Chicago, IL"
[[cities.portals]]
kind = "socrata"
domain = "data.cityofchicago.org"
url = "https://data.cityofchicago.org"
""")
    cfg = settings.load(cfg_path)
    storage.upgrade(url)
    engine = storage.open_db(url)
    for path in sorted(CHICAGO_HISTORY.glob("*.jsonl.gz")):
        pipeline.import_files(cfg, engine, "chicago", history_as_of(path.name[:10]), [path])
    catalog, _ = pipeline.scoring_input(engine, cfg.city("chicago"))
    yield catalog
    storage.dispose(url)


def test_stored_catalog_has_history_columns(stored):
    assert stored.facts.history_start.astimezone(UTC) == history_as_of("2022-06-08")
    assert len(stored.frame) == 260  # unique ids in the 2022-07-23 snapshot


def test_cadence_adherence_and_freshness_from_storage(stored):
    as_of = history_as_of("2022-07-23")
    named = replace(stored, frame=stored.frame[stored.frame["source_id"].isin(list(NAMED))].copy())
    assert len(named.frame) == 7
    # storage marks every crawl under 0.9 x the last complete run partial ("suspect"); 07-20 is complete as a
    # confirmed shrink (tests/storage/test_history.py CHICAGO_STATUS works it out)
    assert [r.status for r in stored.facts.runs] == ["ok", "ok", "suspect", "suspect", "suspect", "suspect", "ok",
                                                     "suspect"]
    assert [r.complete for r in stored.facts.runs] == [True, True, False, False, False, False, True, False]
    s = indicators.BY_KEY["dm4_cadence_adherence"].fn(named, as_of)
    # with the run history, the chances to see a change are the complete ("ok") runs after the window opens
    # (06-08): 06-15, 07-20 = 2, so E = min(2, floor(45 / P)):
    #   ydr8 daily O=7, E=2 -> 1; kc9i daily O=1 -> 1/2; s9wg weekly O=1, E=min(2, 6)=2 -> 1/2;
    #   pk66 weekly O=5, E=2 -> 1; wrvz, m6dm, we8h monthly O=1, E=min(2, 1)=1 -> 1
    # mean = (1 + 0.5 + 0.5 + 1 + 1 + 1 + 1) / 7 = 6 / 7 = 85.71 %
    assert s.value == pytest.approx(100 * 6 / 7)
    assert set(s.failing) == {"kc9i-wq85", "s9wg-6is6"}
    assert s.failing["s9wg-6is6"] == "1 data update(s) seen since 2022-06-08, fewer than declared (weekly)"
    f = indicators.BY_KEY["dm4_up_to_date"].fn(named, as_of)
    assert {k: f.detail[k] for k in ("fresh", "due", "overdue", "delinquent")} == \
        {"fresh": 4, "due": 2, "overdue": 0, "delinquent": 1}


def test_whole_stored_catalog_scores_and_rolls_up(stored):
    as_of = history_as_of("2022-07-23")
    scores = indicators.compute_all(stored, as_of)
    assert all(s.value is None or 0 <= s.value <= 100 for s in scores.values())
    roll = criteria.rollup(scores)
    st = criteria.statuses(roll, None)
    assert len(st) == 42
    est = criteria.certification_estimate(st)
    assert est["estimate"] is True and 0 <= est["share_met"] <= 1
