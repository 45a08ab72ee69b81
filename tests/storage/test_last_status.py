"""storage.last_status: the status of a portal's newest run, as pipeline.harvest reads it for its log lines."""
from __future__ import annotations

import pandas as pd

import storage
from tests.storage.conftest import CHICAGO, OTHER, chicago_snapshot, day, save


def test_last_status_follows_the_newest_run(engine):
    assert storage.last_status(engine, CHICAGO.key) is None  # no run yet
    save(engine, chicago_snapshot("2022-06-08"))
    assert storage.last_status(engine, CHICAGO.key) == "ok"
    # 06-29 holds 95 unique ids against 313 on 06-08: under SUSPECT_SHRINK, suspect
    save(engine, chicago_snapshot("2022-06-29"))
    assert storage.last_status(engine, CHICAGO.key) == "suspect"
    run_id = storage.start_run(engine, CHICAGO.key, as_of=day("2022-07-01"), started_at=day("2022-07-01"))
    assert storage.last_status(engine, CHICAGO.key) == "running"
    storage.fail_run(engine, run_id, "PortalUnavailable: HTTP 503", finished_at=day("2022-07-01"))
    assert storage.last_status(engine, CHICAGO.key) == "failed"
    # the same answer as the first row of runs(), and other portals are not mixed in
    assert storage.runs(engine, portal_key=CHICAGO.key).iloc[0]["status"] == "failed"
    assert storage.last_status(engine, OTHER.key) is None


def test_begin_run_starts_a_run_and_tells_the_status_before_it(engine):
    first, before = storage.begin_run(engine, CHICAGO.key, as_of=day("2022-06-01"))
    assert before is None  # the portal's first run
    assert storage.last_status(engine, CHICAGO.key) == "running"
    storage.fail_run(engine, first, "PortalUnavailable: HTTP 503", finished_at=day("2022-06-01"))
    second, before = storage.begin_run(engine, CHICAGO.key, as_of=day("2022-06-02"))
    assert before == "failed" and second != first  # what "recovered" log lines need
    runs = storage.runs(engine, portal_key=CHICAGO.key)
    assert list(runs["run_id"]) == [second, first] and list(runs["status"]) == ["running", "failed"]
    assert storage.begin_run(engine, OTHER.key, as_of=day("2022-06-02"))[1] is None  # other portals not mixed in


def test_fail_run_leaves_a_run_another_process_closed_as_it_ended(engine):
    """A late failure does not rewrite an ending already recorded: a run the orphan sweep closed as interrupted
    keeps the sweep's reason (why it stopped is what the CDO's run list needs), and a run closed ok stays ok."""
    swept = storage.start_run(engine, CHICAGO.key, as_of=day("2022-07-01"), started_at=day("2022-07-01"))
    closed = storage.close_orphaned_runs(engine, now=day("2022-07-02"), portal_key=CHICAGO.key)
    assert closed == [swept]
    storage.fail_run(engine, swept, "OperationalError: database is locked", finished_at=day("2022-07-02"))
    row = storage.runs(engine, portal_key=CHICAGO.key).set_index("run_id").loc[swept]
    assert [row["status"], row["error"]] == [
        "failed", "interrupted: still running at 2022-07-02 00:00 UTC (the harvesting process stopped)"]

    save(engine, chicago_snapshot("2022-06-08"))
    ok = int(storage.runs(engine, portal_key=CHICAGO.key).query("status == 'ok'")["run_id"].iloc[0])
    storage.fail_run(engine, ok, "ValueError: after the run", finished_at=day("2022-07-03"))
    row = storage.runs(engine, portal_key=CHICAGO.key).set_index("run_id").loc[ok]
    assert row["status"] == "ok" and pd.isna(row["error"])
