"""The write path: runs, change-only dataset history, config sync.

`save_harvest` is built for a 12k-dataset portal: one query loads the portal's {source_id: (dataset id,
hash of the version valid at the run's as_of)}, hashes are compared in Python, and only new datasets and
changed versions are bulk-inserted (executemany) — all in ONE transaction.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage import codec, compact, crawls
from storage.db import gc_paused, is_sqlite, now_utc, utc, write_tx
from storage.models import (
    SCORE_FLAGS,
    audit_t,
    cities_t,
    datasets_t,
    evidence_t,
    portals_t,
    runs_t,
    scores_t,
    versions_t,
)
from storage.schema_checks import save_schema_check

if TYPE_CHECKING:
    import pandas as pd

    from connectors.base import DatasetRecord, FetchStats
    from maturity.settings import Settings


class ScoreLike(Protocol):
    """What save_scores stores of an indicator score (indicators.base.Score has it; storage does not import it)."""

    @property
    def value(self) -> float | None: ...
    @property
    def numerator(self) -> float: ...
    @property
    def denominator(self) -> float: ...
    @property
    def failing(self) -> Mapping[str, str]: ...
    @property
    def matches(self) -> Mapping[str, str]: ...
    @property
    def detail(self) -> Mapping[str, float]: ...


log = logging.getLogger(__name__)

# How a run is judged complete / partial ("suspect") / empty, and what counts as removed: storage/crawls.py.
COMPLETE_SHARE = crawls.COMPLETE_SHARE

# Statements of the per-harvest path, built once: constructing a Select and computing its cache key cost
# more than SQLite takes to run it, ~10 times per portal (291 portals in the benchmark).
_p = sa.bindparam
_START_RUN = sa.insert(runs_t).returning(runs_t.c.id)
_RUN_BY_ID = runs_t.c.id == _p("run_id")
LAST_STATUS = (sa.select(runs_t.c.status).where(runs_t.c.portal_key == _p("portal_key"))
               .order_by(runs_t.c.started_at.desc(), runs_t.c.id.desc()).limit(1))  # the order of queries.runs
_RUN_ROW = sa.select(runs_t.c.portal_key, runs_t.c.as_of, runs_t.c.status).where(_RUN_BY_ID)
_CLOSE_RUN = sa.update(runs_t).where(_RUN_BY_ID)  # SET from the parameters' column names
_CREATED_IDS = sa.select(datasets_t.c.source_id, datasets_t.c.id).where(
    datasets_t.c.portal_key == _p("portal_key"), datasets_t.c.first_run_id == _p("run_id"))
_PORTAL_DATASET_IDS = sa.select(datasets_t.c.source_id, datasets_t.c.id).where(
    datasets_t.c.portal_key == _p("portal_key"))
# Judging a run needs the last complete run dated before it and the crawled runs since (crawls.judge);
# "before" is by date, and on a date tie by id (stored before). Neither reads the members blob.
_before = sa.or_(runs_t.c.as_of < _p("as_of"), sa.and_(runs_t.c.as_of == _p("as_of"), runs_t.c.id < _p("run_id")))
_LAST_COMPLETE = (sa.select(runs_t.c.id, runs_t.c.as_of, runs_t.c["items"], runs_t.c.status)
                  .where(runs_t.c.portal_key == _p("portal_key"), runs_t.c.status == crawls.COMPLETE,
                         runs_t.c.id != _p("run_id"), _before)
                  .order_by(runs_t.c.as_of.desc(), runs_t.c.id.desc()).limit(1))
_CRAWLED_SINCE = (sa.select(runs_t.c.id, runs_t.c.as_of, runs_t.c["items"], runs_t.c.status)
                  .where(runs_t.c.portal_key == _p("portal_key"), runs_t.c.status.in_(crawls.CRAWLED),
                         runs_t.c.id != _p("run_id"), runs_t.c.as_of >= _p("since"), _before))
# The two complete runs before a run, newest first: their members are what crawls.confirmed_removals needs.
_COMPLETE_MEMBERS = (sa.select(runs_t.c.id)
                     .where(runs_t.c.portal_key == _p("portal_key"), runs_t.c.status == crawls.COMPLETE,
                            runs_t.c.id != _p("run_id"), _before)
                     .order_by(runs_t.c.as_of.desc(), runs_t.c.id.desc()).limit(2))
_ranked = (
    sa.select(versions_t.c.dataset_id, versions_t.c.id, versions_t.c.raw_hash,
              sa.func.row_number().over(partition_by=versions_t.c.dataset_id,
                                        order_by=(versions_t.c.as_of.desc(), versions_t.c.id.desc())).label("rn"))
    .join(datasets_t, datasets_t.c.id == versions_t.c.dataset_id)
    .where(datasets_t.c.portal_key == _p("portal_key"), versions_t.c.as_of <= _p("as_of"))
    .subquery()
)
_VALID_VERSIONS = sa.select(_ranked.c.dataset_id, _ranked.c.id, _ranked.c.raw_hash).where(_ranked.c.rn == 1)


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    portal_key: str
    status: str  # ok | suspect | failed
    items: int
    new_versions: int
    repeats: int
    removed: int
    suspect_reason: str | None
    error: str | None = None


class RunClosed(ValueError):
    """save_harvest was given a run that is not "running" (already saved or failed); the run is left as it is."""


def pack_ids(ids: Iterable[str]) -> bytes:
    """A full member list (a base); a run's members are stored by `compact.encode_members`."""
    return codec.encode_ids(ids)


