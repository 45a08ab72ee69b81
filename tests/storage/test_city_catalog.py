"""city_harvest / city_catalog: the city's portals in one table and the stored facts behind it, as data.

The data.json run is Chicago's real 2020-07-22 document (tests/fixtures/dcat_us, see PROVENANCE.md) read and
checked as `maturity import` does: its POD v1.1 schema errors are stored with the run as rows, not as a note.
"""
from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

import storage
from connectors import make_connector
from connectors.archive import read_items
from connectors.base import FetchStats
from indicators.base import DatajsonCheck
from maturity import pipeline
from storage import queries
from tests.storage.conftest import CHICAGO, CHICAGO_DCAT, OTHER, chicago_snapshot, day, save

CHICAGO_DATA_JSON = Path(__file__).parents[1] / "fixtures" / "dcat_us" / "chicago_data_json_socrata_2020-07-22.json.gz"


@cache
def chicago_data_json():
    """(records, raws, stats) of the real document: 801 datasets, 74 schema errors on 69 of them (counted by
    connectors.dcat.validate; e.g. 2b73-3uqk's contact e-mail is "mailto:cocadmin", not an address)."""
    raws, stats = read_items(CHICAGO_DATA_JSON, "dcat")
    connector = make_connector(CHICAGO_DCAT)
    return [connector.normalize(r) for r in raws], [connector.raw_bytes(r) for r in raws], stats


def dcat_run(engine, date: str, *, fail: str | None = None, stats: FetchStats | None = None) -> int:
    run_id = storage.start_run(engine, CHICAGO_DCAT.key, as_of=day(date))
    if fail:
        storage.fail_run(engine, run_id, fail, finished_at=day(date))
    elif stats is not None:  # the real datasets, as a connector that reported no schema check stores them
        records, raws, _ = chicago_data_json()
        storage.save_harvest(engine, run_id, records, raws, stats, finished_at=day(date))
    else:
        records, raws, real_stats = chicago_data_json()
        storage.save_harvest(engine, run_id, records, raws, real_stats, finished_at=day(date))
    return run_id


def test_city_harvest_concatenates_portals_and_keeps_the_schema_check_as_data(engine):
    for d in ("2022-06-08", "2022-06-15", "2022-06-29"):
        save(engine, chicago_snapshot(d))
    dcat_id = dcat_run(engine, "2022-06-10")
    dcat_run(engine, "2022-06-20", fail="PortalUnavailable: HTTP 503 after 3 tries")

    h = storage.city_harvest(engine, "chicago", day("2022-06-15"))
    assert len(h.frame) == 466 + 801  # the Socrata catalog of 06-15 plus the data.json's 801 datasets
    assert len(storage.city_catalog(engine, "chicago", day("2022-06-15"))) == 466 + 801
    assert h.frame.attrs == {}  # nothing rides along in attrs
    assert h.kinds == {CHICAGO.key: "socrata", CHICAGO_DCAT.key: "dcat"}
    assert h.history_start == day("2022-06-08")
    # runs: the city's run history up to as_of, oldest first; catalog_runs: where each part comes from.
    assert list(zip(h.runs["portal_key"], h.runs["as_of"], h.runs["status"], strict=True)) == [
        (CHICAGO.key, day("2022-06-08"), "ok"), (CHICAGO_DCAT.key, day("2022-06-10"), "ok"),
        (CHICAGO.key, day("2022-06-15"), "ok")]
    assert {k: c.run["as_of"] for k, c in h.catalog_runs.items() if c.run} == {
        CHICAGO_DCAT.key: day("2022-06-10"), CHICAGO.key: day("2022-06-15")}
    check = h.schema_checks[CHICAGO_DCAT.key]
    assert check is not None and (check.entries, check.error_count, len(check.errors)) == (801, 74, 69)
    assert check.errors["2b73-3uqk"][0].startswith("contactPoint/hasEmail: 'mailto:cocadmin' does not match")
    assert CHICAGO.key in h.schema_checks and h.schema_checks[CHICAGO.key] is None  # Socrata: no schema
    # stored as rows of their own, one per dataset with errors; the run's notes hold no count to parse
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM schema_errors WHERE run_id = :r"), {"r": dcat_id}).scalar()
    assert n == 69
    assert storage.runs(engine, CHICAGO_DCAT.key)["notes"].isna().all()

    # As of 06-29: the Socrata run is suspect (95 of 466); data.json's newest run failed, so its check is the
    # one of the ok run of 06-10.
    late = storage.city_harvest(engine, "chicago", day("2022-06-29"))
    assert len(late.frame) == 95 + 801
    assert late.catalog_runs[CHICAGO.key].run["status"] == "suspect"
    assert list(late.runs.loc[late.runs["portal_key"] == CHICAGO_DCAT.key, "status"]) == ["ok", "failed"]
    assert late.schema_checks[CHICAGO_DCAT.key].error_count == 74


