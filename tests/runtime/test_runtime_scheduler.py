"""The scheduler: jobs at their cron times, coalesced misfires, no overlapping runs, one harvest per fire
time across schedulers sharing a database, status, and state-change logs.

No test sleeps for a cron period: jobs are brought due by setting their next run time a moment ahead
(what the trigger would do at its time), or the job function is called directly with a fake harvest.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES
from runtime_helpers import FakeHarvest, load_settings, only_portal, wait_for

import storage
from maturity import scheduler

UTC = UTC
CHICAGO = "chicago-socrata"


def _soon(seconds: float = 0.3) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


# --- triggers -------------------------------------------------------------------------------------------

def test_cron_lines_keep_crontab_weekdays():
    # config.toml's export runs "30 5 * * 1" = Mondays in crontab. 2026-11-22 is a Sunday, so the next
    # fire is Monday 2026-11-23 05:30 UTC (APScheduler's own from_crontab would say Tuesday the 24th).
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert scheduler.next_fire_time("30 5 * * 1", sunday) == datetime(2026, 11, 23, 5, 30, tzinfo=UTC)
    assert scheduler.next_fire_time("0 6 * * 0", sunday) == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert scheduler.next_fire_time("0 6 * * 7", sunday) == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    # Mon-Fri from a Saturday noon: Monday.
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert scheduler.next_fire_time("0 4 * * 1-5", saturday) == datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    assert scheduler._cron_dow("*/2") == "sun,tue,thu,sat"  # crontab: days 0,2,4,6


def test_previous_fire_time_within_lookback():
    now = datetime(2026, 11, 25, 4, 0, 40, tzinfo=UTC)
    assert scheduler.previous_fire_time("0 4 * * *", now, lookback_s=3600) == datetime(2026, 11, 25, 4, 0,
                                                                                        tzinfo=UTC)
    later = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # 2 h after the fire: outside a 1 h look-back
    assert scheduler.previous_fire_time("0 4 * * *", later, lookback_s=3600) is None


# --- jobs in the store ------------------------------------------------------------------------------------

def test_one_job_per_portal_with_stable_ids_and_no_duplicates_on_restart(sqlite_url, schedulers):
    cfg = load_settings(sqlite_url)
    expected = {f"harvest:{p.key}" for p in cfg.portals} | {"export"}
    for _ in range(2):  # the second build is a restart on the same database
        s = scheduler.build_scheduler(cfg, jitter_s=0)
        schedulers.append(s)
        s.start(paused=True)
        jobs = {j.id: j for j in s.get_jobs()}
        assert set(jobs) == expected
        s.shutdown()
    now = datetime.now(UTC)
    job = jobs[f"harvest:{CHICAGO}"]
    # "0 4 * * *": the next 04:00 UTC after now.
    assert job.next_run_time == scheduler.next_fire_time("0 4 * * *", now)
    assert job.func_ref == "maturity.scheduler:run_harvest_job"  # pickled by reference, not code
    assert job.coalesce is True and job.max_instances == 1
    assert job.misfire_grace_time == scheduler.MISFIRE_GRACE_S
    assert job.kwargs["portal_key"] == CHICAGO and "sqlite" not in job.kwargs["runtime"]


def test_a_worker_that_loses_the_race_to_create_the_job_table_still_starts(db_url, schedulers, monkeypatch):
    """Workers started together on a new database each find the job store's table missing and create it; one
    wins and the others' CREATE fails (PostgreSQL: duplicate key on pg_type "scheduler_jobs"). Seen in
    benchmarks/workers.py: the losing worker exited at its start. Here this worker's check runs, the other's
    CREATE commits, then this one's CREATE runs."""
    import sqlalchemy as sa

    storage.upgrade(db_url)
    real_create = sa.Table.create
    lost: list[str] = []

    def create_after_losing_the_race(table, bind, checkfirst=False):
        if table.name == scheduler.JOBS_TABLE and not lost:
            lost.append(table.name)
            real_create(table, bind, checkfirst=True)  # the other worker's, committed first
            return real_create(table, bind, checkfirst=False)  # this worker's, its check having found nothing
        return real_create(table, bind, checkfirst=checkfirst)

    monkeypatch.setattr(sa.Table, "create", create_after_losing_the_race)
    cfg = load_settings(db_url)
    s = scheduler.build_scheduler(cfg, jitter_s=0)
    schedulers.append(s)
    s.start(paused=True)
    assert lost == [scheduler.JOBS_TABLE]
    assert {j.id for j in s.get_jobs()} == {f"harvest:{p.key}" for p in cfg.portals} | {"export"}
    s.shutdown()