def unpack_ids(blob: bytes | None) -> list[str]:
    """The ids of a full member list; a run's members are read by `compact.members_of` (a delta needs its base)."""
    return codec.decode_ids(blob)


def start_run(engine: Engine, portal_key: str, *, as_of: datetime, source: str = "harvest",
              started_at: datetime | None = None) -> int:
    """Record a run as "running" and return its id; `as_of` is what the catalog is dated (a snapshot date for
    imports)."""
    with write_tx(engine) as conn:
        return _insert_run(conn, portal_key, as_of, source, started_at)


def begin_run(engine: Engine, portal_key: str, *, as_of: datetime, source: str = "harvest") -> tuple[int, str | None]:
    """`start_run`, and the status of the portal's newest run before it (None before its first), in one
    transaction: a small portal's harvest is mostly fixed costs like a connection's (~0.3 ms each here)."""
    with write_tx(engine) as conn:
        previous = conn.execute(LAST_STATUS, {"portal_key": portal_key}).scalar()
        return _insert_run(conn, portal_key, as_of, source, None), previous


def _insert_run(conn: Connection, portal_key: str, as_of: datetime, source: str, started_at: datetime | None) -> int:
    return conn.execute(_START_RUN, {"portal_key": portal_key, "source": source, "as_of": utc(as_of),
                                     "started_at": utc(started_at) or now_utc(), "status": "running"}).scalar_one()


def fail_run(engine: Engine, run_id: int, reason: str, *, finished_at: datetime) -> None:
    """Mark a run failed with its reason (its own transaction; earlier runs are untouched)."""
    with write_tx(engine) as conn:
        conn.execute(sa.update(runs_t).where(runs_t.c.id == run_id).values(
            status="failed", error=reason, finished_at=utc(finished_at)))


def close_stale_runs(engine: Engine, *, started_before: datetime, now: datetime) -> int:
    """Record as failed the runs still "running" that started before `started_before` (their process died).

    A harvest killed mid-way (deploy, OOM, power) leaves its run "running" forever otherwise; its
    transaction never committed, so nothing else needs undoing. Returns how many runs were closed.
    """
    reason = f"interrupted: still running at {utc(now):%Y-%m-%d %H:%M} UTC (the harvesting process stopped)"
    with write_tx(engine) as conn:
        return conn.execute(sa.update(runs_t).where(runs_t.c.status == "running",
                                                    runs_t.c.started_at < utc(started_before))
                            .values(status="failed", error=reason, finished_at=utc(now))).rowcount


