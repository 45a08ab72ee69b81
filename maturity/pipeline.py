"""The three things the product does to data — harvest, import, score — shared by the CLI, the scheduler and tests.

Each function takes the loaded `Settings` and a storage engine, does its work for one portal or city and
returns what happened. A portal failure never raises out of `harvest`: it is recorded as a failed run with
its reason, so one bad portal cannot stop the others or touch earlier history.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
import requests

import storage
from connectors import make_connector, vocab
from connectors.archive import read_items
from connectors.base import Connector, ConnectorError, FetchStats
from connectors.hashing import LazyRawBytes
from connectors.http import RetryPolicy, make_session, policy_for
from connectors.items import ItemTally, batches, normalize_each
from indicators import CRITERION_OF, compute_all, criteria
from indicators.base import CityCatalog, DatajsonCheck, PortalFacts, RunFact, Score
from maturity import harvesters
from maturity.settings import CityConfig, PortalConfig, Settings

log = logging.getLogger("maturity.pipeline")

Progress = Callable[[int, "int | None"], None]
PortalProgress = Callable[[str, int, "int | None"], None]  # (portal key, items so far, reported total)
# Worker processes of `harvest_many` (the CLI's --jobs default): one per core, since parsing and normalizing a
# catalog is CPU work, at least two, and at most eight (each worker holds its own database connections).
HARVEST_JOBS = min(8, max(2, os.cpu_count() or 1))
# Processes that read one large catalog for `maturity score` (storage.city_harvest's `jobs`): one per core.
SCORE_JOBS = min(8, os.cpu_count() or 1)
# Portals each worker harvests at once in threads (--threads): enough that while some wait on the network
# another has CPU work. A portal's page costs its round trip (100 ms-1 s for a real portal) and a few ms to tens
# of ms of parsing; benchmarks/latency.py measured 16 hiding 100 ms on 200 recorded catalogs (docs/scale.md, "Scale:
# latency and workers"). A worker takes them only once a request of its portals has waited 20 ms (one at a
# time until then: harvesters.Admission), so portals that answer at once do not pay for threads they cannot
# use. Each thread holds one catalog in memory and at most one database connection.
HARVEST_THREADS = 16
PER_HOST = 1  # lanes (requests at once) per portal host: polite by default
SCORE_LEASE_PREFIX = "score:"  # one scoring of a city at a time (`city_scoring`)
SCORE_WAIT_S = 900.0  # the longest a scoring waits for another one of the same city (300k scores in ~5-10 s)
# Portal kinds whose harvest is the city's data.json inventory (checked against the POD schema): a city with
# one configured has its inventory checked, so a missing document is evidence.
DATAJSON_KINDS = frozenset({"dcat"})
ITEM_ERRORS_NOTE = "item_errors"  # a run's note: how many items were set aside (kept in storage.item_errors)


def utcnow() -> datetime:
    return datetime.now(UTC)


# A snapshot known only by its day is dated at the end of that day: it holds every update made that day, so
# dated at midnight a dataset updated at 14:00 would be "updated" 14 h after the catalog that shows it (a
# negative age). The last whole second, as the brief of `maturity import --as-of` says: 23:59:59 UTC.
END_OF_DAY = time(23, 59, 59)


def end_of_day(day: date) -> datetime:
    """The time an imported snapshot of `day` is dated: 23:59:59 UTC that day."""
    return datetime.combine(day, END_OF_DAY, tzinfo=UTC)


def harvest(settings: Settings, engine: storage.Engine, portal: PortalConfig, *, now: datetime | None = None,
            session: requests.Session | None = None, progress: Progress | None = None) -> storage.RunSummary:
    """Fetch one portal's whole catalog and store it as one run (change-only); failures are recorded, not raised.

    Pages are stored as they arrive (`_store`), in one transaction that spans the run: a portal failing on its
    25th page leaves its failed run row and nothing else. A failure of the database during the run (a dropped
    connection, a deadlock, a full disk) is recorded by storage and fails this run alone; one that leaves even
    the run's failure unrecorded (the database is gone) is raised.
    """
    as_of = now or utcnow()
    _sync_once(settings, engine)
    run_id, previous = storage.begin_run(engine, portal.key, as_of=as_of)
    connector = make_connector(portal, session=session, progress=progress)
    run = storage.RunWriter(engine, run_id)
    # Pause the cyclic GC while the catalog is parsed, normalized and stored: hundreds of thousands of small
    # acyclic objects otherwise trigger full collections (about half the benchmark's time before).
    with storage.gc_paused():
        try:
            summary, tally = _stored(run, connector, connector.fetch(), lambda: connector.stats)
        except _TooManyFailed as exc:
            _keep_item_errors(engine, run_id, portal.key, exc.tally)
            return _failed(engine, run_id, portal, previous, exc.tally.reason())
        except ConnectorError as exc:
            return _failed(engine, run_id, portal, previous, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            if run.failed:  # the database failed this run: storage recorded it failed with its reason
                if not run.recorded:  # not even that could be written: the database is gone, the harvest stops
                    raise
                # A dropped connection, a deadlock, a full disk: this run alone; the next may find it well again.
                log.error("portal=%s event=database-error reason=%r", portal.key, run.reason)
                summary = _summary_failed(run_id, portal, run.reason or f"{type(exc).__name__}: {exc}")
                _log_transition(portal.key, previous, "failed", summary)
                return summary
            log.exception("portal=%s event=connector-crash", portal.key)  # a connector bug fails this run alone
            return _failed(engine, run_id, portal, previous, f"internal error: {type(exc).__name__}: {exc}")
        except BaseException as exc:  # Ctrl-C, SIGTERM (raised as KeyboardInterrupt): the run ends, then we stop
            if not run.failed:
                _failed(engine, run_id, portal, previous, f"interrupted: {type(exc).__name__} while fetching")
            raise
        _keep_item_errors(engine, run_id, portal.key, tally)
    _log_transition(portal.key, previous, summary.status, summary)
    return summary


class _TooManyFailed(Exception):
    """More of a run's items failed to normalize than a run may set aside (connectors.items.ITEM_FAILURE_SHARE)."""

    def __init__(self, tally: ItemTally) -> None:
        super().__init__(tally.reason())
        self.tally = tally


