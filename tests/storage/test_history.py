"""Change-only history on the eight real weekly Chicago snapshots (2022-06-08 .. 07-23), both backends."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import storage
from connectors.base import RECORD_FIELDS, records_frame
from tests.storage.conftest import CHICAGO, CHICAGO_DATES, chicago_snapshot, day, save

# Unique dataset ids per snapshot, counted by hand:
#   zcat tests/fixtures/socrata/history/data.cityofchicago.org/<date>.jsonl.gz | jq -r .resource.id | sort -u | wc -l
CHICAGO_UNIQUE = {"2022-06-08": 313, "2022-06-15": 466, "2022-06-22": 256, "2022-06-29": 95,
                  "2022-07-06": 95, "2022-07-13": 196, "2022-07-20": 294, "2022-07-23": 260}
# Complete ("ok") = at least COMPLETE_SHARE (0.9) of the last complete run's unique ids, by hand from the
# counts above: 06-08 is the first; 466 >= 0.9 x 313; then against 466 (06-15): 256 = 0.55, 95 = 0.20,
# 95, 196 = 0.42 are partial ("suspect"). 07-20 (294 = 0.63) is complete by the confirmed-shrink rule: partial
# runs since 06-22, 28 days before (CONFIRM_DAYS), and 294 is the largest crawl since 06-15 (>= 0.9 x 294).
# 07-23: 260 < 0.9 x 294 = 264.6, partial again.
CHICAGO_STATUS = {"2022-06-08": "ok", "2022-06-15": "ok", "2022-06-22": "suspect", "2022-06-29": "suspect",
                  "2022-07-06": "suspect", "2022-07-13": "suspect", "2022-07-20": "ok", "2022-07-23": "suspect"}
# Removals confirmed by each complete run (in the complete run before the previous one, absent from the
# previous and from this one); None where not complete, or before the third complete run. 07-20 is the
# third: `comm -23 ids_06-08 ids_06-15` is empty (06-08's 313 ids are all in 06-15), so 0.
CHICAGO_REMOVED = {"2022-06-08": None, "2022-06-15": None, "2022-06-22": None, "2022-06-29": None,
                   "2022-07-06": None, "2022-07-13": None, "2022-07-20": 0, "2022-07-23": None}
# "Building Permits" (ydr8-5enu) is in all eight files; its resource.data_updated_at per file, by hand with
#   zcat <date>.jsonl.gz | jq -r 'select(.resource.id=="ydr8-5enu") | .resource.data_updated_at'
PERMITS = "ydr8-5enu"
PERMITS_DATA_UPDATED = {
    "2022-06-08": datetime(2022, 6, 8, 12, 7, 54, tzinfo=UTC),
    "2022-06-15": datetime(2022, 6, 15, 12, 6, 26, tzinfo=UTC),
    "2022-06-22": datetime(2022, 6, 22, 12, 8, 12, tzinfo=UTC),
    "2022-07-23": datetime(2022, 7, 22, 12, 15, 45, tzinfo=UTC),
}


def expected_frame(date: str):
    """What `maturity datasets` must print for that snapshot: its normalized records, one per id, by id."""
    by_id = {}
    for r in chicago_snapshot(date).records:
        by_id.setdefault(r.source_id, r)
    return records_frame([by_id[k] for k in sorted(by_id)])


def assert_catalog_is(cat, date: str) -> None:
    assert_frame_equal(cat[list(RECORD_FIELDS)], expected_frame(date))


def test_the_fixture_is_the_real_weekly_history():
    # Guard: the counts below were taken from these exact files.
    assert {d: len({r.source_id for r in chicago_snapshot(d).records}) for d in CHICAGO_DATES} == CHICAGO_UNIQUE


def test_catalog_as_of_each_run_equals_that_snapshot(engine):
    summaries = {d: save(engine, chicago_snapshot(d)) for d in CHICAGO_DATES}
    for d in CHICAGO_DATES:
        assert summaries[d].items == CHICAGO_UNIQUE[d]
        cat = storage.catalog(engine, CHICAGO.key, day(d))
        assert_catalog_is(cat, d)
        assert storage.catalog_run(engine, CHICAGO.key, day(d)).run["as_of"] == day(d)
        assert set(cat["city_key"]) == {"chicago"}
    # A date between two runs gives the earlier run; no date gives the latest.
    assert_catalog_is(storage.catalog(engine, CHICAGO.key, datetime(2022, 6, 10, tzinfo=UTC)), "2022-06-08")
    assert_catalog_is(storage.catalog(engine, CHICAGO.key), "2022-07-23")
    # Before the first run there is no catalog, but every column is there.
    empty = storage.catalog(engine, CHICAGO.key, datetime(2022, 1, 1, tzinfo=UTC))
    assert len(empty) == 0 and list(empty.columns) == list(storage.catalog(engine, CHICAGO.key).columns)
    assert storage.catalog_run(engine, CHICAGO.key, datetime(2022, 1, 1, tzinfo=UTC)).run is None


def test_first_seen_and_data_modified_seen(engine):
    for d in CHICAGO_DATES:
        save(engine, chicago_snapshot(d))
    cat = storage.catalog(engine, CHICAGO.key, day("2022-06-22")).set_index("source_id")
    assert cat.loc[PERMITS, "first_seen"] == day("2022-06-08")
    assert cat.loc[PERMITS, "data_modified_seen"] == tuple(PERMITS_DATA_UPDATED[d] for d in CHICAGO_DATES[:3])
    assert storage.catalog_run(engine, CHICAGO.key, day("2022-06-22")).history_start == day("2022-06-08")


def test_unchanged_reimport_writes_no_version_rows(engine):
    first = save(engine, chicago_snapshot("2022-06-15"))
    assert first.new_versions == CHICAGO_UNIQUE["2022-06-15"]  # a first run stores every dataset once
    before = storage.row_counts(engine)
    again = save(engine, chicago_snapshot("2022-06-15"))
    after = storage.row_counts(engine)
    assert again.status == "ok" and again.new_versions == 0 and again.removed == 0  # 2 complete runs: none known
    assert after["dataset_versions"] == before["dataset_versions"]
    assert after["datasets"] == before["datasets"]
    assert after["harvest_runs"] == before["harvest_runs"] + 1  # one run row, not a row per dataset
    assert_catalog_is(storage.catalog(engine, CHICAGO.key), "2022-06-15")


def test_complete_and_partial_runs_on_the_real_chicago_history(engine):
    summaries = {d: save(engine, chicago_snapshot(d)) for d in CHICAGO_DATES}
    assert {d: s.status for d, s in summaries.items()} == CHICAGO_STATUS
    assert {d: s.removed for d, s in summaries.items()} == {d: n or 0 for d, n in CHICAGO_REMOVED.items()}
    assert summaries["2022-06-29"].suspect_reason == (
        "95 unique items is under 0.9 x the 466 of the last complete run #2 (2022-06-15): a partial crawl, "
        "not deletions")
    assert summaries["2022-06-08"].suspect_reason is None

    # The catalog as of a partial run is what that run saw, and says so; its missing datasets are not
    # removals, and no removal is known before three complete runs.
    short = storage.catalog(engine, CHICAGO.key, day("2022-06-29"))
    assert len(short) == 95
    short_run = storage.catalog_run(engine, CHICAGO.key, day("2022-06-29"))
    assert short_run.run["status"] == "suspect" and short_run.run["complete"] is False
    assert short_run.removed is None
    # 07-20 is complete (a lasting shrink, see CHICAGO_STATUS), the third: nothing confirmed removed.
    after_run = storage.catalog_run(engine, CHICAGO.key, day("2022-07-20"))
    assert after_run.run["status"] == "ok" and after_run.removed == ()
    assert storage.removed_ids(engine, CHICAGO.key) == []
    assert storage.removed_ids(engine, CHICAGO.key, day("2022-07-13")) is None

    runs = storage.runs(engine, portal_key=CHICAGO.key)
    assert list(runs["as_of"]) == [day(d) for d in reversed(CHICAGO_DATES)]  # newest first
    assert list(runs["status"]) == [CHICAGO_STATUS[d] for d in reversed(CHICAGO_DATES)]
    assert list(runs["complete"]) == [CHICAGO_STATUS[d] == "ok" for d in reversed(CHICAGO_DATES)]
    assert [None if pd.isna(n) else int(n) for n in runs["removed"]] == [
        CHICAGO_REMOVED[d] for d in reversed(CHICAGO_DATES)]
    assert any("shrink confirmed" in n for n in runs.set_index("as_of").loc[day("2022-07-20"), "notes"])


def test_a_dataset_missing_from_one_complete_run_is_not_removed(engine):
    """Real records, shifted dates: the 313 ids of 06-08, then 07-20's crawl (294 ids, >= 0.9 x 313: complete)
    lacks 22 of them (`comm -23 ids_06-08 ids_07-20 | wc -l`). Under the old rule they were 22 removals; if
    the next complete run has them again they were a crawl's hiccup, and only if it lacks them too are they
    removed."""
    from dataclasses import replace

    first, short = chicago_snapshot("2022-06-08"), chicago_snapshot("2022-07-20")
    gone = {r.source_id for r in first.records} - {r.source_id for r in short.records}
    assert len(gone) == 22
    t0 = day("2022-08-01")
    save(engine, replace(first, as_of=t0))
    save(engine, replace(short, as_of=t0 + timedelta(days=7)))
    back = save(engine, replace(first, as_of=t0 + timedelta(days=14)))  # they came back
    assert [r for r in storage.runs(engine, portal_key=CHICAGO.key)["status"]] == ["ok", "ok", "ok"]
    assert back.removed == 0
    assert storage.removed_ids(engine, CHICAGO.key) == []


def test_removals_need_two_complete_runs_in_a_row(engine):
    """313 ids (06-08), then 07-20's 294 twice: the 22 ids both lack are removed, as of the second."""
    from dataclasses import replace

    first, short = chicago_snapshot("2022-06-08"), chicago_snapshot("2022-07-20")
    t0 = day("2022-08-01")
    statuses = [save(engine, replace(snap, as_of=t0 + timedelta(days=7 * i)))
                for i, snap in enumerate((first, short, short))]
    assert [s.status for s in statuses] == ["ok", "ok", "ok"]
    assert [s.removed for s in statuses] == [0, 0, 22]
    removed = storage.removed_ids(engine, CHICAGO.key)
    assert removed == sorted({r.source_id for r in first.records} - {r.source_id for r in short.records})
    assert storage.removed_ids(engine, CHICAGO.key, t0 + timedelta(days=7)) is None  # two complete runs only
    cat = storage.catalog(engine, CHICAGO.key)
    assert storage.catalog_run(engine, CHICAGO.key).removed == tuple(removed)
    assert set(removed).isdisjoint(cat["source_id"])