def fail_running(engine: Engine, portal_key: str, reason: str, *, started_after: datetime,
                 now: datetime) -> list[int]:
    """Record a portal's runs still "running" that started after `started_after` as failed with `reason` (the
    worker process harvesting it died); their ids."""
    stmt = (sa.update(runs_t)
            .where(runs_t.c.status == "running", runs_t.c.portal_key == portal_key,
                   runs_t.c.started_at >= utc(started_after))
            .values(status="failed", error=reason, finished_at=utc(now)).returning(runs_t.c.id))
    with write_tx(engine) as conn:
        return list(conn.execute(stmt).scalars())


def save_harvest(engine: Engine, run_id: int, records: Sequence[DatasetRecord], raws: Sequence[bytes],
                 stats: FetchStats, *, finished_at: datetime) -> RunSummary:
    """Store one run's records change-only, in one transaction, and close the run as ok or suspect.

    On any exception the transaction is rolled back (earlier runs intact), the run is recorded failed with
    the exception as its reason in a separate transaction, and the exception is re-raised.
    """
    try:
        # One connection: a read transaction to prepare, then the write transaction (BEGIN IMMEDIATE).
        with gc_paused(), engine.connect() as conn:
            with conn.begin():
                ready = _prepare(conn, run_id, records, raws)
            with conn.execution_options(write=True).begin():
                return _save(conn, run_id, records, raws, stats, utc(finished_at), ready)
    except RunClosed:
        raise
    except BaseException as exc:  # KeyboardInterrupt too: a run must not stay "running" forever
        reason = f"{type(exc).__name__}: {exc}"
        try:
            fail_run(engine, run_id, reason, finished_at=finished_at)
        except Exception:  # the database itself may be what failed; keep the original error
            log.exception("could not record run %s as failed", run_id)
        raise


Payload = tuple[bytes, bytes, int | None]  # a version's compressed record JSON and raw item, and its base version


@dataclass(frozen=True)
class Prepared:
    """What `_prepare` built outside the write lock: the portal's codec (with any dictionary this run trained),
    the dictionary rows to insert with the run, and the payloads of the items that looked new or changed."""

    packer: codec.Codec
    dictionaries: list[dict[str, Any]]
    payloads: dict[int, Payload]


def _prepare(conn: Connection, run_id: int, records: Sequence[DatasetRecord],
             raws: Sequence[bytes]) -> Prepared:
    """The payloads of the items that look new or changed, built before taking the write lock.

    Serializing and compressing is most of a first harvest's storage CPU. Inside the write transaction it kept
    the other harvest workers waiting on SQLite's lock (two workers, the 291-portal benchmark: 0.68 s of waits,
    0.3-0.5 s after this). This reads without locking; `_save` decides again under the lock and builds any
    payload this guessed wrong (another writer stored the same portal in between).
    """
    run = conn.execute(_RUN_ROW, {"run_id": run_id}).one_or_none()
    if run is None:
        return Prepared(codec.Codec(), [], {})
    existing = _versions_at(conn, run.portal_key, run.as_of)
    todo = [i for i, rec in enumerate(records)
            if (known := existing.get(rec.source_id)) is None or known[2] != _hash_of(rec, raws, i)]
    raw_todo = [raws[i] for i in todo]
    json_todo = [_record_json(records[i]) for i in todo]
    # A portal's first large write teaches it its dictionaries (codec.train: from these items themselves).
    packer, new = compact.trained(compact.portal_codec(conn, run.portal_key), run_id,
                                  {codec.RAW: raw_todo, codec.RECORD: json_todo})
    payloads: dict[int, Payload] = {
        i: (record, raw, None) for i, record, raw in zip(
            todo, packer.pack_many(codec.RECORD, json_todo), _compress_all(raw_todo, packer), strict=True)}
    # A changed dataset is stored against its key version when that is smaller (storage/compact.py).
    changed = {i: known[1] for i in todo if (known := existing.get(records[i].source_id)) and known[1] is not None}
    keys = compact.key_versions(conn, packer, changed.values())
    position = {i: n for n, i in enumerate(todo)}
    for i, vid in changed.items():
        if vid in keys:
            payloads[i] = compact.smaller(payloads[i], json_todo[position[i]], raw_todo[position[i]], keys[vid])
    return Prepared(packer, new, payloads)