def test_portal_facts_assembled_from_storage(engine):
    for d in ("2022-06-08", "2022-06-15", "2022-06-22", "2022-06-29"):
        save(engine, chicago_snapshot(d))
    dcat_run(engine, "2022-06-10")
    dcat_run(engine, "2022-06-30", fail="PortalUnavailable: HTTP 503 after 3 tries")
    facts = pipeline.portal_facts(storage.city_harvest(engine, "chicago"), ("Police", "Finance"))
    # Socrata's newest run (06-29, suspect) did not fail: reachable, though data.json's newest failed
    assert facts.reachable is True and facts.kinds == frozenset({"socrata", "dcat"})
    assert facts.datajson == DatajsonCheck(checked=True, present=True, validated=True, entries=801, error_count=74,
                                           errors=storage.city_harvest(engine, "chicago").schema_checks[
                                               CHICAGO_DCAT.key].errors)
    assert facts.history_start == day("2022-06-08") and facts.departments == ("Police", "Finance")
    # typed runs, oldest first; complete as storage judged it (>= 0.9 x the last complete run: 256 of 466 on
    # 06-22 is a partial crawl, so is 95 on 06-29)
    assert [(r.portal_key, r.as_of.date().isoformat(), r.status, r.complete) for r in facts.runs] == [
        (CHICAGO.key, "2022-06-08", "ok", True), (CHICAGO_DCAT.key, "2022-06-10", "ok", True),
        (CHICAGO.key, "2022-06-15", "ok", True), (CHICAGO.key, "2022-06-22", "suspect", False),
        (CHICAGO.key, "2022-06-29", "suspect", False), (CHICAGO_DCAT.key, "2022-06-30", "failed", False)]
    assert facts.runs[0].items == 313  # unique ids of the 06-08 snapshot
    # removals are what storage offers: two complete Socrata runs (06-08, 06-15) cannot confirm one (it takes
    # two complete runs in a row lacking a dataset), so none is known yet - not "none removed"
    assert facts.removed is None and storage.city_harvest(engine, "chicago").removed is None
    assert storage.catalog_run(engine, CHICAGO.key, day("2022-06-22")).removed is None


def test_data_json_without_a_check_on_record_is_present_but_not_validated(engine):
    dcat_run(engine, "2022-06-10", stats=FetchStats())  # e.g. a run stored by a connector that reported none
    facts = pipeline.portal_facts(storage.city_harvest(engine, "chicago"))
    assert facts.datajson == DatajsonCheck(checked=True, present=True, validated=False)


def test_an_empty_data_json_is_not_a_present_data_json(engine):
    """A data.json listing nothing is an *empty* run: not a catalog of 0 datasets, not a present data.json."""
    run_id = storage.start_run(engine, CHICAGO_DCAT.key, as_of=day("2022-06-10"))
    storage.save_harvest(engine, run_id, [], [], FetchStats(), finished_at=day("2022-06-10"))
    h = storage.city_harvest(engine, "chicago", day("2022-06-15"))
    assert h.frame.empty
    assert list(h.runs["status"]) == ["empty"]
    facts = pipeline.portal_facts(h)
    assert facts.datajson == DatajsonCheck(checked=True)  # configured and looked for, not present


def test_city_with_only_failed_runs_is_unreachable(engine):
    run_id = storage.start_run(engine, OTHER.key, as_of=day("2022-06-08"))
    storage.fail_run(engine, run_id, "PortalUnavailable: connection refused", finished_at=day("2022-06-08"))
    h = storage.city_harvest(engine, "cincinnati")
    assert h.frame.empty and "title" in h.frame.columns and "first_seen" in h.frame.columns
    facts = pipeline.portal_facts(h)
    assert facts.reachable is False
    assert facts.datajson == DatajsonCheck()  # no data.json portal configured: not checked
    assert facts.history_start is None and facts.removed is None  # nothing known, not "none removed"
    r = storage.runs(engine, city_key="cincinnati").iloc[0]
    assert (r["status"], r["error"]) == ("failed", "PortalUnavailable: connection refused")


def test_migration_moves_old_schema_error_notes_into_the_table(db_url):
    """A database written before 0002 kept the count as the note "schema_errors=N"; the upgrade moves it."""
    from tests.storage.conftest import SETTINGS

    storage.upgrade(db_url, "0001")
    engine = storage.open_db(db_url)
    storage.sync_config(engine, SETTINGS)
    from storage.models import runs_t

    with engine.begin() as conn:  # the columns of 0001 only
        t = day("2022-06-10")
        conn.execute(sa.insert(runs_t).values(portal_key=CHICAGO_DCAT.key, source="harvest", as_of=t, started_at=t,
                                              finished_at=t, status="ok", items=229,
                                              notes=["schema_errors=3", "dataset x: y"]))
    storage.upgrade(db_url)
    check = storage.city_harvest(engine, "chicago").schema_checks[CHICAGO_DCAT.key]
    assert check is not None and (check.entries, check.error_count, dict(check.errors)) == (229, 3, {})
    storage.dispose(db_url)


