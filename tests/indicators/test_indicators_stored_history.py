"""The same Chicago hand counts as test_indicators_history.py, but through the real product path: the eight
weekly snapshots imported by pipeline.import_files (real Socrata normalisation, change-only storage), the
catalog rebuilt by storage.city_catalog, scored by indicators.compute_all.

Each snapshot is imported as of the end of its day (the file holds the newest scrape commit on or before the
date), so the window and ages are those worked out in test_indicators_history.py.
"""
from __future__ import annotations

from datetime import timezone

import pytest

import indicators
import pipeline
import storage
from indicators import criteria
from tests.indicators._real import CHICAGO_HISTORY, history_as_of
from tests.indicators.test_indicators_history import NAMED


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    import settings

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
    catalog = storage.city_catalog(engine, "chicago")
    yield catalog
    storage.dispose(url)


def test_stored_catalog_has_history_columns(stored):
    portal = stored.attrs["portal"]
    assert portal["history_start"].astimezone(timezone.utc) == history_as_of("2022-06-08")
    assert len(stored) == 260  # unique ids in the 2022-07-23 snapshot


def test_cadence_adherence_and_freshness_from_storage(stored):
    as_of = history_as_of("2022-07-23")
    named = stored[stored["source_id"].isin(list(NAMED))].copy()
    named.attrs = stored.attrs
    assert len(named) == 7
    s = indicators.BY_KEY["dm4_cadence_adherence"].fn(named, as_of)
    # same arithmetic as test_indicators_history: (1 + 1/6 + 1/6 + 5/6 + 1 + 1 + 1) / 7 = 31/42
    assert s.value == pytest.approx(100 * 31 / 42)
    assert set(s.failing) == {"kc9i-wq85", "s9wg-6is6", "pk66-w54g"}
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