def _hash_of(rec: DatasetRecord, raws: Sequence[bytes], i: int) -> str:
    return rec.raw_hash or hashlib.sha1(raws[i]).hexdigest()


def _save(conn: Connection, run_id: int, records: Sequence[DatasetRecord], raws: Sequence[bytes],
          stats: FetchStats, finished_at: datetime | None, ready: Prepared) -> RunSummary:
    if len(records) != len(raws):
        raise ValueError(f"{len(records)} records but {len(raws)} raw items")
    run = conn.execute(_RUN_ROW, {"run_id": run_id}).one_or_none()
    if run is None:
        raise RunClosed(f"no harvest run {run_id}")
    if run.status != "running":
        raise RunClosed(f"run {run_id} is {run.status!r}, not running")
    portal_key, as_of = run.portal_key, run.as_of

    # Items repeated in the input count once (the first one wins) and add to the run's repeats.
    picked: dict[str, int] = {}
    for i, rec in enumerate(records):
        if rec.portal_key != portal_key:
            raise ValueError(
                f"record {rec.source_id!r} is from portal {rec.portal_key!r}, run {run_id} is {portal_key!r}")
        picked.setdefault(rec.source_id, i)
    dropped = len(records) - len(picked)

    existing = _versions_at(conn, portal_key, as_of)

    new_ids = [sid for sid in picked if sid not in existing]
    is_new = set(new_ids)
    if new_ids:
        _bulk_insert(conn, datasets_t, [{"portal_key": portal_key, "source_id": sid, "first_run_id": run_id,
                                         "last_run_id": run_id} for sid in new_ids])
        # Their ids: every dataset row this run created (one indexed query, not RETURNING per batch).
        for sid, dataset_id in conn.execute(_CREATED_IDS, {"portal_key": portal_key, "run_id": run_id}):
            if sid in is_new:
                existing[sid] = (dataset_id, None, None)

    versions: list[dict[str, Any]] = []
    earlier_than_first: list[int] = []  # seen before any stored version: an older snapshot imported later
    changed: list[int] = []  # existing datasets that get a new version from this run
    replaced: dict[int, int] = {}  # dataset_id -> id of the version this run supersedes at its as_of
    for sid, i in picked.items():
        dataset_id, old_version, old_hash = existing[sid]
        rec = records[i]
        h = _hash_of(rec, raws, i)
        if sid not in is_new and old_version is None:
            earlier_than_first.append(dataset_id)
        if old_version is not None and h == old_hash:
            continue
        if sid not in is_new:
            changed.append(dataset_id)
        if old_version is not None:
            replaced[dataset_id] = old_version
        record, raw, base = ready.payloads[i] if i in ready.payloads else _payload(rec, raws[i], ready.packer)
        versions.append({"dataset_id": dataset_id, "run_id": run_id, "as_of": as_of, "raw_hash": h,
                         "data_modified": utc(rec.data_modified), "record": record, "raw": raw,
                         "base_version": base})
    if versions:  # the frames name the dictionaries this run trained (none when another writer stored it all)
        compact.save_dictionaries(conn, portal_key, ready.dictionaries)
    _bulk_insert(conn, versions_t, versions)
    carried = _keep_later_runs_right(conn, portal_key, run_id, as_of, replaced) if replaced else 0
    if earlier_than_first:
        conn.execute(sa.update(datasets_t).where(datasets_t.c.id == sa.bindparam("did"))
                     .values(first_run_id=run_id), [{"did": d} for d in earlier_than_first])
    _touch_last_version(conn, run_id, changed)

    items = len(picked)
    status, reason, removed, notes = _judge(conn, portal_key, run_id, as_of, items, picked, list(stats.notes))
    repeats = (stats.repeats or 0) + dropped
    conn.execute(_CLOSE_RUN, {
        "run_id": run_id, "status": status, "finished_at": finished_at, "items": items,
        "reported_total": stats.reported_total, "repeats": repeats, "pages": stats.pages,
        "new_versions": len(versions) + carried, "removed": removed, "suspect_reason": reason,
        "notes": notes or None,
        **compact.encode_members(conn, portal_key, run_id, picked, may_be_base=status == crawls.COMPLETE),
    })
    save_schema_check(conn, run_id, stats.schema_check)
    _rejudge_later_runs(conn, portal_key, as_of, run_id)
    return RunSummary(run_id=run_id, portal_key=portal_key, status=status, items=items,
                      new_versions=len(versions) + carried, repeats=repeats, removed=removed or 0,
                      suspect_reason=reason)


