"""The pipeline end to end: real connectors over HTTP against the local emulator, real storage, real indicators.

Expected counts come from the recorded files (see tests/fixtures/PROVENANCE.md):
- Chicago Discovery scrape (socrata/latest/data.cityofchicago.org.jsonl.gz): 295 lines, 260 unique ids, 35 repeats.
- Cincinnati data.json (dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz): 145 datasets.
- Birmingham package_search (ckan/birmingham_uk_package_search_purchase_cards_2021.json): 10 packages.
"""
from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

import storage
from maturity import pipeline
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
    from maturity import settings

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


CHICAGO_HISTORY = FIXTURES / "socrata/history/data.cityofchicago.org"


def eod(text: str) -> datetime:
    """The end of a day: when an import of that day's snapshot is dated."""
    return datetime.fromisoformat(text + "T23:59:59+00:00")


def test_import_chicago_history_then_as_of_catalogs(setup):
    cfg, engine = setup
    history = sorted(CHICAGO_HISTORY.glob("*.jsonl.gz"))
    assert len(history) == 8
    for path in history:
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(path.name[:10]), [path])
    runs = storage.runs(engine, portal_key="chicago-socrata")[::-1]  # oldest first
    assert list(runs["as_of"]) == [eod(p.name[:10]) for p in history]  # each dated at the end of its day
    # unique ids per snapshot, counted from the files: 313, 466, 256, 95, 95, 196, 294, 260
    counts = [len(storage.city_catalog(engine, "chicago", as_of=eod(p.name[:10]))) for p in history]
    assert counts == [313, 466, 256, 95, 95, 196, 294, 260]
    # complete = >= 0.9 x the last complete run (tests/storage/test_history.py CHICAGO_STATUS works it out)
    assert list(runs["status"]) == ["ok", "ok", "suspect", "suspect", "suspect", "suspect", "ok", "suspect"]
    # re-importing an unchanged snapshot writes no version rows
    before = storage.row_counts(engine)["dataset_versions"]
    pipeline.import_files(cfg, engine, "chicago", date(2022, 7, 23), [history[-1]])
    assert storage.row_counts(engine)["dataset_versions"] == before
    # the re-import shares 2022-07-23's date, so history has eight distinct dates to score; the partial ones
    # are stored flagged and are no line point
    assert pipeline.score_all(cfg, engine, "chicago") == 8
    assert len(set(storage.scores(engine, "chicago", flagged=True)["as_of"])) == 8
    assert sorted(set(storage.scores(engine, "chicago")["as_of"])) == [eod("2022-06-08"), eod("2022-06-15"),
                                                                       eod("2022-07-20")]
    flagged = storage.scores(engine, "chicago", flagged=True)
    assert set(flagged.loc[flagged["flag"] == "partial", "as_of"]) == {
        eod(d) for d in ("2022-06-22", "2022-06-29", "2022-07-06", "2022-07-13", "2022-07-23")}
    assert set(storage.latest_scores(engine, "chicago")["as_of"]) == {eod("2022-07-20")}


def test_records_decoded_for_one_date_are_reused_for_the_next_and_give_the_same_catalogs(setup):
    import pandas as pd

    cfg, engine = setup
    history = sorted(CHICAGO_HISTORY.glob("*.jsonl.gz"))
    for path in history:
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(path.name[:10]), [path])
    decoded = storage.DecodedVersions()
    for path in history:
        when = eod(path.name[:10])
        alone = storage.city_harvest(engine, "chicago", as_of=when, keep=False).frame
        kept = storage.city_harvest(engine, "chicago", as_of=when, keep=False, decoded=decoded).frame
        pd.testing.assert_frame_equal(kept, alone)
        assert len(decoded.rows) == len(alone)  # one version a dataset: this date's, the others dropped