def test_job_runs_at_its_time_and_scores_the_city(sqlite_url, schedulers, fake_harvest, fake_score):
    cfg = only_portal(load_settings(sqlite_url), CHICAGO)
    s = scheduler.build_scheduler(cfg, jitter_s=0, harvest_fn=fake_harvest, score_fn=fake_score)
    schedulers.append(s)
    s.start()
    due = _soon(0.5)
    s.modify_job(f"harvest:{CHICAGO}", next_run_time=due)
    assert wait_for(lambda: fake_score.calls)
    assert [k for k, _ in fake_harvest.calls] == [CHICAGO]
    assert fake_harvest.calls[0][1] >= due - timedelta(milliseconds=50)  # not before its time
    assert fake_score.calls == ["chicago"]
    runs = storage.runs(storage.open_db(sqlite_url), portal_key=CHICAGO)
    assert len(runs) == 1 and runs.iloc[0]["source"] == "harvest"


def test_misfired_job_coalesces_into_one_run(sqlite_url, schedulers, fake_harvest, fake_score):
    # A daily job whose process was down for three days: three or four 04:00 fire times were missed.
    grace_s = 4 * 24 * 3600
    cfg = only_portal(load_settings(sqlite_url), CHICAGO)
    first = scheduler.build_scheduler(cfg, jitter_s=0, misfire_grace_s=grace_s)
    schedulers.append(first)
    first.start(paused=True)
    first.shutdown()
    # The process went down three days ago: its stored next run time is three days old. (Edited in the
    # store with no scheduler running: a scheduler shutting down processes due jobs once more.)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    _set_stored_next_run(sqlite_url, f"harvest:{CHICAGO}", three_days_ago)
    trigger = scheduler.cron_trigger("0 4 * * *")
    fires, t = [], trigger.get_next_fire_time(None, three_days_ago)
    while t <= datetime.now(UTC):
        fires.append(t)
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
    assert len(fires) >= 3  # the backlog the restart finds

    executed = []
    restarted = scheduler.build_scheduler(cfg, jitter_s=0, misfire_grace_s=grace_s, harvest_fn=fake_harvest,
                                          score_fn=fake_score)
    schedulers.append(restarted)
    restarted.add_listener(lambda e: executed.append(e.retval), EVENT_JOB_EXECUTED)
    restarted.start()
    assert wait_for(lambda: executed)
    assert not wait_for(lambda: len(executed) > 1, timeout_s=1.5)  # and nothing more comes
    assert len(fake_harvest.calls) == 1
    # The job is back on its schedule: next run is the next 04:00, not another missed one.
    assert restarted.get_job(f"harvest:{CHICAGO}").next_run_time > datetime.now(UTC)


def _set_stored_next_run(url: str, job_id: str, when: datetime) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    store = SQLAlchemyJobStore(engine=storage.open_db(url), tablename=scheduler.JOBS_TABLE)
    store.start(BackgroundScheduler(timezone=UTC), "default")
    job = store.lookup_job(job_id)
    job.next_run_time = when
    store.update_job(job)