def _judge(conn: Connection, portal_key: str, run_id: int, as_of: datetime, items: int, members: Iterable[str],
           notes: list[str]) -> tuple[str, str | None, int | None, list[str]]:
    """(status, reason, removed, notes) of a run against the portal's runs dated before it (storage/crawls.py).

    removed: how many datasets this complete run confirms removed (two consecutive complete runs lack them);
    None for a run that is not complete, or before three complete runs (nothing can be confirmed yet).
    """
    params = {"portal_key": portal_key, "as_of": as_of, "run_id": run_id}
    last = conn.execute(_LAST_COMPLETE, params).one_or_none()
    earlier = [crawls.PastRun(r.id, r.as_of, r.items or 0, r.status) for r in (
        [last, *conn.execute(_CRAWLED_SINCE, {**params, "since": last.as_of})] if last is not None else [])]
    verdict = crawls.judge(items, as_of, earlier)
    removed = None
    if verdict.status == crawls.COMPLETE:
        ids = conn.execute(_COMPLETE_MEMBERS, params).scalars().all()
        known = compact.members_of(conn, ids)
        before = [known.get(i, []) for i in reversed(ids)]
        gone = crawls.confirmed_removals([*before, members])
        removed = None if gone is None else len(gone)
    return verdict.status, verdict.reason, removed, [*notes, verdict.note] if verdict.note else notes


_LATER_RUNS = (sa.select(runs_t.c.id, runs_t.c.as_of, runs_t.c["items"], runs_t.c.status,
                         runs_t.c.suspect_reason, runs_t.c.removed, runs_t.c.notes)
               .where(runs_t.c.portal_key == _p("portal_key"), runs_t.c.status.in_(crawls.CRAWLED),
                      runs_t.c.as_of > _p("as_of"), runs_t.c.id != _p("run_id"))
               .order_by(runs_t.c.as_of, runs_t.c.id))


def _rejudge_later_runs(conn: Connection, portal_key: str, as_of: datetime, run_id: int) -> int:
    """After an out-of-order import, judge the runs dated after it again, oldest first, so every run's status
    is what it would be had the snapshots arrived in date order (a newest run: one empty query). Returns how
    many runs changed."""
    changed = 0
    later = conn.execute(_LATER_RUNS, {"portal_key": portal_key, "as_of": as_of, "run_id": run_id}).all()
    for run in later:
        kept = [n for n in run.notes or () if not n.startswith(crawls.CONFIRMED_NOTE)]
        members = compact.members_of(conn, [run.id]).get(run.id, [])
        status, reason, removed, notes = _judge(conn, portal_key, run.id, run.as_of, run.items or 0, members, kept)
        if (status, reason, removed, notes) != (run.status, run.suspect_reason, run.removed, list(run.notes or ())):
            conn.execute(sa.update(runs_t).where(runs_t.c.id == run.id).values(
                status=status, suspect_reason=reason, removed=removed, notes=notes or None))
            changed += 1
    return changed


_BEFORE_ANY_RUN = datetime(1, 1, 2, tzinfo=UTC)


def rejudge_runs(engine: Engine, portal_key: str) -> int:
    """Judge every crawled run of a portal again, oldest first, by the rules of storage/crawls.py (runs stored
    under an older rule, e.g. before migration 0002); one transaction. Returns how many runs changed."""
    with write_tx(engine) as conn:
        return _rejudge_later_runs(conn, portal_key, _BEFORE_ANY_RUN, -1)


def _payload(rec: DatasetRecord, raw: bytes, packer: codec.Codec) -> Payload:
    # `raws` may be lazy (pipeline.harvest): only the items that get a version are read.
    return packer.pack(codec.RECORD, _record_json(rec)), packer.pack(codec.RAW, raw), None