def _stored(run: storage.RunWriter, connector: Connector, items: Iterable[dict[str, Any]],
            stats: Callable[[], FetchStats]) -> tuple[storage.RunSummary, ItemTally]:
    """Store a run's items (`_store`) and close it, in the writer's one transaction; `stats` is read once the
    items are exhausted. Too many odd items raise `_TooManyFailed`: the run is rolled back."""
    with run:
        tally = _store(run, connector, items)
        if tally.too_many_failed:
            raise _TooManyFailed(tally)
        return run.finish(_noted(stats(), tally), finished_at=utcnow()), tally


def _store(run: storage.RunWriter, connector: Connector, items: Iterable[dict[str, Any]]) -> ItemTally:
    """Feed a run's raw items to its writer a batch at a time: the profile from the first batch
    (`connector.discover`), then per batch the stored hashes of its ids in one query; unchanged items (same raw
    hash as the version valid at the run's as_of) are only counted as members, neither normalized nor
    serialized; the others are normalized (odd items set aside, connectors.items) and written."""
    tally = ItemTally()
    profile: Callable[[], vocab.FieldProfile] | None = None
    # The run's field profile is read from its first DISCOVERY_SAMPLE items, so the first batch is exactly that
    # sample and later ones the same size: memory holds a page being parsed plus one batch, whatever the
    # catalog's size, and the records are those a whole-catalog pass gives.
    for batch in batches(items, vocab.DISCOVERY_SAMPLE):
        if profile is None:
            profile = _profile_of(connector, batch)
        _store_batch(run, connector, profile, batch, tally)
        del batch  # not held while the next page is fetched and parsed
    return tally


def _profile_of(connector: Connector, sample: list[dict[str, Any]]) -> Callable[[], vocab.FieldProfile]:
    """The run's field profile from its first batch, as a function called when an item is to be normalized.

    A full first batch is read now: more may follow, and it is not kept while they arrive. A shorter one is the
    whole run (every recorded portal but the largest), read only if one of its items needs normalizing: an
    unchanged re-harvest of a small portal spent a tenth of its time on a profile it never used.
    """
    if len(sample) == vocab.DISCOVERY_SAMPLE:
        profile = connector.discover(sample)
        return lambda: profile
    return functools.cache(lambda: connector.discover(sample))