def test_catalog_chunks_and_pages_are_the_city_catalog_in_its_order(engine):
    """city_catalog_chunks and catalog_rows read the rows city_harvest reads, portal by portal in key order
    ("chicago-dcat" before "chicago-socrata"), each by source_id: the data.json's 801 datasets, then the Socrata
    catalog of 06-15 (466); a page across the seam holds the rows of both around it."""
    for d in ("2022-06-08", "2022-06-15"):
        save(engine, chicago_snapshot(d))
    dcat_run(engine, "2022-06-10")
    at = day("2022-06-15")
    whole = storage.city_catalog(engine, "chicago", at)
    ids = sorted(whole.loc[whole["portal_key"] == CHICAGO_DCAT.key, "source_id"]) + \
        sorted(whole.loc[whole["portal_key"] == CHICAGO.key, "source_id"])
    chunks = list(storage.city_catalog_chunks(engine, "chicago", at, rows=300))
    assert [len(c) for c in chunks] == [300, 300, 201, 300, 166]  # 801 = 300 + 300 + 201, 466 = 300 + 166
    assert [sid for c in chunks for sid in c["source_id"]] == ids
    assert list(chunks[0].columns) == list(whole.columns)
    page, total = storage.catalog_rows(engine, "chicago", 791, 811, at)
    assert total == 801 + 466 and list(page["source_id"]) == ids[791:811]
    assert list(page["portal_key"]) == [CHICAGO_DCAT.key] * 10 + [CHICAGO.key] * 10
    titles = whole.set_index(["portal_key", "source_id"])["title"]  # the two portals share some 4x4 ids
    assert list(page["title"]) == [titles[k] for k in zip(page["portal_key"], page["source_id"], strict=True)]
    assert storage.catalog_rows(engine, "chicago", 0, 0, at)[1] == 801 + 466  # a count alone decodes nothing


def test_latest_of_keeps_each_datasets_newest_version_first_date_and_distinct_data_dates():
    from storage.queries import latest_of

    rows = [("a", 1, "2022-06-01 06:00:00", "2022-05-20 00:00:00"),
            ("a", 3, "2022-06-08 06:00:00", None),
            ("a", 2, "2022-06-08 06:00:00", "2022-04-02 00:00:00"),  # same as_of as version 3: the higher id wins
            ("b", 4, "2022-06-01 06:00:00", None),
            ("c", 5, "2022-06-01 06:00:00", "2022-05-01 00:00:00"),  # not asked for
            ("d", 6, "2022-06-08 06:00:00", "2022-05-01 00:00:00")]
    for order in (rows, rows[::-1]):
        found = latest_of(order, {"a", "b", "d"})
        assert found.source_ids == ["a", "b", "d"]  # in source_id order
        assert found.version_ids.tolist() == [3, 4, 6]
        assert found.first_seen == ["2022-06-01 06:00:00", "2022-06-01 06:00:00", "2022-06-08 06:00:00"]
        assert found.seen == [("2022-04-02 00:00:00", "2022-05-20 00:00:00"), (), ("2022-05-01 00:00:00",)]
    # One version each (the bulk path): the rows themselves, those not asked for left out.
    alone = latest_of(rows[3:][::-1], {"b", "d"})
    assert (alone.source_ids, alone.version_ids.tolist()) == (["b", "d"], [4, 6])
    assert (alone.first_seen, alone.seen) == (["2022-06-01 06:00:00", "2022-06-08 06:00:00"],
                                              [(), ("2022-05-01 00:00:00",)])
    assert latest_of([], {"a"}).source_ids == [] and latest_of(rows, set()).version_ids.tolist() == []


def test_a_forked_part_comes_back_whole_and_a_child_that_never_answers_is_given_up():
    """storage/queries.py reads parts of a large catalog in forked children. Their results come back whole over
    the pipe (here 5 MB); a child that hangs (forked beside another thread holding a lock it needs) is given up
    after the bound, killed and reaped, and the parent builds that part itself."""
    big = os.urandom(5_000_000)
    assert queries._forked(lambda: {"part": big}).result() == {"part": big}
    hung = queries._forked(lambda: time.sleep(120))
    began = time.monotonic()
    assert hung.result(within_s=0.5) is None
    assert time.monotonic() - began < 60  # it gave up; it did not wait out the child's 120 s
    with pytest.raises(ChildProcessError):
        os.waitpid(hung.pid, os.WNOHANG)  # reaped already