def test_running_job_is_not_started_again(sqlite_url, schedulers, fake_score):
    harvest = FakeHarvest(gate=threading.Event())
    cfg = only_portal(load_settings(sqlite_url), CHICAGO)
    s = scheduler.build_scheduler(cfg, jitter_s=0, harvest_fn=harvest, score_fn=fake_score)
    schedulers.append(s)
    refused = threading.Event()
    s.add_listener(lambda e: refused.set(), EVENT_JOB_MAX_INSTANCES)
    s.start()
    s.modify_job(f"harvest:{CHICAGO}", next_run_time=_soon(0.1))
    assert harvest.started.wait(10)
    s.modify_job(f"harvest:{CHICAGO}", next_run_time=_soon(0.1))  # due again while the first still runs
    assert refused.wait(10)
    harvest.gate.set()
    assert wait_for(lambda: fake_score.calls)
    assert len(harvest.calls) == 1


def test_db_lock_held_elsewhere_skips_the_harvest(db_url, schedulers, fake_harvest, fake_score):
    cfg = only_portal(load_settings(db_url), CHICAGO)
    schedulers.append(scheduler.build_scheduler(cfg, harvest_fn=fake_harvest, score_fn=fake_score))
    engine = storage.open_db(db_url)
    now = datetime.now(UTC)
    assert storage.try_lock(engine, f"harvest:{CHICAGO}", "other-worker", ttl_s=60, now=now)
    runtime = scheduler._runtime_key(db_url)
    assert scheduler.run_harvest_job(CHICAGO, runtime) == "locked"
    assert fake_harvest.calls == []
    storage.release_lock(engine, f"harvest:{CHICAGO}", "other-worker")
    assert scheduler.run_harvest_job(CHICAGO, runtime) == "ok"
    assert len(fake_harvest.calls) == 1 and fake_score.calls == ["chicago"]
    # and the job released its lock: another owner can take it now
    assert storage.try_lock(engine, f"harvest:{CHICAGO}", "other-worker", ttl_s=60, now=datetime.now(UTC))


def test_two_workers_at_once_harvest_a_portal_once(db_url, schedulers, fake_score):
    """Two threads (two workers on one database) run the same due job at the same moment: one lock, one harvest."""
    harvest = FakeHarvest(delay_s=0.5)
    cfg = only_portal(load_settings(db_url), CHICAGO)
    schedulers.append(scheduler.build_scheduler(cfg, harvest_fn=harvest, score_fn=fake_score))
    rt = scheduler._runtime(scheduler._runtime_key(db_url))
    # both serve the 04:00 fire (a fixed time: the wall clock made the outcome depend on the hour the test ran in)
    fire_time = datetime(2026, 11, 25, 4, 5, tzinfo=UTC)
    assert scheduler._last_fire(rt, rt.settings.portal(CHICAGO), fire_time) is not None
    barrier = threading.Barrier(2)
    results: list[str] = []

    def worker():
        barrier.wait()
        results.append(scheduler.harvest_portal(rt, CHICAGO, now=fire_time))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # the second finds the lease taken, or (reaching it after the first finished, on a loaded machine) the fire
    # time already harvested: one harvest either way
    assert sorted(results) in (["locked", "ok"], ["done", "ok"])
    assert len(harvest.calls) == 1


def test_a_fire_time_already_harvested_is_not_harvested_again(db_url, schedulers, fake_harvest, fake_score):
    # Worker A ran the 04:00 job and released the lock; worker B reaches the same fire time afterwards.
    cfg = only_portal(load_settings(db_url), CHICAGO)
    schedulers.append(scheduler.build_scheduler(cfg, jitter_s=0, harvest_fn=fake_harvest, score_fn=fake_score))
    rt = scheduler._runtime(scheduler._runtime_key(db_url))
    today_4 = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    if today_4 > datetime.now(UTC):
        today_4 -= timedelta(days=1)
    # The fake's run row is stamped with the real clock (after 04:00), as a real run fired at 04:00 would be.
    assert scheduler.harvest_portal(rt, CHICAGO, now=today_4 + timedelta(seconds=5)) == "ok"
    assert scheduler.harvest_portal(rt, CHICAGO, now=today_4 + timedelta(seconds=40)) == "done"
    assert len(fake_harvest.calls) == 1