def _record_json(rec: DatasetRecord) -> bytes:
    # orjson serializes the (slots) dataclass itself: the same bytes as orjson.dumps(rec.as_dict()), without
    # building the dict (~40 us a record on the benchmark machine).
    return orjson.dumps(rec)


def _bulk_insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL, executemany on SQLite.

    COPY streams the rows in one round trip; SQLAlchemy's batched multi-row INSERTs took 1.2 s for the
    11,928 versions (42 MB) of the benchmark, COPY a fraction of that. COPY bypasses SQLAlchemy's type
    processing, so datetimes must already be aware UTC (they are: `utc()` on every path in).
    """
    if not rows:
        return
    if is_sqlite(conn):
        _sqlite_executemany(conn, table, rows)
        return
    cols = list(rows[0])
    dbapi = conn.connection.driver_connection
    assert dbapi is not None  # an open Connection has its driver connection
    with dbapi.cursor() as cur:  # the same connection, so the same transaction
        with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in cols])


_INSERT_SQL: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...], tuple[Any, ...]]] = {}


def _sqlite_executemany(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """One driver-level executemany of a pre-compiled INSERT, values through each column's bind processor.

    `conn.execute(insert, rows)` runs SQLAlchemy's per-row parameter machinery (~50 us a row here, most of a
    first harvest's storage time); the SQL is compiled once per (table, columns) instead and only the
    columns' own type processing (UTC datetimes to text) is applied, memoized on identical values (a run's
    `as_of` is the same object on every row).
    """
    key = (table.name, tuple(rows[0]))
    compiled = _INSERT_SQL.get(key)
    if compiled is None:
        stmt = sa.insert(table).compile(dialect=conn.dialect, column_keys=list(key[1]))
        order = tuple(stmt.positiontup or ())
        procs = tuple(table.c[c].type._cached_bind_processor(conn.dialect) for c in order)
        compiled = _INSERT_SQL[key] = (str(stmt), order, procs)
    sql, order, procs = compiled
    columns = []
    for name, proc in zip(order, procs, strict=True):
        values = [row[name] for row in rows]
        if proc is not None:
            last_in: Any = object()
            last_out: Any = None
            out = []
            for v in values:
                if v is not last_in:
                    last_in, last_out = v, (None if v is None else proc(v))
                out.append(last_out)
            values = out
        columns.append(values)
    conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def _compress_all(raws: list[bytes], packer: codec.Codec) -> list[bytes]:
    """The raw items' zstd frames (on a few threads: zstd releases the GIL), with the portal's raw dictionary."""
    return packer.pack_many(codec.RAW, raws)


def _keep_later_runs_right(conn: Connection, portal_key: str, run_id: int, as_of: datetime,
                           replaced: dict[int, int]) -> int:
    """After an out-of-order import, re-anchor the old content for the later runs that saw it.

    Run R at T writes a new version of a dataset whose version valid at T (V_prev) is older. Runs dated
    after T and before the dataset's next version (T2) stored nothing for it because they saw V_prev;
    without help they would now resolve to R's version. A copy of V_prev is inserted at the first such
    run that saw the dataset, so every run keeps the content it saw. A no-op for ordinary (newest) runs.
    Returns the number of rows inserted.
    """
    later = conn.execute(
        sa.select(runs_t.c.id, runs_t.c.as_of)
        .where(runs_t.c.portal_key == portal_key, runs_t.c.status.in_(("ok", "suspect")),
               runs_t.c.as_of > as_of, runs_t.c.id != run_id)
        .order_by(runs_t.c.as_of, runs_t.c.id)).all()
    if not later:
        return 0
    v, d = versions_t, datasets_t
    next_at = dict(conn.execute(
        sa.select(v.c.dataset_id, sa.func.min(v.c.as_of)).where(v.c.dataset_id.in_(list(replaced)), v.c.as_of > as_of)
        .group_by(v.c.dataset_id)).all())
    source_ids = dict(conn.execute(sa.select(d.c.id, d.c.source_id).where(d.c.id.in_(list(replaced)))).all())
    known = compact.members_of(conn, [r.id for r in later])
    members = [(r.id, r.as_of, set(known.get(r.id, ()))) for r in later]
    copies = []
    for dataset_id, old_version in replaced.items():
        until, sid = next_at.get(dataset_id), source_ids[dataset_id]
        for rid, r_as_of, ids in members:
            if until is not None and r_as_of >= until:
                break
            if sid in ids:
                copies.append({"vid": old_version, "rid": rid, "at": r_as_of})
                break
    if copies:
        cols = [v.c.dataset_id, v.c.run_id, v.c.as_of, v.c.raw_hash, v.c.data_modified, v.c.record, v.c.raw,
                v.c.base_version]
        src = sa.select(v.c.dataset_id, sa.bindparam("rid", type_=sa.Integer),
                        sa.bindparam("at", type_=v.c.as_of.type), v.c.raw_hash, v.c.data_modified, v.c.record,
                        v.c.raw, v.c.base_version).where(v.c.id == sa.bindparam("vid"))
        conn.execute(sa.insert(v).from_select(cols, src), copies)
    return len(copies)


def _versions_at(conn: Connection, portal_key: str, as_of: datetime) -> dict[str, tuple[int, int | None, str | None]]:
    """{source_id: (dataset_id, id of its version valid at as_of or None, that version's raw_hash)}."""
    # Two plain queries rather than an outer join on the window subquery: SQLite would rescan the
    # materialized subquery for every dataset (seconds at 12k datasets instead of milliseconds). A portal's
    # first harvest has no datasets yet, so no versions either: the window query is skipped.
    ids = conn.execute(_PORTAL_DATASET_IDS, {"portal_key": portal_key}).all()
    if not ids:
        return {}
    valid = {did: (vid, h) for did, vid, h in conn.execute(_VALID_VERSIONS, {"portal_key": portal_key, "as_of": as_of})}
    return {sid: (did, *valid.get(did, (None, None))) for sid, did in ids}


def _touch_last_version(conn: Connection, run_id: int, dataset_ids: list[int]) -> None:
    """Point `last_run_id` at this run for the datasets it wrote a version of, unless a later-dated run did.

    `datasets.last_run_id` is the newest run (by as_of) that stored a version of the dataset: its first
    sighting or its latest change. "Last seen" is not kept per dataset: that would rewrite every dataset
    row on every harvest (12k row updates, ~0.2 s and as many dead tuples on PostgreSQL per run) for
    what the runs' `members` already record. One statement with the ids as one array/JSON parameter.
    """
    if not dataset_ids:
        return
    later_run_already = (
        "(SELECT as_of FROM harvest_runs WHERE id = datasets.last_run_id)"
        " <= (SELECT as_of FROM harvest_runs WHERE id = :run_id)"
    )
    if is_sqlite(conn):
        stmt = sa.text("UPDATE datasets SET last_run_id = :run_id WHERE id IN (SELECT value FROM json_each(:ids))"
                       f" AND {later_run_already}")
        conn.execute(stmt, {"run_id": run_id, "ids": orjson.dumps(dataset_ids).decode()})
    else:
        stmt = sa.text(f"UPDATE datasets SET last_run_id = :run_id WHERE id = ANY(:ids) AND {later_run_already}")
        conn.execute(stmt, {"run_id": run_id, "ids": dataset_ids})


def upsert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE the other columns (same SQL on SQLite and PostgreSQL)."""
    if not rows:
        return
    # The two dialects' Insert share the ON CONFLICT API but no base class that declares it.
    insert: Any
    if is_sqlite(conn):
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    stmt = insert(table)
    others = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=others), rows)


def sync_config(engine: Engine, settings: Settings) -> None:
    """Upsert cities and portals from config (key, name, kind, url); portals no longer configured stay, with
    their history."""
    with write_tx(engine) as conn:
        upsert(conn, cities_t, [{"key": c.key, "name": c.name} for c in settings.cities], ["key"])
        upsert(conn, portals_t, [{"key": p.key, "city_key": p.city_key, "kind": p.kind, "url": p.url}
                                 for p in settings.portals], ["key"])


# ---------------------------------------------------------------- scores and manual evidence

def _num(x: Any) -> float | None:
    """None for missing/NaN, else float (NaN is not portable as a SQL value)."""
    if x is None:
        return None
    x = float(x)
    return None if x != x else x


def save_scores(engine: Engine, city_key: str, as_of: datetime, scores: Mapping[str, ScoreLike],
                criteria: pd.DataFrame, *, criterion_of: Mapping[str, str], flag: str | None = None) -> None:
    """Replace the scores of (city_key, as_of): one row per indicator and one roll-up row per criterion.

    `criteria` is `indicators.criteria.rollup(...)` (criterion, value, stage, …). `criterion_of` maps an
    indicator key to its criterion (the pipeline passes `indicators.CRITERION_OF`: storage does not import
    the indicators). `flag` ("partial" or "empty", `crawls.score_flag`) marks scores of a crawl that fell
    short: kept, but not the city's state. No scores (an empty mapping and rollup) just deletes those of
    (city_key, as_of).
    """
    if flag is not None and flag not in SCORE_FLAGS:
        raise ValueError(f"score flag {flag!r} is not one of {SCORE_FLAGS}")
    mapping = dict(criterion_of)
    as_of = utc(as_of)
    rows: list[dict[str, Any]] = []
    for c in criteria.to_dict("records") if len(criteria) else []:
        rows.append({"city_key": city_key, "as_of": as_of, "criterion": str(c["criterion"]), "indicator": "",
                     "value": _num(c.get("value")), "numerator": None, "denominator": None,
                     "stage": c.get("stage"), "failing": None, "evidence_base": None, "flag": flag})
    with write_tx(engine) as conn:
        conn.execute(sa.delete(scores_t).where(scores_t.c.city_key == city_key, scores_t.c.as_of == as_of))
        # Evidence as changes against the indicator's newest base (storage/compact.py): an unchanged scoring
        # stores a few bytes per indicator whatever the catalog size.
        bases = compact.newest_evidence_bases(conn, city_key) if scores else {}
        for key, s in scores.items():
            blob = {"failing": dict(s.failing), "matches": dict(s.matches), "detail": dict(s.detail)}
            rows.append({"city_key": city_key, "as_of": as_of, "criterion": mapping.get(key, ""), "indicator": key,
                         "value": _num(s.value), "numerator": _num(s.numerator), "denominator": _num(s.denominator),
                         "stage": None, "flag": flag,
                         **compact.encode_evidence(conn, city_key, key, blob, bases, may_be_base=flag is None)})
        if rows:
            conn.execute(sa.insert(scores_t), rows)


def _audit(conn: Connection, at: datetime, actor: str, action: str, detail: dict[str, Any]) -> None:
    conn.execute(sa.insert(audit_t), {"at": utc(at), "actor": actor, "action": action,
                                      "detail": orjson.dumps(detail, default=str).decode()})


def add_evidence(engine: Engine, city_key: str, criterion: str, *, url: str | None, date: str | None,
                 note: str | None, actor: str, at: datetime) -> int:
    """Store a manual evidence record a CDO entered; returns its id. Writes an audit_log row in the same transaction."""
    row = {"city_key": city_key, "criterion": criterion, "url": url, "date": None if date is None else str(date),
           "note": note, "actor": actor, "created_at": utc(at)}
    with write_tx(engine) as conn:
        eid = conn.execute(sa.insert(evidence_t).returning(evidence_t.c.id), row).scalar_one()
        fields = {k: row[k] for k in ("city_key", "criterion", "url", "date", "note")}
        _audit(conn, at, actor, "evidence.add", {"id": eid, **fields})
    return eid


def delete_evidence(engine: Engine, evidence_id: int, *, actor: str, at: datetime) -> None:
    """Delete a manual evidence record (LookupError if absent); the audit row keeps what it said."""
    e = evidence_t
    with write_tx(engine) as conn:
        old = conn.execute(sa.select(e.c.id, e.c.city_key, e.c.criterion, e.c.url, e.c.date, e.c.note)
                           .where(e.c.id == evidence_id)).mappings().one_or_none()
        if old is None:
            raise LookupError(f"no evidence record {evidence_id}")
        conn.execute(sa.delete(e).where(e.c.id == evidence_id))
        _audit(conn, at, actor, "evidence.delete", dict(old))