def test_a_catalog_read_in_forked_processes_is_the_one_read_here(setup, monkeypatch, caplog):
    """`maturity score` reads a large catalog in several processes (city_harvest's `jobs`): the same table, and the
    same stored scores, as one process reads. Parts of at least 50 datasets here (FORK_MIN_RECORDS), so the 466
    datasets of 2022-06-15 are read in 3 parts (this process and two forked children, counted), the 95 of
    2022-06-29 in one; every date of the history, so versions stored against their key versions are read too."""
    import logging

    from storage import queries

    cfg, engine = setup
    history = sorted(CHICAGO_HISTORY.glob("*.jsonl.gz"))
    for path in history:
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(path.name[:10]), [path])
    monkeypatch.setattr(queries, "FORK_MIN_RECORDS", 50)
    forks: list[int] = []
    real = queries._forked
    monkeypatch.setattr(queries, "_forked", lambda work: forks.append(1) or real(work))
    caplog.set_level(logging.WARNING, logger="storage.queries")
    parts = {}
    for path in history:
        when = eod(path.name[:10])
        alone = storage.city_harvest(engine, "chicago", as_of=when, keep=False).frame
        forks.clear()
        split = storage.city_harvest(engine, "chicago", as_of=when, keep=False, jobs=3).frame
        parts[path.name[:10]] = (len(split), len(forks) + 1)
        pd.testing.assert_frame_equal(split, alone)
    assert parts["2022-06-15"] == (466, 3) and parts["2022-06-29"] == (95, 1)
    assert not caplog.records  # every child sent its part (none decoded again here after a failure)

    when = eod("2022-07-23")
    pipeline.score(cfg, engine, "chicago", as_of=when, keep=False)  # not cached: the second one reads it again
    here = storage.scores(engine, "chicago", flagged=True)
    storage.save_scores(engine, "chicago", when, {}, pd.DataFrame(), criterion_of={})  # gone: redone in parts
    forks.clear()
    pipeline.score(cfg, engine, "chicago", as_of=when, keep=False, jobs=2)
    assert len(forks) == 1 and not caplog.records
    pd.testing.assert_frame_equal(storage.scores(engine, "chicago", flagged=True), here)


def test_a_catalog_read_through_its_snapshot_is_the_one_decoded_afresh(setup, monkeypatch):
    """`maturity score` keeps each portal's catalog records in a snapshot (storage/snapshots.py) and decodes only
    the rows whose latest version it does not hold: on every date of Chicago's 8-week history, read forward, then
    back to the first date and forward again (the snapshot then holds newer versions than the date needs), the
    table is the one decoded afresh. An unchanged date read twice decodes nothing the second time and leaves the
    snapshot as it was; a snapshot from a read in forked parts serves too."""
    import sqlalchemy as sa

    from storage import queries
    from storage.models import snapshots_t

    cfg, engine = setup
    history = sorted(CHICAGO_HISTORY.glob("*.jsonl.gz"))
    for path in history:
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(path.name[:10]), [path])
    monkeypatch.setattr(queries, "SNAPSHOT_MIN_RECORDS", 0)
    monkeypatch.setattr(queries, "FORK_MIN_RECORDS", 50)
    decoded: list[int] = []
    real = queries._decode
    monkeypatch.setattr(queries, "_decode", lambda conn, key, ids: decoded.extend(ids) or real(conn, key, ids))

    def stored() -> bytes:
        with engine.connect() as conn:
            return conn.execute(sa.select(snapshots_t.c.data)).scalar_one()

    dates = [eod(p.name[:10]) for p in history]
    for i, when in enumerate([*dates, dates[0], dates[1]]):
        alone = storage.city_harvest(engine, "chicago", as_of=when, keep=False).frame
        decoded.clear()
        # 2022-06-08 first: no snapshot yet, 313 datasets read in parts (jobs=2), the snapshot written from them
        kept = storage.city_harvest(engine, "chicago", as_of=when, keep=False, jobs=2, snapshot=True).frame
        pd.testing.assert_frame_equal(kept, alone)
        if i == 0:
            assert len(decoded) < len(alone)  # this process decoded its part only: the child the rest
        if i == 2:  # 2022-06-22: most of its 256 rows have the version 2022-06-15's snapshot holds, a few are new
            assert 0 < len(decoded) < len(alone) // 2
        before, decoded[:] = stored(), []
        again = storage.city_harvest(engine, "chicago", as_of=when, keep=False, jobs=2, snapshot=True).frame
        pd.testing.assert_frame_equal(again, alone)
        assert decoded == [] and stored() == before