def _store_batch(run: storage.RunWriter, connector: Connector, profile: Callable[[], vocab.FieldProfile],
                 batch: list[dict[str, Any]], tally: ItemTally) -> None:
    ids = [_or_none(connector.source_id, raw) for raw in batch]
    stored = run.stored_hashes(sid for sid in ids if sid is not None)
    if stored:  # (a first harvest has nothing stored: no item is hashed twice)
        unchanged = {sid for sid, raw in zip(ids, batch, strict=True)
                     if sid in stored and stored[sid] == _or_none(connector.raw_hash, raw)}
        run.keep(sid for sid in ids if sid in unchanged)
        tally.ok += sum(1 for sid in ids if sid in unchanged)
        batch = [raw for sid, raw in zip(ids, batch, strict=True) if sid not in unchanged]
    normalized = normalize_each(connector, batch, profile() if batch else None)
    run.add(normalized.records, LazyRawBytes(normalized.raws, connector.raw_bytes))
    tally.add(normalized)


def _or_none(read: Callable[[dict[str, Any]], str], raw: dict[str, Any]) -> str | None:
    """`read(raw)`, None for an odd item it trips on: the item is then normalized, and set aside with its error
    (connectors.items), never the run's failure."""
    try:
        return read(raw)
    except Exception:
        return None


def harvest_many(settings: Settings, engine: storage.Engine, portals: Sequence[PortalConfig], *,
                 jobs: int = HARVEST_JOBS, threads: int = HARVEST_THREADS, per_host: int = PER_HOST,
                 now: datetime | None = None, progress: PortalProgress | None = None,
                 done: Callable[[storage.RunSummary], None] | None = None) -> list[storage.RunSummary]:
    """`harvest` each portal: `jobs` worker processes, each harvesting up to `threads` portals at once in threads
    (maturity/harvesters.py); summaries in the order given.

    Every portal is still one `harvest`: its own run, its own transaction, its own failure. Threads hide the
    network waits (a portal far away costs its latency, not a process); processes share the CPU work of parsing
    and normalizing, which holds the GIL. A host's portals are harvested one after another (one request at a time
    per host), over `per_host` lanes if asked. Writers queue on the database's write lock (SQLite: the writers'
    lock of storage.db.writer, then `BEGIN IMMEDIATE`). Workers are forked, so they start in milliseconds with
    this process's modules and config; with jobs=1, where fork is unavailable, or for an in-memory SQLite no other
    process can see, the threads run in this process (one at a time for an in-memory SQLite: its one connection is
    not shared).
    `progress(portal_key, n, total)` and `done(summary)` are called in this process, one call at a time.

    A worker that dies (killed, out of memory) fails the portals it had started (their "running" runs are closed
    with the reason); the portals it had not started are harvested by another worker.
    """
    portals = list(portals)
    if not portals:
        return []
    _sync_once(settings, engine)  # once, before forking: workers inherit the memo instead of racing to sync
    results: dict[str, storage.RunSummary] = {}
    url = engine.url.render_as_string(hide_password=False)
    parent = os.getpid()
    sessions = threading.local()  # a requests.Session is not shared between threads

    def work(portal: PortalConfig, bar: Progress) -> storage.RunSummary:
        here = engine if os.getpid() == parent else storage.open_db(url)
        return harvest(settings, here, portal, now=now, progress=bar,
                       session=_shared_session(portal, sessions.__dict__.setdefault("by_token", {})))

    def record(summary: storage.RunSummary) -> None:
        results[summary.portal_key] = summary
        if done:
            done(summary)

    def lost(portal: PortalConfig) -> None:
        reason = f"worker process lost while harvesting {portal.key} (killed or out of memory?)"
        run_ids = storage.fail_running(engine, portal.key, reason, started_after=began, now=utcnow())
        if run_ids:
            record(_summary_failed(run_ids[0], portal, reason))
        else:
            reason = "worker process lost before the harvest started"
            record(_failed(engine, storage.start_run(engine, portal.key, as_of=now or utcnow()), portal, None, reason))

    in_here = jobs <= 1 or "fork" not in mp.get_all_start_methods() or _in_memory(engine)
    began = utcnow()
    try:
        harvesters.run(work, harvesters.lanes(portals, per_host),
                       processes=0 if in_here else jobs, threads=1 if _in_memory(engine) else threads,
                       events=harvesters.Events(progress=progress, done=record, lost=lost))
    except BaseException as exc:  # Ctrl-C, SIGTERM, the database gone: the workers are gone too (harvesters.run)
        try:  # their runs end too
            storage.close_runs_of(engine, [p.key for p in portals if p.key not in results],
                                  f"harvest stopped: {type(exc).__name__}", started_after=began)
        except Exception as closing:  # the database may be what stopped us: the first error says why
            storage.log_cleanup_failure(log, closing, "close the runs of the stopped harvest")
        raise
    return [results[p.key] for p in portals]


