"""The pipeline end to end: real connectors over HTTP against the local emulator, real storage, real indicators.

Expected counts come from the recorded files (see tests/fixtures/PROVENANCE.md):
- Chicago Discovery scrape (socrata/latest/data.cityofchicago.org.jsonl.gz): 295 lines, 260 unique ids, 35 repeats.
- Cincinnati data.json (dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz): 145 datasets.
- Birmingham package_search (ckan/birmingham_uk_package_search_purchase_cards_2021.json): 10 packages.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

import pipeline
import storage
from tests.conftest import FIXTURES
from tests.emulator import Emulator, load_json, load_socrata_jsonl

CHICAGO = "data.cityofchicago.org"
T1 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
T3 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def emu():
    chicago = load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")
    cincinnati = load_json(FIXTURES / "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz")
    birmingham = load_json(FIXTURES / "ckan/birmingham_uk_package_search_purchase_cards_2021.json")
    with Emulator(socrata={CHICAGO: chicago}, dcat={"cincinnati": cincinnati},
                  ckan={"birmingham": birmingham["result"]["results"]}) as e:
        yield e


def write_config(tmp_path, emu, db_url: str):
    import settings

    text = f"""
[storage]
url = "{db_url}"
[[cities]]
key = "chicago"
name = "Chicago, IL"
departments = ["Transportation", "Police", "Public Health"]
[[cities.portals]]
kind = "socrata"
domain = "{CHICAGO}"
url = "{emu.url}"
[[cities]]
key = "cincinnati"
name = "Cincinnati, OH"
[[cities.portals]]
kind = "dcat"
url = "{emu.dcat_url('cincinnati')}"
[[cities]]
key = "birmingham"
name = "Birmingham, UK"
[[cities.portals]]
kind = "ckan"
url = "{emu.ckan_url('birmingham')}"
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return settings.load(path, environ={})


@pytest.fixture
def setup(tmp_path, emu, db_url):
    emu.clear_faults()
    cfg = write_config(tmp_path, emu, db_url)
    storage.upgrade(cfg.storage_url)
    return cfg, storage.open_db(cfg.storage_url)


def test_harvest_three_kinds_stores_unique_catalogs(setup):
    cfg, engine = setup
    got = {p.key: pipeline.harvest(cfg, engine, p, now=T1) for p in cfg.portals}
    assert {k: (s.status, s.items) for k, s in got.items()} == {
        "chicago-socrata": ("ok", 260), "cincinnati-dcat": ("ok", 145), "birmingham-ckan": ("ok", 10)}
    assert got["chicago-socrata"].repeats == 35  # 295 recorded lines - 260 unique ids
    chicago = storage.city_catalog(engine, "chicago")
    assert len(chicago) == 260 and chicago["source_id"].is_unique
    # the first run writes one version per dataset; nothing else
    assert storage.row_counts(engine)["dataset_versions"] == 260 + 145 + 10


def test_unchanged_reharvest_writes_no_versions_and_scores_land(setup):
    cfg, engine = setup
    for p in cfg.portals:
        pipeline.harvest(cfg, engine, p, now=T1)
    before = storage.row_counts(engine)
    again = [pipeline.harvest(cfg, engine, p, now=T2) for p in cfg.portals]
    after = storage.row_counts(engine)
    assert [s.new_versions for s in again] == [0, 0, 0]
    assert after["dataset_versions"] == before["dataset_versions"]
    assert after["harvest_runs"] == before["harvest_runs"] + 3

    scores = pipeline.score(cfg, engine, "chicago")
    stored = storage.scores(engine, "chicago")
    assert set(stored["as_of"]) == {T2}  # stamped with the latest run
    indicator_rows = stored[stored["indicator"] != ""]
    assert set(indicator_rows["indicator"]) == set(scores)
    rollup = stored[stored["indicator"] == ""]
    assert set(rollup["stage"]) <= {"not evident", "emerging", "developing", "established", "leading"}