def chicago_week_read_alone(setup) -> tuple:
    """Chicago's recorded week of 2022-06-15 (466 datasets) imported; (engine, its end of day, its catalog table
    as one process reads it)."""
    cfg, engine = setup
    path = sorted(CHICAGO_HISTORY.glob("*.jsonl.gz"))[1]
    pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(path.name[:10]), [path])
    when = eod(path.name[:10])
    return engine, when, storage.city_harvest(engine, "chicago", as_of=when, keep=False).frame


def test_a_snapshot_read_runs_its_versions_pass_in_a_forked_child(setup, monkeypatch, caplog):
    """With a snapshot and `jobs` > 1, the versions pass of a large catalog runs in a forked child while the snapshot
    is decoded here (counted): the same table as one process reads; a child that fails leaves the pass to this
    process (logged), the same table again."""
    import logging

    from storage import queries

    engine, when, alone = chicago_week_read_alone(setup)
    monkeypatch.setattr(queries, "SNAPSHOT_MIN_RECORDS", 0)
    monkeypatch.setattr(queries, "FORK_MIN_RECORDS", 100)
    storage.city_harvest(engine, "chicago", as_of=when, keep=False, snapshot=True)  # the snapshot written
    forks: list[str] = []
    real = queries._forked
    monkeypatch.setattr(queries, "_forked", lambda work: forks.append(work.func.__name__) or real(work))
    caplog.set_level(logging.WARNING, logger="storage.queries")
    kept = storage.city_harvest(engine, "chicago", as_of=when, keep=False, jobs=2, snapshot=True).frame
    pd.testing.assert_frame_equal(kept, alone)
    assert forks == ["_latest_versions_fresh"] and not caplog.records

    def broken(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queries, "_latest_versions_fresh", broken)
    forks.clear()
    kept = storage.city_harvest(engine, "chicago", as_of=when, keep=False, jobs=2, snapshot=True).frame
    pd.testing.assert_frame_equal(kept, alone)
    assert forks == ["broken"]
    assert [r.getMessage() for r in caplog.records] == [
        "a forked catalog reader failed (Ran out of input): its part is built in the parent"]


def test_only_the_latest_catalog_scoring_replaces_the_snapshot(setup, monkeypatch):
    """`pipeline.score` keeps the snapshot of the catalog it scores by default when that is the latest one (the
    scheduler's and the CLI's scoring after a harvest); a dated rescoring leaves it as it was, so the next
    harvest's scoring still finds the latest records in it."""
    import sqlalchemy as sa

    from storage import queries, snapshots
    from storage.models import snapshots_t

    cfg, engine = setup
    history = sorted(CHICAGO_HISTORY.glob("*.jsonl.gz"))[:2]
    for path in history:
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(path.name[:10]), [path])
    monkeypatch.setattr(queries, "SNAPSHOT_MIN_RECORDS", 0)

    def stored() -> bytes | None:
        with engine.connect() as conn:
            return conn.execute(sa.select(snapshots_t.c.data)).scalar()

    pipeline.score(cfg, engine, "chicago", as_of=eod(history[0].name[:10]))
    assert stored() is None  # a dated scoring writes none
    pipeline.score(cfg, engine, "chicago")
    latest = stored()
    decoded = snapshots.decode(latest) if latest is not None else None
    assert decoded is not None and len(decoded[0]) == 466  # 2022-06-15's datasets
    pipeline.score(cfg, engine, "chicago", as_of=eod(history[0].name[:10]))
    assert stored() == latest