def _shared_session(portal: PortalConfig,
                    sessions: dict[tuple[str | None, RetryPolicy], requests.Session]) -> requests.Session:
    """One HTTP session per app token (and request bounds) for a batch of portals: connections to a host are
    reused, not reopened."""
    token = portal.app_token.value() if portal.app_token else None
    policy = policy_for(portal)
    if (token, policy) not in sessions:
        sessions[token, policy] = make_session(token, policy=policy)
    return sessions[token, policy]


def _in_memory(engine: storage.Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


def import_files(settings: Settings, engine: storage.Engine, city_key: str, as_of: date | datetime,
                 paths: Iterable[str | Path], *, portal_key: str | None = None) -> list[storage.RunSummary]:
    """Backfill history: each archived catalog file becomes one run of the city's portal as of `as_of`.

    `as_of` a day (a `date`): the snapshot is dated at the end of it (`end_of_day`); a `datetime` is taken as
    given. The file's kind is the portal's kind; with several portals in a city, `portal_key` picks one,
    otherwise the first portal whose kind can read the file is used. A file with no items is stored as an
    *empty* run (never scored as the city's state), not as a catalog of 0 datasets.
    """
    if not isinstance(as_of, datetime):
        as_of = end_of_day(as_of)
    city = settings.city(city_key)
    _sync_once(settings, engine)
    summaries = []
    for path in paths:
        portal = _import_portal(city, portal_key, Path(path))
        connector = make_connector(portal)
        run_id = storage.start_run(engine, portal.key, as_of=as_of, source="import")
        run = storage.RunWriter(engine, run_id)
        try:
            raws, stats = read_items(Path(path), portal.kind)
            summary, tally = _stored(run, connector, raws, lambda: stats)  # noqa: B023 (called right here)
        except _TooManyFailed as exc:
            _keep_item_errors(engine, run_id, portal.key, exc.tally)
            reason = f"{Path(path).name}: {exc.tally.reason()}"
            storage.fail_run(engine, run_id, reason, finished_at=utcnow())
            raise ImportFailed(reason) from None
        except Exception as exc:  # a truncated .gz is an EOFError: any reading failure fails this run alone
            if run.failed:  # the database failed: storage recorded the run failed with its reason
                raise
            reason = f"{Path(path).name}: {type(exc).__name__}: {exc}"
            storage.fail_run(engine, run_id, reason, finished_at=utcnow())
            raise ImportFailed(reason) from exc
        except BaseException as exc:  # Ctrl-C, SIGTERM: the run ends too
            if not run.failed:
                storage.fail_run(engine, run_id, f"{Path(path).name}: interrupted: {type(exc).__name__}",
                                 finished_at=utcnow())
            raise
        _keep_item_errors(engine, run_id, portal.key, tally)
        summaries.append(summary)
    return summaries


class ImportFailed(RuntimeError):
    """An archived file could not be read; the run is recorded failed and earlier history is untouched."""


def score(settings: Settings, engine: storage.Engine, city_key: str, *, as_of: datetime | None = None,
          keep: bool = True, decoded: storage.DecodedVersions | None = None, jobs: int = 1,
          snapshot: bool | None = None) -> dict[str, Score]:
    """Score a city's catalog as of a time (default: its latest run) and store the scores and criteria.

    The scores stand on the newest crawl of each portal at that time. When one of them is partial or empty
    the scores are stored flagged (`storage.score_flag`): kept, but never a line, delta or "latest" value.
    When every one came back empty there is no catalog to score: nothing is stored (earlier scores of that
    time are deleted) and {} is returned. `keep=False`: the catalog is not kept in storage's cache; `decoded`:
    records decoded for an earlier date, kept for the next (both for score_all). `jobs` > 1: a large catalog is
    read in that many processes (`storage.city_harvest`; for a caller whose process runs no other threads).
    `snapshot`: the catalog's records are taken from and kept in its portals' snapshots (`storage.city_harvest`);
    by default when the latest catalog is scored (`as_of` None), as every harvest is followed: the CLI's and the
    scheduler's scoring alike. A dated rescoring (`score_all`) leaves the snapshot alone: it would replace the
    latest catalog's records by an older date's, to be decoded again by the next harvest's scoring.
    """
    if snapshot is None:
        snapshot = as_of is None and decoded is None
    if as_of is not None:  # a dated rescoring: score_all holds the city's scoring for all its dates
        return _score(settings, engine, city_key, as_of, keep=keep, decoded=decoded, jobs=jobs, snapshot=snapshot)
    with city_scoring(engine, city_key):
        return _score(settings, engine, city_key, None, keep=keep, decoded=decoded, jobs=jobs, snapshot=snapshot)


def city_scoring(engine: storage.Engine, city_key: str) -> AbstractContextManager[None]:
    """One scoring of a city at a time, in any process (a lease in the database; a second one waits).

    Threads and workers harvest a city's portals side by side, each then scoring the city: the second reads
    after the first has saved. Without it, a scoring that read before the other portal's run finished could save
    after the one that read both, at the same time stamp, and stale scores stood as the latest until the next
    harvest; `score --all` rescoring the latest date beside them could do the same."""
    owner = f"{storage.process_owner('score')}:{threading.get_ident()}"
    return storage.waited_lease(engine, f"{SCORE_LEASE_PREFIX}{city_key}", owner, wait_s=SCORE_WAIT_S)


def _score(settings: Settings, engine: storage.Engine, city_key: str, as_of: datetime | None, *, keep: bool,
           decoded: storage.DecodedVersions | None, jobs: int, snapshot: bool) -> dict[str, Score]:
    catalog, when = scoring_input(engine, settings.city(city_key), as_of, keep=keep, decoded=decoded, jobs=jobs,
                                  snapshot=snapshot)
    if when is None:  # nothing harvested yet: no score rather than a score of an empty catalog
        return {}
    crawled = storage.latest_crawls(engine, city_key, as_of=when)
    if crawled.empty or (crawled["status"] == "empty").all():
        storage.save_scores(engine, city_key, when, {}, pd.DataFrame(), criterion_of=CRITERION_OF)
        return {}
    scores = compute_all(catalog, when)
    storage.save_scores(engine, city_key, when, scores, criteria.rollup(scores), criterion_of=CRITERION_OF,
                        flag=storage.score_flag(crawled["status"]))
    return scores


def scoring_input(engine: storage.Engine, city: CityConfig, as_of: datetime | None = None, *, keep: bool = True,
                  decoded: storage.DecodedVersions | None = None,
                  jobs: int = 1, snapshot: bool = False) -> tuple[CityCatalog, datetime | None]:
    """The indicators' one input for a city as of a time, and the time its scores are stamped with (the asked
    time, else the newest finished run that did not fail; None before any)."""
    harvest = storage.city_harvest(engine, city.key, as_of=as_of, keep=keep, decoded=decoded, jobs=jobs,
                                   snapshot=snapshot)
    return CityCatalog(harvest.frame, portal_facts(harvest, city.departments)), _as_of_of(harvest.runs, as_of)


def portal_facts(harvest: storage.CityHarvest, departments: Sequence[str] = ()) -> PortalFacts:
    """The typed facts behind a city's catalog, from what storage read (pure)."""
    runs = tuple(_run_fact(r) for r in harvest.runs.to_dict("records"))
    newest: dict[str, RunFact] = {}
    for r in runs:  # oldest first: the last one per portal wins
        newest[r.portal_key] = r
    return PortalFacts(
        reachable=any(r.status != "failed" for r in newest.values()),
        kinds=frozenset(harvest.kinds.values()),
        datajson=_datajson(harvest),
        history_start=harvest.history_start,
        runs=runs,
        removed=None if harvest.removed is None else frozenset(harvest.removed),
        departments=tuple(departments),
    )


def _run_fact(row: Mapping[Hashable, Any]) -> RunFact:
    # `complete` comes from the run row when storage records it; until then an ok run is a complete crawl.
    complete = row.get("complete")
    items = row.get("items")
    return RunFact(run_id=int(row["run_id"]), portal_key=str(row["portal_key"]),
                   as_of=pd.Timestamp(row["as_of"]).to_pydatetime(), status=str(row["status"]),
                   items=None if items is None or pd.isna(items) else int(items),
                   complete=bool(complete) if complete is not None and not pd.isna(complete) else row["status"] == "ok")


def _datajson(harvest: storage.CityHarvest) -> DatajsonCheck:
    """The data.json check of the city's data.json portals' newest ok runs (summed over several)."""
    portals = [key for key, kind in harvest.kinds.items() if kind in DATAJSON_KINDS]
    if not portals:
        return DatajsonCheck()
    read = [key for key in portals if key in harvest.schema_checks]
    if not read:
        return DatajsonCheck(checked=True)
    checks = [harvest.schema_checks[key] for key in read]
    if any(c is None for c in checks):
        return DatajsonCheck(checked=True, present=True)
    errors: dict[str, tuple[str, ...]] = {}
    for c in checks:
        if c is not None:
            for sid, msgs in c.errors.items():
                errors[sid] = errors.get(sid, ()) + tuple(msgs)
    return DatajsonCheck(checked=True, present=True, validated=True,
                         entries=sum(c.entries for c in checks if c is not None),
                         error_count=sum(c.error_count for c in checks if c is not None), errors=errors)


def score_all(settings: Settings, engine: storage.Engine, city_key: str) -> int:
    """Re-score every stored run date of a city (after a methodology change); returns how many.

    The city's runs are judged again first (complete / partial / empty, storage/crawls.py), so history stored
    under an older rule is re-flagged too."""
    with city_scoring(engine, city_key):
        for portal in settings.city(city_key).portals:
            storage.rejudge_runs(engine, portal.key)
        dates = storage.run_dates(engine, city_key)
        # Each date's catalog is read once (not kept in the catalog cache), but a record is decoded once for all
        # the dates its version stands in: from one week to the next most datasets keep theirs.
        decoded = storage.DecodedVersions()
        for when in dates:
            score(settings, engine, city_key, as_of=when, keep=False, decoded=decoded)
        return len(dates)


def score_all_many(settings: Settings, engine: storage.Engine, city_keys: Sequence[str], *,
                   jobs: int = HARVEST_JOBS) -> dict[str, int]:
    """`score_all` of each city, up to `jobs` cities at once in forked worker processes; {city_key: dates rescored}.

    Scoring is CPU work that holds the GIL, so processes, as `harvest_many`; each city's dates are still scored
    oldest first in one process, and writers queue on the database's write lock. One city after another here
    when jobs is 1, fork is unavailable or the database is an in-memory SQLite no other process can see.
    """
    keys = list(city_keys)
    jobs = max(1, min(jobs, len(keys)))
    if jobs == 1 or "fork" not in mp.get_all_start_methods() or _in_memory(engine):
        return {key: score_all(settings, engine, key) for key in keys}
    _sync_once(settings, engine)
    url = engine.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork"), initializer=_scorer_init,
                             initargs=(settings, url, os.getpid())) as pool:
        return dict(zip(keys, pool.map(_scorer_score_all, keys), strict=True))