def test_the_scheduled_scoring_keeps_the_catalog_snapshot(db_url, schedulers, fake_harvest, monkeypatch):
    """A worker's scoring after a harvest is of the latest catalog, as `maturity score`'s: it keeps the portal's
    records in a catalog snapshot (storage/snapshots.py), so the next scoring of a large catalog decodes only what
    changed (here every catalog counts as large). Real scoring, on both backends."""
    import sqlalchemy as sa

    from storage import queries, snapshots
    from storage.models import snapshots_t

    monkeypatch.setattr(queries, "SNAPSHOT_MIN_RECORDS", 0)
    cfg = only_portal(load_settings(db_url), CHICAGO)
    schedulers.append(scheduler.build_scheduler(cfg, jitter_s=0, harvest_fn=fake_harvest))
    rt = scheduler._runtime(scheduler._runtime_key(db_url))
    assert scheduler.harvest_portal(rt, CHICAGO, now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) == "ok"
    engine = storage.open_db(db_url)
    with engine.connect() as conn:
        kept = snapshots.load(conn, CHICAGO)
        assert conn.execute(sa.select(sa.func.count()).select_from(snapshots_t)).scalar() == 1
    assert kept is not None
    table, version_ids = kept
    assert len(table) == 1 and len(version_ids) == 1  # the fake harvest's one recorded item
    assert len(storage.scores(engine, "chicago")) > 0  # scored for real


@pytest.mark.postgres
def test_two_schedulers_on_one_postgres_database_harvest_once(pg_url, schedulers, fake_score):
    """Two real schedulers (as two `maturity worker` processes would) share one job store and one lock."""
    _two_schedulers(pg_url, schedulers, fake_score)


def test_two_schedulers_on_one_sqlite_database_harvest_once(sqlite_url, schedulers, fake_score):
    _two_schedulers(sqlite_url, schedulers, fake_score)


def _two_schedulers(url, schedulers, fake_score):
    harvest = FakeHarvest(delay_s=0.5)
    cfg = only_portal(load_settings(url), CHICAGO)
    a = scheduler.build_scheduler(cfg, jitter_s=0, owner="worker-a", harvest_fn=harvest, score_fn=fake_score)
    b = scheduler.build_scheduler(cfg, jitter_s=0, owner="worker-b", harvest_fn=harvest, score_fn=fake_score)
    schedulers.extend([a, b])
    outcomes: list[str] = []
    for s in (a, b):
        s.add_listener(lambda e: outcomes.append(e.retval), EVENT_JOB_EXECUTED)
        s.start(paused=True)
    a.modify_job(f"harvest:{CHICAGO}", next_run_time=_soon(0.5))
    b.resume()
    a.resume()
    assert wait_for(lambda: "ok" in outcomes)
    wait_for(lambda: len(outcomes) > 1, timeout_s=1.5)
    assert len(harvest.calls) == 1
    assert outcomes.count("ok") == 1 and set(outcomes) <= {"ok", "locked"}


# --- status and logs --------------------------------------------------------------------------------------