def test_a_forked_reader_that_fails_leaves_its_part_to_this_process(setup, monkeypatch, caplog):
    """A child that dies before sending its part (here: its read raises) costs time, not rows: the part is read
    here, the same table, and the failure is logged."""
    import logging

    from storage import queries

    engine, when, alone = chicago_week_read_alone(setup)
    monkeypatch.setattr(queries, "FORK_MIN_RECORDS", 100)

    def broken(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queries, "_catalog_part_fresh", broken)
    caplog.set_level(logging.WARNING, logger="storage.queries")
    split = storage.city_harvest(engine, "chicago", as_of=when, keep=False, jobs=2).frame
    pd.testing.assert_frame_equal(split, alone)
    assert len(alone) == 466
    assert [r.getMessage() for r in caplog.records] == [
        "a forked catalog reader failed (Ran out of input): its part is built in the parent"]


def test_score_all_many_in_workers_stores_what_one_process_stores(setup):
    """`maturity score --all` scores cities in worker processes: the same rows, value for value, as scoring them one
    after another here (three kinds, two run dates each: 3 x 2 dates)."""
    cfg, engine = setup
    for when in (T1, T2):
        for p in cfg.portals:
            pipeline.harvest(cfg, engine, p, now=when)
    keys = [c.key for c in cfg.cities]
    assert pipeline.score_all_many(cfg, engine, keys, jobs=1) == {"chicago": 2, "cincinnati": 2, "birmingham": 2}
    alone = storage.scores(engine, flagged=True)
    storage.save_scores(engine, "chicago", T1, {}, pd.DataFrame(), criterion_of={})  # gone, so workers must redo it
    assert pipeline.score_all_many(cfg, engine, keys, jobs=2) == {"chicago": 2, "cincinnati": 2, "birmingham": 2}
    in_workers = storage.scores(engine, flagged=True)
    assert len(alone) == len(in_workers) > 0 and set(alone["as_of"]) == {T1, T2}
    pd.testing.assert_frame_equal(alone, in_workers)


def test_a_short_crawl_makes_no_dip_in_the_score_history(setup):
    """06-08 (313 ids), the short crawl of 06-29 (95: partial), 07-20 (294 >= 0.9 x 313: complete). The short
    crawl's scores are stored flagged; every line and the latest value skip it."""
    cfg, engine = setup
    for d in ("2022-06-08", "2022-06-29", "2022-07-20"):
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(d), [CHICAGO_HISTORY / f"{d}.jsonl.gz"])
    assert pipeline.score_all(cfg, engine, "chicago") == 3
    line = storage.criterion_scores(engine, "chicago")
    assert sorted(set(line["as_of"])) == [eod("2022-06-08"), eod("2022-07-20")]
    marked = storage.criterion_scores(engine, "chicago", flagged=True)
    assert set(marked.loc[marked["flag"] == "partial", "as_of"]) == {eod("2022-06-29")}
    # the flagged point is the dip a line would have shown: the catalog-size indicator of the 95-id crawl
    # (log scale, 100 * log10(1 + n) / log10(1001)) is far under the complete crawls' around it
    size = storage.scores(engine, "chicago", flagged=True).query("indicator == 'od3_dataset_count'")
    by_day = dict(zip(size["as_of"], size["value"], strict=True))
    assert by_day[eod("2022-06-29")] < by_day[eod("2022-06-08")] and by_day[eod("2022-06-29")] < by_day[
        eod("2022-07-20")]
    assert set(storage.latest_scores(engine)["as_of"]) == {eod("2022-07-20")}


def test_an_empty_import_file_is_an_empty_run_and_never_scored(setup, tmp_path):
    cfg, engine = setup
    pipeline.import_files(cfg, engine, "chicago", date(2022, 6, 8), [CHICAGO_HISTORY / "2022-06-08.jsonl.gz"])
    assert pipeline.score(cfg, engine, "chicago")
    empty = tmp_path / "2022-06-15.jsonl"
    empty.write_text("")  # an archive that holds nothing (a failed scrape's file)
    [summary] = pipeline.import_files(cfg, engine, "chicago", date(2022, 6, 15), [empty])
    assert (summary.status, summary.items) == ("empty", 0)
    assert pipeline.score(cfg, engine, "chicago") == {}  # not a catalog of 0 datasets
    assert set(storage.scores(engine, "chicago", flagged=True)["as_of"]) == {eod("2022-06-08")}
    assert set(storage.latest_scores(engine, "chicago")["as_of"]) == {eod("2022-06-08")}
    assert len(storage.city_catalog(engine, "chicago")) == 313  # its last crawl, not an empty catalog
    assert pipeline.score_all(cfg, engine, "chicago") == 2  # both dates visited; the empty one stores nothing
    assert set(storage.scores(engine, "chicago", flagged=True)["as_of"]) == {eod("2022-06-08")}