_scorer: dict[str, Any] = {}  # a scoring worker's settings and database URL (set by _scorer_init)


def _scorer_init(settings: Settings, url: str, parent: int) -> None:
    harvesters.die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the parent alone decides (the pool's exit ends the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _scorer.update(settings=settings, url=url)


def _scorer_score_all(city_key: str) -> int:
    return score_all(_scorer["settings"], storage.open_db(_scorer["url"]), city_key)


MANUAL_COLUMNS = ["criterion", "url", "date", "note", "source", "recorded_at"]


def manual_evidence(settings: Settings, engine: storage.Engine, city_key: str, *,
                    as_of: datetime | None = None) -> pd.DataFrame:
    """Evidence a CDO recorded (UI) plus what config.toml declares, one frame: criterion, url, date, note, source,
    recorded_at (UTC).

    `recorded_at` is when the record was made: a dashboard record's creation time. config.toml keeps no time of
    writing, so its record counts from its document's own date (the start of that day; NaT when undated: always).
    With `as_of`, only records made by then: a past view (?as_of=, an export of a past date) counts no evidence
    recorded after it.
    """
    rows = [{"criterion": e.criterion, "url": e.url, "date": e.date, "note": e.note, "source": "config",
             "recorded_at": pd.Timestamp(e.date, tz="UTC") if e.date else pd.NaT}
            for e in settings.city(city_key).evidence]
    ui = storage.evidence(engine, city_key)
    frame = pd.DataFrame(rows, columns=MANUAL_COLUMNS)
    if len(ui):
        ui = ui.assign(source="dashboard", recorded_at=ui["created_at"])[MANUAL_COLUMNS]
        frame = pd.concat([frame, ui], ignore_index=True) if len(frame) else ui
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
    return frame if as_of is None else recorded_by(frame, as_of)


def recorded_by(manual: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """The `manual_evidence` rows recorded at or before `as_of` (a row with no time, NaT, always counts)."""
    when = pd.to_datetime(manual["recorded_at"], utc=True)
    return manual[when.isna() | (when <= pd.Timestamp(as_of))].reset_index(drop=True)


# --- helpers ---------------------------------------------------------------------------------------------

_synced: set[tuple[str, int]] = set()
_seen_settings: dict[tuple[str, int], Settings] = {}  # (url, id) -> the object, kept alive so its id stays its own


def _sync_once(settings: Settings, engine: storage.Engine) -> None:
    """Write cities and portals from config once per (database, config), not on every harvest."""
    # hash(settings) walks every city and portal: with 291 portals, called once per portal, that was
    # ~0.2 s of the harvest benchmark. The same object was seen before: nothing to hash.
    if _seen_settings.get((str(engine.url), id(settings))) is settings:
        return
    key = (str(engine.url), hash(settings))
    if key not in _synced:
        storage.sync_config(engine, settings)
        _synced.add(key)
    _seen_settings[(str(engine.url), id(settings))] = settings


def _as_of_of(runs: pd.DataFrame, as_of: datetime | None) -> datetime | None:
    """The time a score is stamped with: the asked time, else the newest run that did not fail."""
    if as_of is not None:
        return as_of
    times = runs.loc[runs["status"] != "failed", "as_of"] if len(runs) else ()
    return pd.Timestamp(max(times)).to_pydatetime() if len(times) else None


def _import_portal(city: CityConfig, portal_key: str | None, path: Path) -> PortalConfig:
    if portal_key:
        for p in city.portals:
            if p.key == portal_key:
                return p
        raise ImportFailed(f"city {city.key!r} has no portal {portal_key!r}")
    if len(city.portals) == 1:
        return city.portals[0]
    # Several portals: a data.json goes to the dcat portal, anything else to the first non-dcat one.
    want_dcat = "data.json" in path.name or path.name.startswith("data_json")
    for p in city.portals:
        if (p.kind == "dcat") == want_dcat:
            return p
    return city.portals[0]


def _keep_item_errors(engine: storage.Engine, run_id: int, portal_key: str, tally: ItemTally) -> None:
    """Store the items set aside, raw with their errors (after the run's transaction: committed or rolled back)."""
    if tally.failed:
        storage.save_item_errors(engine, run_id, tally.failed)
        log.warning("portal=%s event=item-errors run=%s failed=%d of=%d first=%r", portal_key, run_id,
                    len(tally.failed), tally.total, str(tally.failed[0][1]))


def _noted(stats: FetchStats, tally: ItemTally) -> FetchStats:
    """The run's stats with the count of items set aside (ITEM_ERRORS_NOTE=N) among its notes."""
    if not tally.failed:
        return stats
    return dataclasses.replace(stats, notes=(*stats.notes, f"{ITEM_ERRORS_NOTE}={len(tally.failed)}"))


def _failed(engine: storage.Engine, run_id: int, portal: PortalConfig, previous: str | None,
            reason: str) -> storage.RunSummary:
    storage.fail_run(engine, run_id, reason, finished_at=utcnow())
    summary = _summary_failed(run_id, portal, reason)
    _log_transition(portal.key, previous, "failed", summary)
    return summary


def _summary_failed(run_id: int, portal: PortalConfig, reason: str) -> storage.RunSummary:
    return storage.RunSummary(run_id=run_id, portal_key=portal.key, status="failed", items=0, new_versions=0,
                              repeats=0, removed=0, suspect_reason=None, error=reason)


def _log_transition(portal_key: str, previous: str | None, status: str, summary: storage.RunSummary) -> None:
    """One log line per state change (failing, recovered), so an operator's log stays readable."""
    if status == "failed" and previous != "failed":
        log.warning("portal=%s event=failing reason=%r", portal_key, getattr(summary, "error", None))
    elif status != "failed" and previous == "failed":
        log.info("portal=%s event=recovered items=%s", portal_key, summary.items)
    elif status in ("suspect", "empty"):  # a partial or empty crawl: stored, never scored as the city's state
        log.warning("portal=%s event=%s reason=%r", portal_key, status, summary.suspect_reason)