@pytest.mark.parametrize("order", [
    # The first order is the hard one: pnau-cf66 has the same raw hash on 06-08 and 06-22 but another on
    # 06-15 (and 07-23). 06-22 writes nothing for it (same as 06-08); when 06-15 arrives afterwards, 06-22
    # must still show what it saw, not 06-15's version.
    ("2022-07-23", "2022-06-08", "2022-06-22", "2022-06-15"),
    ("2022-06-22", "2022-06-15", "2022-07-23", "2022-06-08"),
])
def test_out_of_order_imports(engine, order):
    """Imports carry their snapshot's date; versions are ordered by that date, not by insertion."""
    for d in order:
        save(engine, chicago_snapshot(d))
    for d in order:
        assert_catalog_is(storage.catalog(engine, CHICAGO.key, day(d)), d)
    latest = storage.catalog(engine, CHICAGO.key).set_index("source_id")
    assert storage.catalog_run(engine, CHICAGO.key).run["as_of"] == day("2022-07-23")
    assert latest.loc[PERMITS, "first_seen"] == day("2022-06-08")
    assert latest.loc[PERMITS, "data_modified_seen"] == tuple(PERMITS_DATA_UPDATED.values())
    # Re-importing a snapshot that is already stored, even an old one, writes no versions.
    assert save(engine, chicago_snapshot(order[1])).new_versions == 0