def test_a_zero_item_response_after_a_good_run_is_empty_and_not_scored(setup, emu):
    """Issue 11 item 7: after a good harvest of 260 datasets the API answers with no results."""
    cfg, engine = setup
    chicago = cfg.portal("chicago-socrata")
    assert pipeline.harvest(cfg, engine, chicago, now=T1).status == "ok"
    pipeline.score(cfg, engine, "chicago")
    emu.fault("/api/catalog/v1", body={"results": [], "resultSetSize": 0})
    empty = pipeline.harvest(cfg, engine, chicago, now=T2)
    emu.clear_faults()
    assert (empty.status, empty.items) == ("empty", 0)
    assert pipeline.score(cfg, engine, "chicago") == {}
    assert set(storage.latest_scores(engine, "chicago")["as_of"]) == {T1}
    assert list(storage.runs(engine, portal_key="chicago-socrata")["status"]) == ["empty", "ok"]


def test_growth_counts_datasets_created_in_the_window_not_first_seen(setup):
    """The short crawl of 06-29 (95 ids) then 07-20 (294): 199 datasets are seen for the first time on 07-20,
    but only two were created in the 90 days before it (by hand: resource.createdAt of the 07-20 file in
    (2022-04-21T23:59:59, 2022-07-20T23:59:59]): p293-wvbd "Boundaries - Wards (2023-)" (2022-06-06) and
    spyv-p8fk "Boundaries - Planning Regions" (2022-05-24), both public datasets."""
    cfg, engine = setup
    for d in ("2022-06-29", "2022-07-20"):
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(d), [CHICAGO_HISTORY / f"{d}.jsonl.gz"])
    cat = storage.city_catalog(engine, "chicago")
    assert (cat["first_seen"] == eod("2022-07-20")).sum() == 294 - 95  # 06-29's 95 ids are all in 07-20
    scores = pipeline.score(cfg, engine, "chicago")
    growth = scores["od3_growth"]
    assert growth.numerator == 2 and set(growth.matches) == {"p293-wvbd", "spyv-p8fk"}


def test_an_imported_snapshot_is_dated_at_the_end_of_its_day(setup):
    """Building Permits (ydr8-5enu) was updated at 12:07:54 on 2022-06-08, the day of the snapshot that shows it
    (jq '.resource.data_updated_at'): dated at midnight the snapshot would be 12 h older than its own data."""
    cfg, engine = setup
    [summary] = pipeline.import_files(cfg, engine, "chicago", date(2022, 6, 8),
                                      [CHICAGO_HISTORY / "2022-06-08.jsonl.gz"])
    cat = storage.city_catalog(engine, "chicago").set_index("source_id")
    as_of = storage.runs(engine).iloc[0]["as_of"]
    assert as_of == eod("2022-06-08")
    assert cat.loc["ydr8-5enu", "data_modified"] == datetime(2022, 6, 8, 12, 7, 54, tzinfo=UTC)
    assert (cat["data_modified"].dropna() <= as_of).all()  # no update lies in the snapshot's future
    assert summary.status == "ok"


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
    from maturity import settings

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