def test_status_reports_last_run_next_run_and_last_error(sqlite_url, schedulers):
    cfg = load_settings(sqlite_url)
    now = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    table = scheduler.status(cfg, now=now)
    assert list(table.columns) == scheduler.STATUS_COLUMNS
    assert len(table) == len(cfg.portals)
    row = table.set_index("portal_key").loc[CHICAGO]
    assert row["last_run"] is None and row["last_status"] is None
    # No scheduler has run: the next run comes from the cron line "0 4 * * *" -> tomorrow 04:00.
    assert row["next_run"] == datetime(2026, 11, 26, 4, 0, tzinfo=UTC) and row["next_run_source"] == "schedule"

    engine = storage.open_db(sqlite_url)
    storage.sync_config(engine, cfg)
    bad = storage.start_run(engine, CHICAGO, as_of=datetime(2026, 11, 24, 4, 0, tzinfo=UTC))
    storage.fail_run(engine, bad, "PortalUnavailable: 503 after 5 tries", finished_at=datetime.now(UTC))
    FakeHarvest()(cfg, engine, cfg.portal(CHICAGO), now=datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    s = scheduler.build_scheduler(cfg, jitter_s=0)
    schedulers.append(s)
    s.start(paused=True)
    stored_next = s.get_job(f"harvest:{CHICAGO}").next_run_time
    s.shutdown()
    row = scheduler.status(cfg, now=now).set_index("portal_key").loc[CHICAGO]
    assert row["last_status"] == "ok"
    assert row["last_run"] == datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    assert row["last_ok"] == datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    assert row["last_error"] == "PortalUnavailable: 503 after 5 tries"
    assert row["last_error_at"] == datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    assert row["next_run_source"] == "job store" and row["next_run"] == stored_next


def test_one_log_line_per_state_change(sqlite_url, schedulers, fake_score, caplog):
    harvest = FakeHarvest(fail_with=RuntimeError("database is locked"))
    cfg = only_portal(load_settings(sqlite_url), CHICAGO)
    schedulers.append(scheduler.build_scheduler(cfg, harvest_fn=harvest, score_fn=fake_score))
    rt = scheduler._runtime(scheduler._runtime_key(sqlite_url))
    caplog.set_level(logging.DEBUG, logger="maturity.scheduler")
    # at noon, hours from the daily 04:00 fire: no fire is being served, so every call harvests (with the wall
    # clock, a run in the hour after 04:00 UTC made the second "ok" call "done", already harvested: a flake)
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert scheduler._last_fire(rt, rt.settings.portal(CHICAGO), noon) is None
    assert scheduler.harvest_portal(rt, CHICAGO, now=noon) == "crashed"
    assert scheduler.harvest_portal(rt, CHICAGO, now=noon) == "crashed"
    harvest.fail_with = None
    assert scheduler.harvest_portal(rt, CHICAGO, now=noon) == "ok"
    assert scheduler.harvest_portal(rt, CHICAGO, now=noon) == "ok"
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and "event=job-" in r.getMessage()]
    assert lines == [f"portal={CHICAGO} event=job-failing reason='RuntimeError: database is locked'",
                     f"portal={CHICAGO} event=job-recovered"]


def test_configure_logging_writes_key_value_lines_in_utc(capsys):
    import io

    buf = io.StringIO()
    scheduler.configure_logging(stream=buf)
    logging.getLogger("maturity.pipeline").warning("portal=%s event=failing reason=%r", "boston-ckan", "x")
    line = buf.getvalue().strip()
    assert line.startswith("ts=") and line.endswith("logger=maturity.pipeline portal=boston-ckan event=failing "
                                                    "reason='x'")
    assert "level=WARNING" in line and line.split()[0].endswith("Z")
    logging.getLogger().handlers.clear()


def test_jobs_of_portals_removed_from_config_are_pruned(sqlite_url, schedulers, fake_harvest, fake_score):
    full = load_settings(sqlite_url)
    s = scheduler.build_scheduler(full)
    schedulers.append(s)
    s.start(paused=True)
    s.shutdown()
    trimmed = only_portal(full, CHICAGO)
    # Before pruning, a stale job that fires finds its portal gone and does nothing.
    schedulers.append(scheduler.build_scheduler(trimmed, harvest_fn=fake_harvest, score_fn=fake_score))
    assert scheduler.run_harvest_job("boston-ckan", scheduler._runtime_key(sqlite_url)) == "unknown"
    again = scheduler.build_scheduler(trimmed, harvest_fn=fake_harvest, score_fn=fake_score)
    schedulers.append(again)
    again.start(paused=True)
    removed = scheduler.prune_stale_jobs(again, trimmed)
    assert set(removed) == {f"harvest:{p.key}" for p in full.portals if p.key != CHICAGO} | {"export"}
    assert [j.id for j in again.get_jobs()] == [f"harvest:{CHICAGO}"]
    assert fake_harvest.calls == []