def test_a_failure_mid_save_leaves_earlier_runs_intact(engine):
    good = save(engine, chicago_snapshot("2022-06-08"))
    before = storage.row_counts(engine)
    snap = chicago_snapshot("2022-06-15")  # 153 datasets that 06-08 lacks: new dataset rows go in first
    known = {r.source_id for r in chicago_snapshot("2022-06-08").records}
    last_new = max(i for i, r in enumerate(snap.records) if r.source_id not in known)
    bad_raws = list(snap.raws)
    bad_raws[last_new] = None  # not bytes: compressing it fails after the new dataset rows were inserted
    run_id = storage.start_run(engine, CHICAGO.key, as_of=snap.as_of, source="import")
    with pytest.raises(TypeError):
        storage.save_harvest(engine, run_id, list(snap.records), bad_raws, snap.stats, finished_at=snap.as_of)

    after = storage.row_counts(engine)
    assert after["datasets"] == before["datasets"] and after["dataset_versions"] == before["dataset_versions"]
    runs = storage.runs(engine, portal_key=CHICAGO.key).set_index("run_id")
    assert runs.loc[run_id, "status"] == "failed"
    assert runs.loc[run_id, "error"].startswith("TypeError")
    assert runs.loc[good.run_id, "status"] == "ok"
    # The failed run hides nothing: the latest catalog is still the last good run.
    assert_catalog_is(storage.catalog(engine, CHICAGO.key), "2022-06-08")
    # And the same snapshot stores cleanly afterwards.
    assert save(engine, snap).status == "ok"
    assert_catalog_is(storage.catalog(engine, CHICAGO.key), "2022-06-15")