def test_manual_evidence_as_of_counts_only_records_made_by_then(tmp_path):
    """A past view counts the evidence recorded by then: a dashboard record from its creation time, a config.toml
    record (no time of writing kept) from its document's date, an undated one always."""
    from indicators import criteria
    from maturity import settings

    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = settings.parse({"storage": {"url": url}, "cities": [{
        "key": "chicago", "name": "Chicago, IL", "portals": [{"kind": "dcat", "url": "https://example.org"}],
        "evidence": [{"criterion": "OD1", "url": "https://example.org/order", "date": date(2012, 12, 10)},
                     {"criterion": "DM3", "note": "undated charter"},
                     {"criterion": "PA3", "url": "https://example.org/goals", "date": date(2026, 11, 21)}]}]},
        tmp_path / "config.toml", {})
    storage.upgrade(url)
    engine = storage.open_db(url)
    storage.sync_config(engine, cfg)
    storage.add_evidence(engine, "chicago", "DM1", url="https://example.org/governance", date="2020-01-15",
                         note="committee charter", actor="cdo", at=T1)
    storage.add_evidence(engine, "chicago", "DM2", url="https://example.org/inventory", date="2019-05-01",
                         note="inventory policy", actor="cdo", at=T3)

    every = pipeline.manual_evidence(cfg, engine, "chicago")
    assert sorted(every["criterion"]) == ["DM1", "DM2", "DM3", "OD1", "PA3"]
    recorded = dict(zip(every["criterion"], every["recorded_at"], strict=True))
    assert recorded["DM1"] == pd.Timestamp(T1) and recorded["DM2"] == pd.Timestamp(T3)
    assert recorded["OD1"] == pd.Timestamp("2012-12-10", tz="UTC") and pd.isna(recorded["DM3"])

    # the end of 2026-11-21 (T2's day): DM1 recorded on T1, PA3's document dated that day; DM2 came on T3, a day later
    end = datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC)
    then = pipeline.manual_evidence(cfg, engine, "chicago", as_of=end)
    assert sorted(then["criterion"]) == ["DM1", "DM3", "OD1", "PA3"]
    status = criteria.statuses(criteria.rollup({}), then).set_index("criterion")["status"]
    assert status["DM1"] == "manual" and status["DM2"] == "open"
    # before anything was recorded on the dashboard: the config's order of 2012 and the undated charter
    early = pipeline.manual_evidence(cfg, engine, "chicago", as_of=datetime(2020, 1, 1, tzinfo=UTC))
    assert sorted(early["criterion"]) == ["DM3", "OD1"]


# --- several portals at once (harvest_many: worker processes, as `maturity harvest` runs them) -------------

def _catalog_rows(engine, city_key: str) -> list[tuple]:
    from connectors.base import RECORD_FIELDS

    frame = storage.city_catalog(engine, city_key)[list(RECORD_FIELDS)]
    return sorted(map(tuple, frame.astype(str).to_numpy().tolist()))


def _record_pids(monkeypatch, path) -> None:
    """Make every `harvest` append the id of the process it ran in to `path` (workers are forked: they see it)."""
    import os

    real = pipeline.harvest

    def harvest(*args, **kwargs):
        with open(path, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "harvest", harvest)


def test_harvest_many_in_workers_stores_what_one_by_one_stores(tmp_path, emu, db_url, monkeypatch):
    import os

    emu.clear_faults()
    emu.fault("/dcat/cincinnati/data.json", truncate=True)  # one portal fails; the others must not notice
    (tmp_path / "seq").mkdir()
    reference = write_config(tmp_path / "seq", emu, f"sqlite:///{tmp_path / 'seq' / 'one-by-one.db'}")
    storage.upgrade(reference.storage_url)
    ref_engine = storage.open_db(reference.storage_url)
    pipeline.harvest_many(reference, ref_engine, reference.portals, jobs=1, now=T1)

    cfg = write_config(tmp_path, emu, db_url)
    storage.upgrade(cfg.storage_url)
    engine = storage.open_db(cfg.storage_url)
    _record_pids(monkeypatch, tmp_path / "pids")
    events, finished = [], []
    got = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=3, now=T1,
                                progress=lambda key, n, total: events.append((key, n, total)),
                                done=finished.append)

    pids = set((tmp_path / "pids").read_text().split())
    assert len(pids) >= 2 and str(os.getpid()) not in pids  # the harvests ran in worker processes
    assert [s.portal_key for s in got] == ["chicago-socrata", "cincinnati-dcat", "birmingham-ckan"]  # config order
    assert [(s.status, s.items) for s in got] == [("ok", 260), ("failed", 0), ("ok", 10)]
    assert got[1].error.startswith("PortalIncompatible:") and "not valid JSON" in got[1].error
    assert sorted(s.portal_key for s in finished) == sorted(s.portal_key for s in got)  # done: once each
    # the connectors' page progress crossed back from the workers: Chicago's 260 unique of the 260 the emulator
    # reports (it counts unique ids), Birmingham's 10 of 10
    assert ("chicago-socrata", 260, 260) in events and ("birmingham-ckan", 10, 10) in events
    for city in ("chicago", "cincinnati", "birmingham"):
        assert _catalog_rows(engine, city) == _catalog_rows(ref_engine, city)
    assert storage.row_counts(engine)["dataset_versions"] == storage.row_counts(ref_engine)["dataset_versions"] == 270
    emu.clear_faults()