def test_scheduled_export_writes_a_dated_snapshot_under_its_lock(sqlite_url, schedulers, tmp_path):
    cfg = load_settings(sqlite_url, directory=str(tmp_path / "exports"))
    s = scheduler.build_scheduler(cfg)
    schedulers.append(s)
    s.start(paused=True)
    job = s.get_job("export")
    # config.toml: "30 5 * * 1" = Mondays 05:30 UTC
    assert job.func_ref == "maturity.scheduler:run_export_job"
    assert job.next_run_time.weekday() == 0 and (job.next_run_time.hour, job.next_run_time.minute) == (5, 30)
    runtime = scheduler._runtime_key(sqlite_url)
    engine = storage.open_db(sqlite_url)
    assert storage.try_lock(engine, "export", "another-process", ttl_s=60, now=datetime.now(UTC))
    assert scheduler.run_export_job(runtime) == []  # someone else is exporting
    storage.release_lock(engine, "export", "another-process")
    written = [Path(p) for p in scheduler.run_export_job(runtime)]
    day = datetime.now(UTC).date().isoformat()
    # nine cities + "all", four files each; nothing harvested yet, so every criterion is "open"
    assert len(written) == 4 * (len(cfg.cities) + 1)
    assert all(p.parent.parent == tmp_path / "exports" / day for p in written)
    packet = json.loads((tmp_path / "exports" / day / "boston" / "evidence.json").read_text())
    assert packet["date"] is None and {c["status"] for c in packet["criteria"]} == {"open"}


def test_scheduled_export_keeps_the_newest_snapshots_only(sqlite_url, schedulers, tmp_path):
    out = tmp_path / "exports"
    for old in ("2026-01-05", "2026-01-12", "2026-01-19"):
        (out / old / "chicago").mkdir(parents=True)
        (out / old / "chicago" / "scores.csv").write_text("old")
    (out / "by-hand").mkdir()  # not a dated snapshot: never touched
    (out / "README.txt").write_text("notes")
    cfg = load_settings(sqlite_url, directory=str(out), keep=2)
    schedulers.append(scheduler.build_scheduler(cfg))
    assert scheduler.run_export_job(scheduler._runtime_key(sqlite_url))
    today = datetime.now(UTC).date().isoformat()
    assert sorted(p.name for p in out.iterdir()) == sorted(["2026-01-19", today, "by-hand", "README.txt"])


def test_status_speaks_of_harvests_not_of_backfill_imports(sqlite_url):
    # Harvested fine today; afterwards an old snapshot was imported (2021, ok) and another failed to import.
    # Status must say "ok, last ok today", not "failed, last ok 2021".
    from connectors.base import FetchStats

    cfg = load_settings(sqlite_url)
    storage.upgrade(sqlite_url)
    engine = storage.open_db(sqlite_url)
    storage.sync_config(engine, cfg)
    today = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    FakeHarvest()(cfg, engine, cfg.portal(CHICAGO), now=today)
    old = storage.start_run(engine, CHICAGO, as_of=datetime(2021, 3, 1, tzinfo=UTC), source="import")
    storage.save_harvest(engine, old, [], [], FetchStats(), finished_at=datetime.now(UTC))
    bad = storage.start_run(engine, CHICAGO, as_of=datetime(2021, 6, 1, tzinfo=UTC), source="import")
    storage.fail_run(engine, bad, "2021-06-01.json.gz: EOFError: truncated", finished_at=datetime.now(UTC))
    row = scheduler.status(cfg, now=today).set_index("portal_key").loc[CHICAGO]
    assert (row["last_status"], row["last_run"], row["last_ok"]) == ("ok", today, today)
    assert row["last_error"] is None
    # A portal only ever imported (the demo history) still reports its imports.
    other = cfg.portals[1].key
    only = storage.start_run(engine, other, as_of=datetime(2022, 6, 8, tzinfo=UTC), source="import")
    storage.fail_run(engine, only, "bad file", finished_at=datetime.now(UTC))
    row = scheduler.status(cfg, now=today).set_index("portal_key").loc[other]
    assert (row["last_status"], row["last_error"]) == ("failed", "bad file")