def test_a_closed_run_cannot_be_saved_twice(engine):
    snap = chicago_snapshot("2022-06-08")
    summary = save(engine, snap)
    with pytest.raises(ValueError, match="not running"):
        storage.save_harvest(engine, summary.run_id, list(snap.records), list(snap.raws), snap.stats,
                             finished_at=snap.as_of)
    # The refused second save leaves the stored run as it was.
    assert storage.runs(engine, portal_key=CHICAGO.key).iloc[0]["status"] == "ok"


def test_items_repeated_in_the_input_count_once(engine):
    snap = chicago_snapshot("2022-06-08")
    # The 06-08 file has 362 lines for 313 ids (49 repeats, read_items drops them and counts them);
    # feed ten records a second time on top: they are stored once and counted as repeats too.
    assert snap.stats.repeats == 362 - 313
    run_id = storage.start_run(engine, CHICAGO.key, as_of=snap.as_of, source="import")
    s = storage.save_harvest(engine, run_id, list(snap.records) + list(snap.records[:10]),
                             list(snap.raws) + list(snap.raws[:10]), snap.stats, finished_at=snap.as_of)
    assert (s.items, s.repeats, s.new_versions) == (313, 49 + 10, 313)
    assert_catalog_is(storage.catalog(engine, CHICAGO.key), "2022-06-08")


def test_records_of_another_portal_fail_the_run(engine):
    snap = chicago_snapshot("2022-06-08")
    run_id = storage.start_run(engine, "cincinnati-socrata", as_of=snap.as_of)
    with pytest.raises(ValueError, match="is from portal 'chicago-socrata'"):
        storage.save_harvest(engine, run_id, list(snap.records), list(snap.raws), snap.stats, finished_at=snap.as_of)
    run = storage.runs(engine, portal_key="cincinnati-socrata").iloc[0]
    assert run["status"] == "failed" and "chicago-socrata" in run["error"]
    assert storage.row_counts(engine)["datasets"] == 0


def test_a_rebuilt_catalog_is_not_stale_after_more_history_arrives(engine):
    """catalog() keeps rebuilt frames per process; new runs or versions must show, and callers' edits must not leak."""
    for d in ("2022-06-08", "2022-06-22"):
        save(engine, chicago_snapshot(d))
    first = storage.catalog(engine, CHICAGO.key, day("2022-06-22"))
    assert first.set_index("source_id").loc[PERMITS, "data_modified_seen"] == (
        PERMITS_DATA_UPDATED["2022-06-08"], PERMITS_DATA_UPDATED["2022-06-22"])
    first["title"] = "edited by a caller"
    again = storage.catalog(engine, CHICAGO.key, day("2022-06-22"))
    assert_catalog_is(again, "2022-06-22")

    save(engine, chicago_snapshot("2022-06-15"))  # older than 06-22, imported later
    after = storage.catalog(engine, CHICAGO.key, day("2022-06-22"))
    assert_catalog_is(after, "2022-06-22")
    assert after.set_index("source_id").loc[PERMITS, "data_modified_seen"] == tuple(
        PERMITS_DATA_UPDATED[d] for d in ("2022-06-08", "2022-06-15", "2022-06-22"))
    # 06-22 (256) is now judged against 06-15 (466), the complete run just before it: partial.
    after_run = storage.catalog_run(engine, CHICAGO.key, day("2022-06-22"))
    assert after_run.run["status"] == "suspect" and after_run.removed is None



