"""Runs the product by itself: scheduled harvests and exports (APScheduler 3.x), `serve`, `worker`, `status`.

One job per portal, fired by the portal's cron `schedule` (UTC); each job takes a lock in the database,
harvests the portal through `pipeline.harvest`, scores its city through `pipeline.score` and releases the
lock. Jobs live in a persistent job store in the same database (table `JOBS_TABLE`) under stable ids
(`harvest:<portal_key>`, `export`), re-added with `replace_existing=True` on every start so a restart
never duplicates them.

APScheduler 3 does not coordinate several schedulers sharing one job store: two processes (two workers, or
a worker plus `serve`) may both pick the same due job. The database lock makes that harmless — only one
harvests a portal at a time — and a job that finds the portal already harvested since its fire time
skips, so a fire time is harvested once.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor as Threads
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

import pandas as pd
import sqlalchemy as sa
from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

import storage
from maturity import harvesters
from maturity.settings import ConfigError, PortalConfig, Settings, cron_fields
from maturity.settings import cron_weekdays as _cron_dow  # noqa: F401 - the name the scheduler tests use

log = logging.getLogger("maturity.scheduler")

JOBS_TABLE = "scheduler_jobs"  # our own table in the product database, beside storage's tables
JITTER_S = 30  # spread jobs that share a minute so several processes/portals do not start in lockstep
MISFIRE_GRACE_S = 3600  # a process back within an hour of a missed fire time still runs it, once
LOCK_TTL_S = int(storage.LEASE_TTL_S)  # a lease the job's process renews (heartbeat); a dead holder's lapses
# Portals one scheduler process harvests at once, in threads: their network waits overlap while the GIL runs one
# parse at a time (a machine's other cores go to more workers). A host's portals share a thread (politeness).
HARVEST_WORKERS = 8
# How often a worker looks for portals that are due and that nobody has harvested (and once at its start): how
# several `maturity worker` processes split the portals (see `harvest_due`).
SWEEP_EVERY_S = 60
# After SIGTERM a process ends within this many seconds, whatever it was doing (interrupt_on_sigterm).
STOP_GRACE_S = 20
SWEEP_JOB_ID = "sweep"
EXPORT_JOB_ID = "export"
HARVEST_JOB_PREFIX = "harvest:"
JOB_FUNC = "maturity.scheduler:run_harvest_job"  # by import path: the job store pickles a reference, not code
EXPORT_FUNC = "maturity.scheduler:run_export_job"

HarvestFn = Callable[..., Any]  # (settings, engine, portal, *, now) -> RunSummary
ScoreFn = Callable[..., Any]  # (settings, engine, city_key) -> scores


# --- triggers --------------------------------------------------------------------------------------------

def cron_trigger(expr: str, *, jitter_s: int | None = None) -> CronTrigger:
    """A UTC CronTrigger from a standard 5-field crontab line (Sunday = 0 or 7), read as config validation
    reads it (`settings.cron_fields`)."""
    return CronTrigger(**cron_fields(expr), timezone=UTC, jitter=jitter_s or None)


def previous_fire_time(expr: str, now: datetime, *, lookback_s: float) -> datetime | None:
    """The latest fire time of a cron line at or before `now`, if one lies within `lookback_s`."""
    trigger = cron_trigger(expr)
    t = trigger.get_next_fire_time(None, now - timedelta(seconds=lookback_s))
    last = None
    while t is not None and t <= now:
        last = t
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))  # cron resolution is one minute
    return last


def next_fire_time(expr: str, now: datetime) -> datetime | None:
    return cron_trigger(expr).get_next_fire_time(None, now)


# --- what a job does --------------------------------------------------------------------------------------

@dataclass
class _Runtime:
    """What a job needs that cannot be pickled into the job store: settings, database, injected functions."""

    settings: Settings
    url: str
    owner: str
    harvest_fn: HarvestFn | None  # None: pipeline.harvest, imported when a job runs (it pulls in every connector)
    score_fn: ScoreFn | None  # None: pipeline.score
    jitter_s: int
    misfire_grace_s: int
    lock_ttl_s: int = LOCK_TTL_S
    health: dict[str, str] = field(default_factory=dict)  # portal -> "ok" | "failing", for state-change logs


_RUNTIMES: dict[str, _Runtime] = {}


def _runtime_key(url: str) -> str:
    """The job store keeps this key, not the URL, so no database password is pickled into a table."""
    return hashlib.sha1(url.encode()).hexdigest()[:12]


def _runtime(key: str) -> _Runtime:
    rt = _RUNTIMES.get(key)
    if rt is not None:
        return rt
    if len(_RUNTIMES) == 1:
        # The job was stored by another process that spells the database URL differently (a host alias):
        # this process serves one database, so its runtime is the one.
        return next(iter(_RUNTIMES.values()))
    # A job added by another process for this database, run here before this process built a scheduler
    # (cannot happen through serve/work, which build first): fall back to the configured defaults.
    from maturity import settings as settings_mod

    cfg = settings_mod.load()
    return _register(cfg, cfg.storage_url, owner=None, harvest_fn=None, score_fn=None,
                     jitter_s=JITTER_S, misfire_grace_s=MISFIRE_GRACE_S)


def _register(settings: Settings, url: str, *, owner: str | None, harvest_fn: HarvestFn | None,
              score_fn: ScoreFn | None, jitter_s: int, misfire_grace_s: int) -> _Runtime:
    rt = _Runtime(settings=settings, url=url, owner=owner or storage.process_owner("scheduler"),
                  harvest_fn=harvest_fn, score_fn=score_fn,
                  jitter_s=jitter_s, misfire_grace_s=misfire_grace_s)
    _RUNTIMES[_runtime_key(url)] = rt
    return rt


def run_harvest_job(portal_key: str, runtime: str) -> str:
    """The scheduled job (referenced by import path): harvest one portal under the lock, then score its city.

    Returns what happened: the run status ("ok", "suspect", "failed"), "locked" (another process is
    harvesting this portal), "done" (already harvested since this fire time) or "crashed".
    """
    return harvest_portal(_runtime(runtime), portal_key)


def harvest_portal(rt: _Runtime, portal_key: str, *, now: datetime | None = None) -> str:
    """`run_harvest_job` with the runtime given and the time injectable (`now`: the run's as_of and the
    moment whose cron fire time is being served)."""
    now = now or datetime.now(UTC)
    try:
        portal = rt.settings.portal(portal_key)
    except ConfigError:  # a stored job of a portal removed from config, run before prune_stale_jobs
        log.warning("portal=%s event=skipped reason=not-in-config", portal_key)
        return "unknown"
    engine = storage.open_db(rt.url)
    lock = storage.portal_lease(portal_key)
    # A fresh owner per execution: two threads of one process must not share (and so re-enter) a lock.
    owner = f"{rt.owner}:{uuid.uuid4().hex[:8]}"
    # The lease is wall-clock time, whatever `now` the run is stamped with. Taking it closes the portal's runs
    # left "running" by a process that is gone.
    if not storage.take_portal(engine, portal_key, owner):
        log.info("portal=%s event=skipped reason=locked", portal_key)
        return "locked"
    try:
        fire = _last_fire(rt, portal, now)
        if fire is not None and _harvested_since(engine, portal_key, fire):
            log.info("portal=%s event=skipped reason=already-harvested fire_time=%s", portal_key,
                     fire.isoformat())
            return "done"
        harvest_fn, score_fn = _functions(rt)
        summary = harvest_fn(rt.settings, engine, portal, now=now)
        status = str(summary.status)
        log.info("portal=%s event=harvested status=%s", portal_key, status)  # which worker did it: its log says
        if status != "failed":  # a failed run adds nothing to score; the last good scores stand
            score_fn(rt.settings, engine, portal.city_key)
        _job_health(rt, portal_key, ok=True)
        return status
    except Exception as exc:  # the job must not die silently: the store keeps it, the log says why
        _job_health(rt, portal_key, ok=False, reason=f"{type(exc).__name__}: {exc}")
        return "crashed"
    finally:
        storage.drop_lease(engine, lock, owner)


def harvest_due(rt: _Runtime, *, threads: int = HARVEST_WORKERS) -> dict[str, str]:
    """Harvest here every portal whose latest cron fire (within the misfire grace) nobody has harvested yet; what
    happened to each ({portal key: `harvest_portal`'s answer}).

    How several workers sharing one database split the portals: each one sweeps the due portals (at its start and
    every SWEEP_EVERY_S), each portal under its lease (`harvest_portal`), so a portal another worker holds is
    skipped ("locked") and one it finished is not harvested again ("done"). A busy worker thus takes fewer
    portals, and one that starts late still helps. (APScheduler 3 hands a due job to whichever scheduler reads
    the shared job store first, and that one may be busy: the per-portal jobs alone do not share the work.)
    A host's portals go one after another in one thread (politeness per host); each worker walks the hosts in its
    own order, so two workers seldom reach for the same portal.
    """
    engine = storage.open_db(rt.url)
    now = datetime.now(UTC)
    due = [p for p in rt.settings.portals
           if (fire := _last_fire(rt, p, now)) is not None and not _harvested_since(engine, p.key, fire)]
    if not due:
        return {}
    lanes = harvesters.lanes(due)
    random.Random(rt.owner).shuffle(lanes)
    outcome: dict[str, str] = {}

    def lane(portals: list[PortalConfig]) -> None:
        for portal in portals:
            outcome[portal.key] = harvest_portal(rt, portal.key)

    with Threads(min(threads, len(lanes)), thread_name_prefix="sweep") as pool:
        list(pool.map(lane, lanes))
    log.info("event=sweep due=%d harvested=%d", len(due),
             sum(status not in ("locked", "done") for status in outcome.values()))
    return outcome


def _last_fire(rt: _Runtime, portal: PortalConfig, now: datetime) -> datetime | None:
    """The portal's latest cron fire a job may still be serving (within the misfire grace and the jitter)."""
    return previous_fire_time(portal.schedule, now, lookback_s=rt.misfire_grace_s + rt.jitter_s + 60)


def _functions(rt: _Runtime) -> tuple[HarvestFn, ScoreFn]:
    if rt.harvest_fn is not None and rt.score_fn is not None:
        return rt.harvest_fn, rt.score_fn
    from maturity import pipeline

    return rt.harvest_fn or pipeline.harvest, rt.score_fn or pipeline.score


def _harvested_since(engine: storage.Engine, portal_key: str, fire: datetime) -> bool:
    runs = storage.runs(engine, portal_key=portal_key)
    if runs.empty:
        return False
    runs = runs[runs["source"] == "harvest"]
    started = pd.to_datetime(runs["started_at"], utc=True)
    return bool((started >= pd.Timestamp(fire)).any())


def _job_health(rt: _Runtime, portal_key: str, *, ok: bool, reason: str | None = None) -> None:
    """One log line per state change of a portal's job. Portal failures (a run recorded failed) are logged
    by pipeline.harvest; this covers jobs that crash outside it (database down, a bug)."""
    before = rt.health.get(portal_key, "ok")
    after = "ok" if ok else "failing"
    rt.health[portal_key] = after
    if before == after:
        if not ok:
            log.debug("portal=%s event=job-still-failing reason=%r", portal_key, reason)
        return
    if ok:
        log.info("portal=%s event=job-recovered", portal_key)
    else:
        log.error("portal=%s event=job-failing reason=%r", portal_key, reason)


def run_export_job(runtime: str) -> list[str]:
    """The scheduled export (referenced by import path): every city's dated snapshot, under a lock."""
    from maturity import exports

    rt = _runtime(runtime)
    engine = storage.open_db(rt.url)
    owner = f"{rt.owner}:{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    if not storage.take_lease(engine, EXPORT_JOB_ID, owner, now=now, ttl_s=rt.lock_ttl_s):
        log.info("job=export event=skipped reason=locked")
        return []
    try:
        paths = exports.export(rt.settings, engine, out_dir=export_directory(rt.settings))
        log.info("job=export event=written files=%d", len(paths))
        if rt.settings.export.keep:
            pruned = exports.prune(export_directory(rt.settings), rt.settings.export.keep)
            log.info("job=export event=pruned snapshots=%d keep=%d", len(pruned), rt.settings.export.keep)
        return [str(p) for p in paths]
    except Exception as exc:
        log.error("job=export event=failed reason=%r", f"{type(exc).__name__}: {exc}")
        return []
    finally:
        storage.drop_lease(engine, EXPORT_JOB_ID, owner)


def export_directory(settings: Settings) -> Path:
    """[export] directory; relative paths are relative to the config file's folder, like the SQLite path."""
    d = Path(settings.export.directory)
    return d if d.is_absolute() else settings.path.parent / d


# --- building and running schedulers ---------------------------------------------------------------------

def build_scheduler(settings: Settings, *, url: str | None = None, blocking: bool = False, owner: str | None = None,
                    jitter_s: int = JITTER_S, misfire_grace_s: int = MISFIRE_GRACE_S,
                    harvest_fn: HarvestFn | None = None, score_fn: ScoreFn | None = None) -> BaseScheduler:
    """A scheduler (not started) with one harvest job per portal and the export job, persisted in the database."""
    url = url or settings.storage_url
    storage.upgrade(url)
    engine = storage.open_db(url)
    storage.sync_config(engine, settings)
    rt = _register(settings, url, owner=owner, harvest_fn=harvest_fn, score_fn=score_fn, jitter_s=jitter_s,
                   misfire_grace_s=misfire_grace_s)
    key = _runtime_key(url)
    cls = BlockingScheduler if blocking else BackgroundScheduler
    sched = cls(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(HARVEST_WORKERS)},
        # coalesce: a backlog of missed fire times runs once; max_instances: never two runs of one job here.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": misfire_grace_s},
        timezone=UTC,
    )
    stored = _stored_jobs(engine)

    def add(func: str, job_id: str, name: str, expr: str, kwargs: dict[str, str]) -> None:
        trigger = cron_trigger(expr, jitter_s=jitter_s)
        extra = {}
        # replace_existing alone would reset the stored next run time to the next future fire, so a fire
        # missed while the process was down would be forgotten instead of coalesced and run (within grace).
        if job_id in stored and stored[job_id][1] == str(trigger) and stored[job_id][0] is not None:
            extra["next_run_time"] = stored[job_id][0]
        sched.add_job(func, trigger=trigger, id=job_id, name=name, kwargs=kwargs, replace_existing=True, **extra)

    for portal in settings.portals:
        add(JOB_FUNC, f"{HARVEST_JOB_PREFIX}{portal.key}", f"harvest {portal.key}", portal.schedule,
            {"portal_key": portal.key, "runtime": key})
    if settings.export.schedule:
        add(EXPORT_FUNC, EXPORT_JOB_ID, "export snapshots", settings.export.schedule, {"runtime": key})
    log.debug("scheduler built owner=%s portals=%d", rt.owner, len(settings.portals))
    return sched


def prune_stale_jobs(sched: BaseScheduler, settings: Settings) -> list[str]:
    """Remove stored jobs of portals (or an export) no longer in config; call after `start()`."""
    wanted = {f"{HARVEST_JOB_PREFIX}{p.key}" for p in settings.portals}
    if settings.export.schedule:
        wanted.add(EXPORT_JOB_ID)
    removed = []
    for job in sched.get_jobs(jobstore="default"):  # the stored jobs; a worker's sweep lives in its memory
        if job.id not in wanted:
            sched.remove_job(job.id)
            removed.append(job.id)
    return removed


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM (docker stop, systemd) ends the process like Ctrl-C, so `finally` blocks stop the scheduler.

    The stop is bounded: if the process has not ended STOP_GRACE_S after the signal (the interrupt landed in a
    library that swallowed or retried it, a thread that is not a daemon still works), it ends there, logged.
    Its runs in flight are closed as interrupted by whichever process starts next (close_orphaned_runs)."""
    def handler(signum: int, frame: FrameType | None) -> NoReturn:
        deadline = threading.Timer(STOP_GRACE_S, _forced_exit)
        deadline.daemon = True
        deadline.start()
        raise KeyboardInterrupt

    if threading_main():
        previous = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
    else:
        yield


def _forced_exit() -> None:
    log.error("event=stop-forced after_s=%s reason=still-running-after-sigterm", STOP_GRACE_S)
    logging.shutdown()
    os._exit(1)


def threading_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def serve(settings: Settings, *, host: str, port: int, url: str | None = None) -> None:
    """The embedded default: demo history on an empty database, the scheduler in the background, the dashboard."""
    from maturity import app as app_mod
    from maturity import webserver

    url = url or settings.storage_url
    storage.upgrade(url)
    engine = storage.open_db(url)
    storage.sync_config(engine, settings)
    close_orphaned_runs(engine)
    if storage.runs(engine, limit=1).empty:
        from maturity import demo

        log.info("event=demo-loading reason=empty-database")
        try:
            demo.load(settings, engine)
        except Exception:  # the dashboard still serves (empty) and the schedule still harvests
            log.exception("event=demo-failed")
    sched = build_scheduler(settings, url=url)
    crashed = False
    with interrupt_on_sigterm():
        sched.start()
        try:
            prune_stale_jobs(sched, settings)
            log.info("event=serving host=%s port=%s", host, port)
            webserver.run(app_mod.create_app(settings, url=url).server, host, port)
        except KeyboardInterrupt:
            pass
        except Exception:
            log.exception("event=crashed")  # here: with a harvest in flight `_stop` ends the process at once
            crashed = True
            raise
        finally:
            _stop(sched, status=1 if crashed else 0)


def work(settings: Settings, *, url: str | None = None, sweep_every_s: float = SWEEP_EVERY_S,
         threads: int = HARVEST_WORKERS) -> None:
    """The scheduler alone (BlockingScheduler), for PostgreSQL + `gunicorn maturity.app:server` web workers; run
    several (on one or more machines) to share the portals: each sweeps the due ones under their leases
    (`harvest_due`) at its start and every `sweep_every_s`, besides the stored per-portal jobs."""
    url = url or settings.storage_url
    close_orphaned_runs(storage.open_db(url))
    sched = build_scheduler(settings, url=url, blocking=True)
    sched.add_jobstore("memory", alias="local")  # this process's own: every worker sweeps
    sched.add_job(harvest_due, "interval", seconds=sweep_every_s, args=[_runtime(_runtime_key(url))],
                  kwargs={"threads": threads}, id=SWEEP_JOB_ID, name="harvest due portals", jobstore="local",
                  next_run_time=datetime.now(UTC))
    sched.add_listener(lambda event: prune_stale_jobs(sched, settings), EVENT_SCHEDULER_STARTED)
    crashed = False
    with interrupt_on_sigterm():
        try:
            log.info("event=worker-started portals=%d", len(settings.portals))
            sched.start()
        except KeyboardInterrupt:
            pass
        except Exception:
            log.exception("event=crashed")  # here: with a harvest in flight `_stop` ends the process at once
            crashed = True
            raise
        finally:
            _stop(sched, status=1 if crashed else 0)


def close_orphaned_runs(engine: storage.Engine) -> None:
    """At start: runs left "running" by a process that is gone are closed as interrupted (logged)."""
    closed = storage.close_orphaned_runs(engine)
    if closed:
        log.warning("event=closed-interrupted-runs runs=%s", ",".join(map(str, closed)))


def _stop(sched: BaseScheduler, *, status: int = 0) -> None:
    """Stop within seconds: no new jobs; the runs of harvests in flight are closed as interrupted and their leases
    released; and when a job is still busy in its thread, the process ends without waiting for it (its run is
    closed already, and its transaction, if one is open, is rolled back with the connection). `status`: 1 when
    the process ends on an error (logged by the caller first), so that a supervisor restarts it."""
    if sched.running:
        sched.shutdown(wait=False)
    busy = False
    for engine, name, owner in storage.held_leases():
        busy = True
        if name.startswith(HARVEST_JOB_PREFIX):
            storage.close_runs_of(engine, [name.removeprefix(HARVEST_JOB_PREFIX)], "the process was stopped",
                                  started_after=datetime(1970, 1, 1, tzinfo=UTC))
        storage.drop_lease(engine, name, owner)
    log.info("event=stopped")
    if busy:
        logging.shutdown()
        os._exit(status)


# --- status ---------------------------------------------------------------------------------------------

STATUS_COLUMNS = ["portal_key", "city_key", "kind", "last_run", "finished_at", "last_status", "last_ok",
                  "next_run", "next_run_source", "last_error", "last_error_at"]


def status(settings: Settings, *, url: str | None = None, now: datetime | None = None) -> pd.DataFrame:
    """Per portal: last run (as_of, finished_at, status), last good run, next run, last error."""
    url = url or settings.storage_url
    now = now or datetime.now(UTC)
    storage.upgrade(url)
    engine = storage.open_db(url)
    stored = {job_id: nxt for job_id, (nxt, _) in _stored_jobs(engine).items()}
    rows = []
    for p in settings.portals:
        runs = _by_harvest_time(storage.runs(engine, portal_key=p.key))
        last = runs.iloc[0] if len(runs) else None
        good = runs[runs["status"].isin(["ok", "suspect"])] if len(runs) else runs
        failed = runs[runs["status"] == "failed"] if len(runs) else runs
        job_id = f"{HARVEST_JOB_PREFIX}{p.key}"
        if job_id in stored:
            nxt, source = stored[job_id], "job store"
        else:
            nxt, source = next_fire_time(p.schedule, now), "schedule"
        rows.append({
            "portal_key": p.key, "city_key": p.city_key, "kind": p.kind,
            "last_run": _value(last, "as_of"), "finished_at": _value(last, "finished_at"),
            "last_status": _value(last, "status"),
            "last_ok": _value(good.iloc[0] if len(good) else None, "as_of"),
            "next_run": nxt, "next_run_source": source,
            "last_error": _value(failed.iloc[0] if len(failed) else None, "error"),
            "last_error_at": _value(failed.iloc[0] if len(failed) else None, "as_of"),
        })
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def _by_harvest_time(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs status speaks of: the portal's harvests, newest started first. Backfill imports are dated by their
    snapshot (2021, say) and say nothing of how harvesting goes today; they count only for a portal that has never
    been harvested (the demo history)."""
    harvests = runs[runs["source"] == "harvest"]
    chosen = harvests if len(harvests) else runs
    return chosen.sort_values(["started_at", "run_id"], ascending=False, kind="stable")


def _value(row: pd.Series | None, col: str) -> object:
    if row is None:
        return None
    v = row.get(col)
    return None if v is None or (not isinstance(v, (str, tuple, list)) and pd.isna(v)) else v


def _stored_jobs(engine: storage.Engine) -> dict[str, tuple[datetime | None, str]]:
    """job id -> (next run time, trigger text) as the job store holds them (a paused job: None)."""
    store = SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)
    _create_table(store.jobs_t, engine)
    store.start(BackgroundScheduler(timezone=UTC), "default")
    try:
        return {job.id: (job.next_run_time, str(job.trigger)) for job in store.get_all_jobs()}
    finally:
        store.shutdown()


def _create_table(table: sa.Table, engine: storage.Engine) -> None:
    """Create the job store's table unless it exists. Workers started together on a new database all find it
    missing and create it (APScheduler checks, then creates): one wins, and the others' error (PostgreSQL: a
    duplicate type or table) only says the table is there now."""
    try:
        table.create(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(table.name):
            raise


# --- logging ----------------------------------------------------------------------------------------------

class _UTCFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)  # a plain function, not a method: mypy reads it as Formatter does


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """key=value log lines on stderr with UTC times, e.g.
    `ts=2026-11-25T05:00:03Z level=WARNING logger=maturity.pipeline portal=boston-ckan event=failing reason=…`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_UTCFormatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
                                       datefmt="%Y-%m-%dT%H:%M:%SZ"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler logs every job start and end at INFO; only its warnings (missed, max instances) matter here.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