def _dies_in_worker(monkeypatch, cfg, portal_key: str, *, after_start: bool) -> None:
    """Make the harvest of `portal_key` kill its worker process (after starting its run, or before), like the
    kernel's OOM killer would, once the portals of other hosts have finished: those may share the worker process
    (threads), and a portal that was still running would die with it. A portal queued behind it in its own host's
    lane has not started and goes to a new worker (harvesters)."""
    import os
    import time

    from maturity import harvesters

    real_harvest, real_connector = pipeline.harvest, pipeline.make_connector
    dying = next(p for p in cfg.portals if p.key == portal_key)
    others = {p.key for p in cfg.portals if harvesters.host_of(p) != harvesters.host_of(dying)}

    def die() -> None:
        engine = storage.open_db(cfg.storage_url)
        end = time.monotonic() + 60  # a condition, bounded for a loaded machine
        while time.monotonic() < end:
            runs = storage.runs(engine)
            done = runs[runs["portal_key"].isin(others) & (runs["status"] != "running")] if len(runs) else runs
            if set(done["portal_key"]) >= others:
                break
            time.sleep(0.05)
        os._exit(9)

    class Dying:
        def __init__(self, portal, **kwargs):
            self.inner = real_connector(portal, **kwargs)

        def fetch(self):
            die()

    def make_connector(portal, **kwargs):
        return Dying(portal, **kwargs) if portal.key == portal_key else real_connector(portal, **kwargs)

    def harvest(settings, engine, portal, **kwargs):
        if portal.key == portal_key and not after_start:
            die()
        return real_harvest(settings, engine, portal, **kwargs)

    monkeypatch.setattr(pipeline, "make_connector", make_connector)
    monkeypatch.setattr(pipeline, "harvest", harvest)


@pytest.mark.parametrize("after_start", [True, False], ids=["mid-harvest", "before-its-run"])
def test_a_worker_that_dies_fails_its_portal_alone(setup, monkeypatch, after_start):
    cfg, engine = setup
    _dies_in_worker(monkeypatch, cfg, "cincinnati-dcat", after_start=after_start)
    got = {s.portal_key: s for s in pipeline.harvest_many(cfg, engine, cfg.portals, jobs=2, now=T1)}

    assert {k: s.status for k, s in got.items()} == {
        "chicago-socrata": "ok", "cincinnati-dcat": "failed", "birmingham-ckan": "ok"}
    expected = ("worker process lost while harvesting cincinnati-dcat" if after_start
                else "worker process lost before the harvest started")
    assert got["cincinnati-dcat"].error.startswith(expected)
    runs = storage.runs(engine)
    assert "running" not in set(runs["status"])  # no run is left hanging
    lost = runs[runs["portal_key"] == "cincinnati-dcat"]
    assert list(lost["status"]) == ["failed"] and lost.iloc[0]["error"] == got["cincinnati-dcat"].error
    assert len(storage.city_catalog(engine, "chicago")) == 260