def test_a_lasting_shrink_becomes_the_new_size(engine):
    """A catalog that stays small for CONFIRM_DAYS is a real shrink, not a short crawl.

    Real records, shifted dates: the 313-id crawl of 06-08, then the 95-id crawl of 06-29 stored weekly
    as if the portal had lost two thirds of its catalog for good.
    """
    from dataclasses import replace

    from storage.crawls import CONFIRM_DAYS

    big, small = chicago_snapshot("2022-06-08"), chicago_snapshot("2022-06-29")
    assert CONFIRM_DAYS == 28
    save(engine, big)
    statuses = []
    for week in range(1, 6):  # 7, 14, 21, 28, 35 days after the big crawl; the streak starts at day 7
        statuses.append(save(engine, replace(small, as_of=day("2022-06-08") + timedelta(days=7 * week))))
    assert [s.status for s in statuses] == ["suspect", "suspect", "suspect", "suspect", "ok"]
    run = storage.runs(engine, portal_key=CHICAGO.key).iloc[0]
    assert any("shrink confirmed" in n for n in run["notes"])
    # Day 35 is 28 days after the streak began: complete, the new size. Its missing datasets are removed once the
    # next complete run lacks them too: comm -23 ids_2022-06-08 ids_2022-06-29 | wc -l  ->  219.
    assert statuses[-1].removed == 0
    nxt = save(engine, replace(small, as_of=day("2022-06-08") + timedelta(days=42)))
    assert nxt.status == "ok" and nxt.removed == 219


def test_a_run_that_another_run_of_its_portal_overtakes_before_its_write_lock_fails(engine):
    """A streamed run reads its first batch (and finds it unchanged) before it takes the write lock. Here another
    run of the same portal (which leases exclude in real use) stores a new version of one dataset in between:
    the run must fail under the lock rather than record that dataset as unchanged."""
    from dataclasses import replace

    snap = chicago_snapshot("2022-06-15")
    assert save(engine, snap).new_versions == CHICAGO_UNIQUE["2022-06-15"]
    later = snap.as_of + timedelta(days=1)
    run_id = storage.start_run(engine, CHICAGO.key, as_of=later)
    run = storage.RunWriter(engine, run_id)
    ids = [r.source_id for r in snap.records]
    with pytest.raises(storage.RunConflict, match="another run of portal 'chicago-socrata' stored 1 of its"):
        with run:
            stored = run.stored_hashes(ids)
            run.keep([r.source_id for r in snap.records if stored[r.source_id] == r.raw_hash])
            other = replace(snap.records[0], raw_hash="0" * 40)  # a changed version, dated between the two runs
            save(engine, replace(snap, as_of=snap.as_of + timedelta(hours=12), records=(other,),
                                 raws=snap.raws[:1]))
            run.add([], [])
    failed = storage.runs(engine, portal_key=CHICAGO.key).set_index("run_id").loc[run_id]
    assert failed["status"] == "failed" and failed["error"].startswith("RunConflict: ")


def test_an_interrupt_while_the_run_writes_rolls_it_back_and_says_interrupted(engine):
    """Ctrl-C (or SIGTERM in the CLI) raises KeyboardInterrupt wherever the harvest is; here while the writer
    reads the raw items of a batch inside the run's transaction."""
    snap = chicago_snapshot("2022-06-15")

    class Interrupted(list):
        def __getitem__(self, i):
            raise KeyboardInterrupt

    run_id = storage.start_run(engine, CHICAGO.key, as_of=snap.as_of)
    with pytest.raises(KeyboardInterrupt), storage.RunWriter(engine, run_id) as run:
        run.add(snap.records, Interrupted(snap.raws))
    failed = storage.runs(engine, portal_key=CHICAGO.key).set_index("run_id").loc[run_id]
    assert failed["status"] == "failed" and failed["error"] == "interrupted: KeyboardInterrupt while writing"
    assert run.recorded and len(storage.catalog(engine, CHICAGO.key)) == 0  # rolled back, recorded


@pytest.mark.parametrize("order", [
    tuple(reversed(CHICAGO_DATES)),  # newest first: every short crawl arrives before the good runs around it
    ("2022-06-29", "2022-07-13", "2022-06-08", "2022-07-23", "2022-07-06", "2022-06-22", "2022-07-20", "2022-06-15"),
])
def test_statuses_after_out_of_order_imports_are_those_of_date_order(engine, order):
    """Each import judges the runs dated after it again, so the history ends as if imported in date order:
    the same partial runs, the same confirmed shrink on 07-20 and the same removal counts."""
    for d in order:
        save(engine, chicago_snapshot(d))
    runs = storage.runs(engine, portal_key=CHICAGO.key).set_index("as_of")
    assert {d: runs.loc[day(d), "status"] for d in CHICAGO_DATES} == CHICAGO_STATUS
    assert {d: None if pd.isna(runs.loc[day(d), "removed"]) else int(runs.loc[day(d), "removed"])
            for d in CHICAGO_DATES} == CHICAGO_REMOVED
    reason = runs.loc[day("2022-06-29"), "suspect_reason"]
    assert reason.startswith("95 unique items is under 0.9 x the 466 of the last complete run")  # 06-15's 466
    assert storage.catalog_run(engine, CHICAGO.key, day("2022-07-06")).run["status"] == "suspect"