def test_failing_portal_is_recorded_and_keeps_earlier_history(setup, emu):
    cfg, engine = setup
    chicago = cfg.portal("chicago-socrata")
    pipeline.harvest(cfg, engine, chicago, now=T1)
    emu.fault("/api/catalog/v1", truncate=True)  # garbage JSON: not retried, fails the run at once
    failed = pipeline.harvest(cfg, engine, chicago, now=T2)
    assert failed.status == "failed"
    assert failed.error.startswith("PortalIncompatible:")
    runs = storage.runs(engine, portal_key="chicago-socrata")
    assert list(runs["status"]) == ["failed", "ok"]  # newest first
    assert runs.iloc[0]["error"] == failed.error
    # the catalog still answers from the last good run, and the other portals are untouched
    assert len(storage.city_catalog(engine, "chicago")) == 260
    assert pipeline.harvest(cfg, engine, cfg.portal("cincinnati-dcat"), now=T2).status == "ok"
    emu.clear_faults()
    assert pipeline.harvest(cfg, engine, chicago, now=T3).status == "ok"


def test_changed_shape_fails_with_its_reason(setup, emu):
    cfg, engine = setup
    emu.fault("/ckan/birmingham/api/3/action/package_search", shape=True)
    summary = pipeline.harvest(cfg, engine, cfg.portal("birmingham-ckan"), now=T1)
    assert summary.status == "failed" and "PortalIncompatible" in summary.error
    assert storage.city_catalog(engine, "birmingham").empty


def test_import_chicago_history_then_as_of_catalogs(setup):
    cfg, engine = setup
    history = sorted((FIXTURES / "socrata/history/data.cityofchicago.org").glob("*.jsonl.gz"))
    assert len(history) == 8
    for path in history:
        when = datetime.fromisoformat(path.name[:10]).replace(tzinfo=UTC)
        pipeline.import_files(cfg, engine, "chicago", when, [path])
    # unique ids per snapshot, counted from the files: 313, 466, 256, 95, 95, 196, 294, 260
    counts = [len(storage.city_catalog(engine, "chicago",
                                       as_of=datetime.fromisoformat(p.name[:10] + "T12:00:00+00:00")))
              for p in history]
    assert counts == [313, 466, 256, 95, 95, 196, 294, 260]
    statuses = list(storage.runs(engine, portal_key="chicago-socrata")["status"])[::-1]  # oldest first
    assert statuses == ["ok", "ok", "ok", "suspect", "suspect", "ok", "ok", "ok"]
    # re-importing an unchanged snapshot writes no version rows
    before = storage.row_counts(engine)["dataset_versions"]
    pipeline.import_files(cfg, engine, "chicago", datetime(2022, 7, 23, tzinfo=UTC), [history[-1]])
    assert storage.row_counts(engine)["dataset_versions"] == before
    # the re-import shares 2022-07-23's date, so history has eight distinct dates to score
    assert pipeline.score_all(cfg, engine, "chicago") == 8
    assert len(set(storage.scores(engine, "chicago")["as_of"])) == 8


def test_manual_evidence_merges_config_and_dashboard_records(tmp_path, emu, sqlite_url):  # noqa: F811
    from indicators import criteria

    cfg = write_config(tmp_path, emu, sqlite_url)
    text = cfg.path.read_text().replace('departments = ["Transportation", "Police", "Public Health"]\n', '''\
departments = ["Transportation", "Police", "Public Health"]
[[cities.evidence]]
criterion = "OD1"
url = "https://example.org/open-data-executive-order"
date = 2012-12-10
note = "Executive order"
''')
    cfg.path.write_text(text)
    import settings

    cfg = settings.load(cfg.path, environ={})
    storage.upgrade(cfg.storage_url)
    engine = storage.open_db(cfg.storage_url)
    pipeline.harvest(cfg, engine, cfg.portal("chicago-socrata"), now=T1)
    storage.add_evidence(engine, "chicago", "DM1", url="https://example.org/governance", date="2024-01-15",
                         note="Data governance committee charter", actor="cdo", at=T1)
    manual = pipeline.manual_evidence(cfg, engine, "chicago")
    assert sorted(zip(manual["criterion"], manual["source"], strict=True)) == [("DM1", "dashboard"), ("OD1", "config")]
    scores = pipeline.score(cfg, engine, "chicago")
    status = criteria.statuses(criteria.rollup(scores), manual).set_index("criterion")["status"]
    # OD1 needs its policy document: metadata alone never meets it, the recorded executive order does
    assert status["OD1"] == "manual" and status["DM1"] == "manual"