def test_runs_stored_under_an_older_rule_are_judged_again(engine):
    """A database from before the complete/partial rule: its short crawls were "ok" (the old 0.4 threshold let
    256, 196, 294 and 260 through). rejudge_runs (called by `score --all`) brings them back to CHICAGO_STATUS."""
    import sqlalchemy as sa

    for d in CHICAGO_DATES:
        save(engine, chicago_snapshot(d))
    with engine.begin() as conn:  # what the old rule had stored for the five partial runs (ok, counted removals)
        conn.execute(sa.text("UPDATE harvest_runs SET status = 'ok', suspect_reason = NULL, removed = 1 "
                             "WHERE status = 'suspect'"))
    # the cached catalog follows the runs' judgement (which runs are complete is in its key)
    assert storage.catalog_run(engine, CHICAGO.key, day("2022-06-22")).run["status"] == "ok"
    assert storage.rejudge_runs(engine, CHICAGO.key) == 5
    runs = storage.runs(engine, portal_key=CHICAGO.key).set_index("as_of")
    assert {d: runs.loc[day(d), "status"] for d in CHICAGO_DATES} == CHICAGO_STATUS
    assert {d: None if pd.isna(runs.loc[day(d), "removed"]) else int(runs.loc[day(d), "removed"])
            for d in CHICAGO_DATES} == CHICAGO_REMOVED
    assert storage.rejudge_runs(engine, CHICAGO.key) == 0  # judged by the same rule: nothing changes
    assert storage.catalog_run(engine, CHICAGO.key, day("2022-06-22")).run["status"] == "suspect"


def _fed_in_two_batches(engine, snap, as_of) -> tuple[storage.RunSummary, int, int]:
    """A run of `snap` fed to its writer as the pipeline does (stored hashes, keep the unchanged, add the rest) in
    two batches; its summary, how many stored-version lookups and how many lookups of dataset ids alone (for the
    datasets it inserted) it sent to the database."""
    from sqlalchemy import event

    lookups, id_lookups = [], []

    def count(_conn, _cursor, statement, *_args):
        if "valid" in statement:  # the alias of writes._VERSIONS_OF's "version valid at as_of" subquery
            lookups.append(statement)
        elif statement.startswith("SELECT datasets.source_id, datasets.id"):  # writes._DATASET_IDS
            id_lookups.append(statement)

    run_id = storage.start_run(engine, CHICAGO.key, as_of=as_of)
    half = len(snap.records) // 2
    event.listen(engine, "before_cursor_execute", count)
    try:
        with storage.RunWriter(engine, run_id) as run:
            for part in (slice(0, half), slice(half, None)):
                records, raws = snap.records[part], snap.raws[part]
                stored = run.stored_hashes([r.source_id for r in records])
                run.keep([r.source_id for r in records if stored.get(r.source_id) == r.raw_hash])
                todo = [i for i, r in enumerate(records) if stored.get(r.source_id) != r.raw_hash]
                run.add([records[i] for i in todo], [raws[i] for i in todo])
            summary = run.finish(snap.stats, finished_at=as_of)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return summary, len(lookups), len(id_lookups)


def test_a_portals_first_run_looks_up_no_stored_versions(engine):
    """Before a portal's first run every id is new: no batch asks for stored versions, each asks only for the ids
    of the datasets it inserted; the next run asks for stored versions once a batch, plus once under its write lock
    for the first batch's ids found unchanged before it (RunWriter._begin), and finds every dataset unchanged."""
    snap = chicago_snapshot("2022-06-15")
    first, lookups, id_lookups = _fed_in_two_batches(engine, snap, snap.as_of)
    assert (first.new_versions, lookups, id_lookups) == (CHICAGO_UNIQUE["2022-06-15"], 0, 2)
    again, lookups, id_lookups = _fed_in_two_batches(engine, snap, snap.as_of + timedelta(days=1))
    assert (again.new_versions, again.items, lookups, id_lookups) == (0, CHICAGO_UNIQUE["2022-06-15"], 3, 0)
