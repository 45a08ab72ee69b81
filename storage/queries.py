"""Read-only queries for pages, the CLI and the pipeline; every function returns a DataFrame unless said.

The catalog "as of" a run is rebuilt from `members(run)` and, for each member, its latest version whose
`as_of` is at or before the run's `as_of` (versions are ordered by the date they describe, not by when
they were inserted: an import may carry an older snapshot than runs already stored).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import operator
import os
import pickle
import select
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from connectors.base import RECORD_FIELDS, DatasetRecord, SchemaCheck, columns_frame, records_frame
from storage import compact, crawls, snapshots
from storage.db import gc_paused, is_sqlite, utc, write_tx
from storage.models import (
    audit_t,
    cities_t,
    datasets_t,
    evidence_bases_t,
    evidence_t,
    portals_t,
    runs_t,
    scores_t,
    versions_t,
)
from storage.schema_checks import schema_checks
from storage.writes import LAST_STATUS

GOOD = crawls.SHOWN  # runs whose catalog can be shown (complete or partial); only complete runs count for removals
RUN_COLUMNS = ["run_id", "portal_key", "city_key", "source", "as_of", "started_at", "finished_at", "duration_s",
               "status", "items", "reported_total", "repeats", "pages", "new_versions", "removed", "error",
               "suspect_reason", "notes", "complete"]
CATALOG_EXTRA = ["city_key", "first_seen", "data_modified_seen"]
SCORE_COLUMNS = ["city_key", "as_of", "criterion", "indicator", "value", "numerator", "denominator", "stage", "flag"]


@dataclass(frozen=True)
class CatalogRun:
    """What one portal's catalog table was rebuilt from."""

    run: dict[str, Any] | None  # the ok/suspect run's `runs()` row (status "suspect": a short crawl); None before one
    # ids confirmed removed as of this run (storage/crawls.py: absent from two complete runs in a row); None
    # while the portal has fewer than the three complete runs that takes (not known, which is not "none")
    removed: tuple[str, ...] | None
    history_start: datetime | None  # as_of of the portal's first ok/suspect run (up to as_of)


@dataclass(frozen=True, eq=False)
class CityHarvest:
    """A city's catalog table and the stored facts behind it, in storage's own types (the pipeline turns them
    into the indicators' PortalFacts; storage does not import indicators)."""

    frame: pd.DataFrame  # the city's portals' catalogs in one table (city_catalog)
    kinds: dict[str, str]  # portal_key -> kind, every configured portal of the city
    runs: pd.DataFrame  # `runs()` columns: every finished run of the city's portals up to as_of, oldest first
    catalog_runs: dict[str, CatalogRun]  # portal_key -> what its rows come from
    # portal_key -> the schema check of its newest ok run (None: that run has no check on record); only
    # portals with an ok run up to as_of
    schema_checks: dict[str, SchemaCheck | None]

    @property
    def history_start(self) -> datetime | None:
        starts = [c.history_start for c in self.catalog_runs.values() if c.history_start is not None]
        return min(starts) if starts else None

    @property
    def removed(self) -> tuple[str, ...] | None:
        """Confirmed removals over the city's portals; None while no portal can confirm any yet."""
        known = [c.removed for c in self.catalog_runs.values() if c.removed is not None]
        return tuple(sorted(sid for r in known for sid in r)) if known else None


# Rebuilt catalogs kept per process: the dashboard asks for the same (portal, latest run) on every page
# view, and a 12k-dataset catalog costs ~0.4 s CPU to rebuild but ~10 ms to copy. Bounded by rows, not
# entries, since portals range from ten datasets to twelve thousand: the 11,928-row benchmark catalog
# measured 27.6 MB (pandas deep memory usage), so 50,000 rows is ~120 MB at most, least recently used out.
CATALOG_CACHE_ROWS = 50_000
_CACHE: OrderedDict[tuple[Any, ...], tuple[pd.DataFrame, CatalogRun]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


# ---------------------------------------------------------------- small helpers

def _frame(rows: Sequence[Any], columns: list[str], times: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.DataFrame([dict(r) for r in rows], columns=columns)
    for c in times:
        df[c] = pd.to_datetime(df[c], utc=True)
    return df


def _run_select() -> sa.Select:
    r = runs_t
    return sa.select(r.c.id.label("run_id"), r.c.portal_key, portals_t.c.city_key, r.c.source, r.c.as_of,
                     r.c.started_at, r.c.finished_at, r.c.status, r.c["items"], r.c.reported_total, r.c.repeats,
                     r.c.pages, r.c.new_versions, r.c.removed, r.c.error, r.c.suspect_reason, r.c.notes,
                     ).join(portals_t, portals_t.c.key == r.c.portal_key)


def _run_dict(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["duration_s"] = ((d["finished_at"] - d["started_at"]).total_seconds()
                       if d["finished_at"] and d["started_at"] else None)
    d["complete"] = d["status"] == crawls.COMPLETE  # the crawl is the portal's catalog (storage/crawls.py)
    return {k: d.get(k) for k in RUN_COLUMNS}


# ---------------------------------------------------------------- config and runs

def cities(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cities_t.c.key, cities_t.c.name).order_by(cities_t.c.key)).mappings().all()
    return _frame(rows, ["key", "name"])


def portals(engine: Engine, city_key: str | None = None) -> pd.DataFrame:
    q = sa.select(portals_t.c.key, portals_t.c.city_key, portals_t.c.kind, portals_t.c.url).order_by(portals_t.c.key)
    if city_key is not None:
        q = q.where(portals_t.c.city_key == city_key)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return _frame(rows, ["key", "city_key", "kind", "url"])


def runs(engine: Engine, portal_key: str | None = None, city_key: str | None = None,
         limit: int | None = None) -> pd.DataFrame:
    """Harvest runs, newest first (by start time, then id)."""
    q = _run_select().order_by(runs_t.c.started_at.desc(), runs_t.c.id.desc())
    if portal_key is not None:
        q = q.where(runs_t.c.portal_key == portal_key)
    if city_key is not None:
        q = q.where(portals_t.c.city_key == city_key)
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        rows = [_run_dict(r) for r in conn.execute(q)]
    return _frame(rows, RUN_COLUMNS, ("as_of", "started_at", "finished_at"))




def last_status(engine: Engine, portal_key: str) -> str | None:
    """Status of the portal's newest run (the order of `runs`), None before its first run: one scalar query."""
    with engine.connect() as conn:
        return conn.execute(LAST_STATUS, {"portal_key": portal_key}).scalar()


def run_dates(engine: Engine, city_key: str) -> list[datetime]:
    """Sorted distinct `as_of` of the city's crawled (complete, partial or empty) runs (for `score --all`)."""
    q = (sa.select(runs_t.c.as_of).distinct().join(portals_t, portals_t.c.key == runs_t.c.portal_key)
         .where(portals_t.c.city_key == city_key, runs_t.c.status.in_(crawls.CRAWLED)).order_by(runs_t.c.as_of))
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def latest_crawls(engine: Engine, city_key: str, as_of: datetime | None = None) -> pd.DataFrame:
    """The newest crawled (complete, partial or empty) run of each of the city's portals at/before `as_of`, as
    `runs` rows by portal key: what a score at `as_of` stands on (`crawls.score_flag` of their statuses)."""
    r = runs_t
    newest = sa.func.row_number().over(partition_by=r.c.portal_key, order_by=(r.c.as_of.desc(), r.c.id.desc()))
    q = _run_select().add_columns(newest.label("rn")).where(portals_t.c.city_key == city_key,
                                                            r.c.status.in_(crawls.CRAWLED))
    if as_of is not None:
        q = q.where(r.c.as_of <= utc(as_of))
    sub = q.subquery()
    with engine.connect() as conn:
        rows = [_run_dict(row) for row in conn.execute(sa.select(sub).where(sub.c.rn == 1)
                                                       .order_by(sub.c.portal_key))]
    return _frame(rows, RUN_COLUMNS, ("as_of", "started_at", "finished_at"))


def _complete_runs(portal_key: str, as_of: datetime | None, limit: int) -> sa.Select:
    q = (sa.select(runs_t.c.id).where(runs_t.c.portal_key == portal_key, runs_t.c.status == crawls.COMPLETE)
         .order_by(runs_t.c.as_of.desc(), runs_t.c.id.desc()).limit(limit))
    return q if as_of is None else q.where(runs_t.c.as_of <= utc(as_of))


def _removed(conn: Connection, portal_key: str, as_of: datetime | None) -> list[str] | None:
    newest_first = conn.execute(_complete_runs(portal_key, as_of, 3)).scalars().all()
    known = compact.members_of(conn, newest_first)
    gone = crawls.confirmed_removals([known.get(i, []) for i in reversed(newest_first)])
    return None if gone is None else sorted(gone)


def removed_ids(engine: Engine, portal_key: str, as_of: datetime | None = None) -> list[str] | None:
    """Ids the portal removed as of its last complete run at/before `as_of`: in the complete run before the
    previous one, absent from the previous and from the last (`crawls.confirmed_removals`). None before three
    complete runs: no removal can be confirmed yet, which is not the same as none."""
    with engine.connect() as conn:
        return _removed(conn, portal_key, as_of)


# The newest runs whose finishing moves the live marker. Counting finished runs over the whole table read
# every row's page on SQLite (the compressed `members` blob sits in the row): 35-55 ms at 20,000 runs with
# 20 kB blobs, measured; the newest 1,000 by id (an index walk) took 1.0 ms. Only a run older than the newest
# 1,000 (a year-old run closed as orphaned: storage/orphans.py) finishes without moving the marker.
RUN_MARKER_WINDOW = 1_000
_recent_runs = sa.select(runs_t.c.finished_at).order_by(runs_t.c.id.desc()).limit(RUN_MARKER_WINDOW).subquery()
_MARKER = sa.select(
    sa.select(sa.func.max(runs_t.c.id)).scalar_subquery(),
    sa.select(sa.func.count(_recent_runs.c.finished_at)).scalar_subquery(),
    sa.select(sa.func.max(scores_t.c.id)).scalar_subquery(),
)


def latest_run_marker(engine: Engine) -> tuple[tuple[int, int], int]:
    """((max run id, finished runs among the newest RUN_MARKER_WINDOW), max scores id): one query, for the
    dashboard's live polling.

    It moves when a run starts (id), when a run finishes or fails (a run leaves "running" once and
    `finished_at` is set on every way out), and when scores are saved. For one max id the window is fixed
    and its count only grows, so an earlier value never comes back. Still a 2-tuple, because
    layouts/_components.py unpacks `run_id, score_id = marker()`.
    """
    with engine.connect() as conn:
        run_id, finished, score_id = conn.execute(_MARKER).one()
    return ((run_id or 0, finished or 0), score_id or 0)


# ---------------------------------------------------------------- catalog

def _empty_catalog() -> pd.DataFrame:
    df = records_frame([])
    df["city_key"] = pd.Series(dtype=object)
    df["first_seen"] = pd.Series(dtype="datetime64[ns, UTC]")
    df["data_modified_seen"] = pd.Series(dtype=object)
    return df


def _catalog_run(conn: Connection, portal_key: str, as_of: datetime | None) -> Any:
    q = (_run_select()
         .where(runs_t.c.portal_key == portal_key, runs_t.c.status.in_(GOOD))
         .order_by(runs_t.c.as_of.desc(), runs_t.c.id.desc()).limit(1))
    if as_of is not None:
        q = q.where(runs_t.c.as_of <= utc(as_of))
    return conn.execute(q).one_or_none()


# Record texts fetched and decoded at a time. A chunk's dicts are dropped once picked, but the values kept are
# allocated among them and pin the heap they leave: on the 30k scale portal, chunks of 5,000 raised the peak by
# 88 MB, of 1,000 by 46 MB, at the same CPU time.
RECORD_CHUNK = 1_000
_TUPLE_FIELDS = ("keywords", "formats")
_PICK = operator.itemgetter(*RECORD_FIELDS)
# Text fields whose values repeat across a catalog (a department, a licence, a theme, a frequency, boilerplate
# descriptions): JSON decoding makes a new string for every row (50 bytes of overhead each before its text, in
# some 20 fields), so equal values are held once. Identifiers are one per dataset: nothing to share.
_IDENTIFIERS = frozenset({"source_id", "landing_url", "api_url", "raw_hash"})
_SHARED_TEXT = frozenset(f.name for f in dataclasses.fields(DatasetRecord)
                         if f.type in ("str", "str | None") and f.name not in _IDENTIFIERS)


class _RecordColumns:
    """The catalog table's columns built from stored record JSON a chunk at a time (`extend`), then made a frame
    with the dtypes of `records_frame` (`connectors.base.columns_frame`, the one definition of the table)."""

    def __init__(self) -> None:
        self.values: dict[str, list[Any]] = {name: [] for name in RECORD_FIELDS}
        self.places: list[int] = []
        # Equal values held once (_SHARED_TEXT, tuple fields): keyword and format lists repeat across a catalog too.
        self.shared: dict[Any, Any] = {}
        # Schemas by their JSON text: a schema of 20 (name, type) pairs is ~3 KB of Python objects a row, and
        # its text is found in the table without building those tuples first (2.5x faster on the scale portal).
        self.schemas: dict[bytes, tuple[tuple[str, str], ...]] = {}

    def extend(self, rows: Sequence[Any]) -> None:
        """Rows of (place in the table, record JSON)."""
        self.places.extend(place for place, _ in rows)
        dicts = [orjson.loads(text) for _, text in rows]
        try:  # every field in every record (as DatasetRecord.as_dict writes them): one C-level pick and transpose
            picked = zip(*map(_PICK, dicts), strict=True)
        except KeyError:  # a record stored by an older normalization lacks a field: None, as records_frame has it
            picked = zip(*([d.get(name) for name in RECORD_FIELDS] for d in dicts), strict=True)
        one = self.shared.setdefault
        for (name, column), values in zip(self.values.items(), picked, strict=True):
            if name in _SHARED_TEXT:
                column.extend([one(v, v) for v in values])
            elif name in _TUPLE_FIELDS:  # JSON lists back to the record's tuples (() when missing, as DatasetRecord)
                column.extend([one(t, t) for t in (tuple(v) if v else () for v in values)])
            elif name == "columns":
                column.extend([self._schema(v) if v else () for v in values])
            else:  # datetimes stay ISO text: columns_frame parses each column at once
                column.extend(values)

    def _schema(self, pairs: list[list[str]]) -> tuple[tuple[str, str], ...]:
        key = orjson.dumps(pairs)
        found = self.schemas.get(key)
        if found is None:
            found = self.schemas[key] = tuple(map(tuple, pairs))  # type: ignore[arg-type]
        return found

    def ordered(self) -> dict[str, list[Any]]:
        """{field: its values in table order}."""
        places = np.asarray(self.places, dtype=np.int64)
        if len(places) and (np.diff(places) < 0).any():  # came out of order: put each column in place
            order = np.argsort(places, kind="stable").tolist()
            self.values = {name: [column[i] for i in order] for name, column in self.values.items()}
            self.places.sort()
        return self.values

    def frame(self) -> pd.DataFrame:
        return columns_frame(self.ordered())


class DecodedVersions:
    """Records decoded for one catalog, kept for the next one a caller reads: `score --all` reads a city's
    catalog at each of its dates, and from one week to the next most datasets keep their version. Given to
    `city_harvest(..., decoded=...)`, a version's record is decoded once for all the dates it stands in (its
    values shared between them); the versions a catalog did not use are then dropped, so it holds about one
    catalog's rows. One per reader: not shared between threads."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[Any, ...]] = {}  # version id -> its values in RECORD_FIELDS order
        self.used: set[int] = set()

    def columns(self, ids: list[int], decode: Callable[[list[int]], dict[str, list[Any]]]) -> dict[str, list[Any]]:
        """{field: values} of the versions `ids` in that order; `decode(ids)` gives those not known yet."""
        missing = [vid for vid in dict.fromkeys(ids) if vid not in self.rows]
        if missing:
            self.rows.update(zip(missing, zip(*decode(missing).values(), strict=True), strict=True))
        self.used.update(ids)
        if not ids:
            return {name: [] for name in RECORD_FIELDS}
        return {name: list(values) for name, values in
                zip(RECORD_FIELDS, zip(*[self.rows[vid] for vid in ids], strict=True), strict=True)}

    def release_unused(self) -> None:
        """Drop the versions not used since the last call (the catalog just read used the others)."""
        for vid in self.rows.keys() - self.used:
            del self.rows[vid]
        self.used = set()


def _catalog(conn: Connection, portal_key: str, as_of: datetime | None, keep: bool = True,
             decoded: DecodedVersions | None = None, jobs: int = 1,
             snapshot: bool = False) -> tuple[pd.DataFrame, CatalogRun]:
    run = _catalog_run(conn, portal_key, as_of)
    first_q = sa.select(sa.func.min(runs_t.c.as_of)).where(runs_t.c.portal_key == portal_key,
                                                            runs_t.c.status.in_(GOOD))
    if as_of is not None:
        first_q = first_q.where(runs_t.c.as_of <= utc(as_of))
    history_start = conn.execute(first_q).scalar()
    if run is None:
        return _empty_catalog(), CatalogRun(run=None, removed=None, history_start=history_start)
    # What could change this run's catalog afterwards: more good runs of the portal (removed, history
    # start) and more versions (an older snapshot imported later). Both are in the key, so a cached
    # frame is never stale; the lookups are two index-only aggregates.
    # Which runs are complete changes the attrs (removed, run status) when runs are judged again: the sum of
    # their ids is in the key too.
    complete_ids = sa.func.sum(sa.case((runs_t.c.status == crawls.COMPLETE, runs_t.c.id), else_=0))
    good = conn.execute(sa.select(sa.func.count(), sa.func.max(runs_t.c.id), complete_ids).where(
        runs_t.c.portal_key == portal_key, runs_t.c.status.in_(GOOD))).one()
    newest_version = conn.execute(sa.select(sa.func.max(versions_t.c.id))).scalar()
    key = (conn.engine.url.render_as_string(hide_password=False), portal_key, run.run_id, tuple(good),
           newest_version)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
    if hit is not None:
        return hit[0].copy(), hit[1]
    df, info = _build_catalog(conn, portal_key, run, history_start, decoded, jobs, snapshot)
    if not keep or len(df) > CATALOG_CACHE_ROWS:  # not kept: the caller may have the one copy
        return df, info
    with _CACHE_LOCK:
        _CACHE[key] = (df, info)
        while sum(len(f) for f, _ in _CACHE.values()) > CATALOG_CACHE_ROWS:
            _CACHE.popitem(last=False)
    return df.copy(), info


def forget(url: str) -> None:
    """Drop cached catalogs of a database (called by `dispose`)."""
    with _CACHE_LOCK:
        for key in [k for k in _CACHE if k[0] == url]:
            del _CACHE[key]


def _stored_time(value: Any, known: dict[Any, datetime]) -> datetime:
    """A UTCDateTime column's value as the driver returned it (SQLite: naive UTC text; PostgreSQL: an aware
    datetime) made what the column type would have given: an aware UTC datetime (memoized in `known`)."""
    t = known.get(value)
    if t is None:
        t = datetime.fromisoformat(value) if isinstance(value, str) else value
        t = known[value] = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t


def _build_catalog(conn: Connection, portal_key: str, run: Any, history_start: datetime | None,
                   decoded: DecodedVersions | None = None, jobs: int = 1,
                   snapshot: bool = False) -> tuple[pd.DataFrame, CatalogRun]:
    frames = list(_catalog_chunks(conn, portal_key, run, None, decoded, jobs, snapshot))
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    # Removals stand as of the last complete run at/before this one (a partial crawl confirms none).
    removed = _removed(conn, portal_key, run.as_of)
    return df, CatalogRun(run=_run_dict(run), removed=None if removed is None else tuple(removed),
                          history_start=history_start)


def _catalog_chunks(conn: Connection, portal_key: str, run: Any, rows: int | None,
                    decoded: DecodedVersions | None = None, jobs: int = 1,
                    snapshot: bool = False) -> Iterator[pd.DataFrame]:
    """The run's catalog table in frames of at most `rows` rows (all in one when None), in source_id order.

    Only one chunk's records are decoded at a time: what a reader that keeps a few columns of each chunk
    holds at its peak is one chunk, not the whole catalog (a 300,000-dataset catalog decodes to gigabytes).
    `snapshot` (whole tables only): rows are taken from the portal's snapshot where it holds their version, and
    the snapshot is replaced when the table differs from it (`_catalog_from_snapshot`).
    """
    members = _members(conn, run)
    if rows is None and decoded is None:
        if snapshot and len(members) >= SNAPSHOT_MIN_RECORDS:
            yield _catalog_from_snapshot(conn, portal_key, run, members, jobs)
        else:
            yield _whole_catalog(conn, portal_key, run, members, jobs)[0]
        return
    versions = _latest_versions(conn, portal_key, run, set(members))
    step = rows or max(1, len(versions.source_ids))
    for start in range(0, max(1, len(versions.source_ids)), step):
        yield _catalog_frame(conn, portal_key, run, versions.rows(start, start + step), decoded)


# Catalogs of fewer datasets are decoded afresh, without a snapshot: ~0.6 s of CPU at 10,000 (the 30k portal's
# reading measured ~2 s), less than the snapshot's write and not worth a blob per small portal.
SNAPSHOT_MIN_RECORDS = 10_000


def _whole_catalog(conn: Connection, portal_key: str, run: Any, members: list[str],
                   jobs: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The run's catalog table and each row's version id, in `jobs` processes when it is large enough."""
    parts = min(jobs, len(members) // FORK_MIN_RECORDS)
    if parts > 1 and hasattr(os, "fork"):
        return _catalog_in_parts(conn, portal_key, run, members, parts)
    return _catalog_part(conn, portal_key, run, members)


def _catalog_from_snapshot(conn: Connection, portal_key: str, run: Any, members: list[str],
                           jobs: int) -> pd.DataFrame:
    """The run's catalog table, its records taken from the portal's snapshot (storage/snapshots.py) where it holds
    a row's latest version and decoded otherwise; the snapshot is replaced when the table's records differ.

    Which rows and versions make the catalog, first_seen and data_modified_seen come from the versions pass as
    always: only the decoded records are reused. A rescoring of an unchanged 300,000-dataset catalog decoded ~20 s
    of CPU of records; the snapshot decodes in ~0.7 s.

    With `jobs` > 1 and a large catalog, the versions pass (~1 s of CPU at 300,000: SQLite's rows and their Python)
    runs in a forked child while this process decodes the snapshot, and its columns come back pickled (~0.1 s)."""
    child = None
    if jobs > 1 and len(members) >= FORK_MIN_RECORDS and hasattr(os, "fork"):
        child = _forked(functools.partial(_latest_versions_fresh, conn.engine, portal_key, run, members))
    try:
        kept = snapshots.load(conn, portal_key)
        usable = kept is not None and len(kept[0]) > 0
        versions = child.result() if child is not None and usable else None
    finally:
        if child is not None:  # reaped (killed when unused) before the whole catalog is read below
            child.close()
    if kept is None or not usable:
        return _kept(conn, portal_key, *_whole_catalog(conn, portal_key, run, members, jobs))
    if versions is None:
        versions = _latest_versions(conn, portal_key, run, set(members))
    table, kept_ids = kept
    ids = versions.version_ids
    at = pd.Index(kept_ids).get_indexer(ids)
    new = at < 0
    if min(jobs, int(new.sum()) // FORK_MIN_RECORDS) > 1 and hasattr(os, "fork"):  # mostly new: decode on every core
        return _kept(conn, portal_key, *_whole_catalog(conn, portal_key, run, members, jobs))
    with gc_paused():
        fresh = _records(conn, portal_key, ids[new].tolist()) if new.any() else None
        records = reused(table, at, fresh)
        if records is None:  # the new rows' types do not fit the snapshot's columns: built whole, as before
            return _kept(conn, portal_key, *_whole_catalog(conn, portal_key, run, members, jobs))
        if new.any() or len(at) != len(kept_ids) or (at != np.arange(len(at))).any():
            _store_snapshot(conn, portal_key, records, ids)
        return _with_history(records, run, versions)


def reused(table: pd.DataFrame, at: np.ndarray, fresh: pd.DataFrame | None) -> pd.DataFrame | None:
    """Rows `at` of `table`, where -1 the next row of `fresh` (the newly decoded records, in order) (pure).

    The result has the dtypes a table built from its records at once would have: a column of the new rows that is
    all missing takes the snapshot's type; one of another type (text where the snapshot had only None, ...) gives
    None (build it whole); a text column left with no value is None throughout, as a fresh build infers it."""
    new = at < 0
    if fresh is not None and len(fresh):
        fresh = fresh.copy()
        for name in fresh.columns:
            if fresh[name].dtype != table[name].dtype:
                if not fresh[name].isna().all():
                    return None
                fresh[name] = fresh[name].astype(table[name].dtype)
        at = at.copy()
        at[new] = len(table) + np.arange(int(new.sum()))
        table = pd.concat([table, fresh], ignore_index=True)
    elif new.any():
        raise ValueError("rows missing from the snapshot and no fresh records for them")
    out = table.take(at).reset_index(drop=True)
    for name in out.columns:
        if out[name].dtype == "str" and len(out) and out[name].isna().all():
            out[name] = pd.Series([None] * len(out), dtype=object)
    return out


def _kept(conn: Connection, portal_key: str, frame: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    if len(frame):
        _store_snapshot(conn, portal_key, frame[list(RECORD_FIELDS)], ids)
    return frame


def _store_snapshot(conn: Connection, portal_key: str, records: pd.DataFrame, ids: np.ndarray) -> None:
    """Replace the portal's snapshot in a write transaction of its own: a cache, so a write that cannot be made
    (the writers' lock held past its timeout, a read-only database, on PostgreSQL another worker scoring the same
    portal that stored its snapshot first) is logged and the table returned anyway."""
    try:
        with write_tx(conn.engine) as w:
            snapshots.store(w, portal_key, records, ids)
    except (TimeoutError, sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as exc:
        log.warning("catalog snapshot of %s not stored (%s): the next scoring decodes its records again",
                    portal_key, exc)


# A catalog part built in a forked process (`jobs`) has at least this many datasets: below it the fork and the
# transfer of the part's table back (pickle) cost more than they save.
FORK_MIN_RECORDS = 25_000
FORK_RESULT_S = 300.0  # the longest the parent waits for a forked child's part (its work takes ~1 s at 300,000)


def _catalog_in_parts(conn: Connection, portal_key: str, run: Any, members: list[str],
                      parts: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The run's catalog table built in `parts` processes: the sorted `members` cut in `parts` runs of ids, the
    first built here while forked children build the others (each its own pass over versions, decoding and
    table) and send their tables back; concatenated in order, the table one process builds (tested).

    Building the table is CPU work that holds the GIL (orjson making each record's objects, SQLite's rows, the
    per-value picking: ~70% of `maturity score` of a 300,000-dataset catalog), so threads would not share it; a
    fork starts with everything read so far, and reads its part over its own connection. A child that fails
    costs time, not rows: its part is built here (logged). Also returns each row's version id."""
    step = -(-len(members) // parts)
    cuts = [members[i:i + step] for i in range(0, len(members), step)]
    engine = conn.engine
    children: list[_Forked] = []
    try:
        for ids in cuts[1:]:
            children.append(_forked(functools.partial(_catalog_part_fresh, engine, portal_key, run, ids)))
        frames = [_catalog_part(conn, portal_key, run, cuts[0])]
        for ids, child in zip(cuts[1:], children, strict=True):
            theirs = child.result()
            frames.append(_catalog_part(conn, portal_key, run, ids) if theirs is None else theirs)
    finally:
        for child in children:
            child.close()
    return pd.concat([f for f, _ in frames], ignore_index=True), np.concatenate([v for _, v in frames])


def _catalog_part(conn: Connection, portal_key: str, run: Any, ids: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The catalog table of the datasets `ids` and each row's version id."""
    versions = _latest_versions(conn, portal_key, run, set(ids))
    return _catalog_frame(conn, portal_key, run, versions), versions.version_ids


def _catalog_part_fresh(engine: Engine, portal_key: str, run: Any,
                        ids: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """`_catalog_part` in a forked child, over a new connection (the parent's pooled ones stay the parent's)."""
    engine.dispose(close=False)  # SQLAlchemy's recipe after a fork: a fresh pool, the parent's connections untouched
    with engine.connect() as conn:
        return _catalog_part(conn, portal_key, run, ids)


def _latest_versions_fresh(engine: Engine, portal_key: str, run: Any, ids: list[str]) -> Versions:
    """`_latest_versions` in a forked child, over a new connection (as `_catalog_part_fresh`)."""
    engine.dispose(close=False)
    with engine.connect() as conn:
        return _latest_versions(conn, portal_key, run, set(ids))


def _members(conn: Connection, run: Any) -> list[str]:
    """The run's member ids, sorted (stored against a base run: storage/compact.py)."""
    return compact.members_of(conn, [run.run_id]).get(run.run_id, [])


class Versions(NamedTuple):
    """What one pass over the versions of a catalog's datasets up to a run keeps, a column a field, one row a
    dataset in source_id order (stored values, as the driver gives them)."""

    source_ids: list[str]
    version_ids: np.ndarray  # int64: each one's latest version (by as_of, then id)
    first_seen: list[Any]  # as_of of each one's first version
    seen: list[tuple[Any, ...]]  # each one's distinct data_modified values, sorted

    def rows(self, start: int, stop: int) -> Versions:
        return Versions(self.source_ids[start:stop], self.version_ids[start:stop], self.first_seen[start:stop],
                        self.seen[start:stop])


def _latest_versions(conn: Connection, portal_key: str, run: Any, ids: set[str]) -> Versions:
    """One light pass over the versions of `ids` up to the run's date (no JSON): the latest version of each (by
    as_of, then id), its first_seen and its distinct data_modified values."""
    q = versions_query(portal_key, run.as_of)
    if len(ids) <= PAGE_IDS:  # a page of the catalog: ask for its ids (indexed), not every version of the portal
        q = q.where(datasets_t.c.source_id.in_(sorted(ids)))
    with gc_paused():  # a few lists and tuples, none cyclic: the collector's passes were 1.4% of a 300k score
        return latest_of(conn.execute(q).all(), ids)


def versions_query(portal_key: str, as_of: datetime) -> sa.Select:
    """(source_id, version id, as_of, data_modified) of every version of the portal's datasets up to `as_of`: the
    columns of ix_dataset_versions_dataset_as_of_modified, so it reads that index alone (no version row)."""
    v, d = versions_t, datasets_t
    # Times are read as the driver gives them (SQLite: text in one fixed format, so text order is time order)
    # and made datetimes once per distinct value after (`_stored_time`): UTCDateTime's per-row processing was
    # a third of this pass.
    return (sa.select(d.c.source_id, v.c.id, sa.type_coerce(v.c.as_of, sa.String),
                      sa.type_coerce(v.c.data_modified, sa.String)).join(d, d.c.id == v.c.dataset_id)
            .where(d.c.portal_key == portal_key, v.c.as_of <= as_of))


def latest_of(rows: Sequence[Sequence[Any]], ids: set[str]) -> Versions:
    """The `Versions` of the datasets in `ids` from version rows (source_id, version id, as_of, data_modified) in
    any order (pure). A dataset with one version (most of them: a first harvest, a dataset that has not changed) is
    its row, taken in bulk; only those with several are worked out one by one (the pass cost ~0.6 s of Python per
    300,000 rows when every row was). Equal stored values are held once: the columns are held while the catalog's
    records are read."""
    rows = sorted(rows, key=operator.itemgetter(0))  # stable; SQLite gives them in source_id order already
    if rows and not ids.issuperset(r[0] for r in rows):
        rows = [r for r in rows if r[0] in ids]
    if not rows:
        return Versions([], np.zeros(0, dtype=np.int64), [], [])
    sids, vids, as_ofs, dms = (list(c) for c in zip(*rows, strict=True))
    n = len(sids)
    one: dict[Any, Any] = {}
    as_ofs = [one.setdefault(t, t) for t in as_ofs]
    single: dict[Any, tuple[Any]] = {}  # data_modified -> the `seen` of a dataset with that one value
    first = np.ones(n, dtype=bool)  # a dataset's first row
    first[1:] = np.fromiter(map(operator.ne, sids[1:], sids[:-1]), dtype=bool, count=n - 1)
    starts = np.flatnonzero(first)
    if len(starts) == n:  # one version each
        return Versions(sids, np.array(vids, dtype=np.int64), as_ofs,
                        [() if dm is None else single.get(dm) or single.setdefault(dm, (dm,)) for dm in dms])
    latest, first_seen, seen = [], [], []
    for start, stop in zip(starts.tolist(), np.append(starts[1:], n).tolist(), strict=True):
        if stop - start == 1:
            dm = dms[start]
            latest.append(vids[start])
            first_seen.append(as_ofs[start])
            seen.append(() if dm is None else single.get(dm) or single.setdefault(dm, (dm,)))
            continue
        span = range(start, stop)
        latest.append(vids[max(span, key=lambda i: (as_ofs[i], vids[i]))])
        first_seen.append(min(as_ofs[i] for i in span))
        values = tuple(sorted({dms[i] for i in span if dms[i] is not None}))
        seen.append(one.setdefault(values, values))
    return Versions([sids[i] for i in starts.tolist()], np.array(latest, dtype=np.int64), first_seen, seen)


log = logging.getLogger(__name__)

class _Forked:
    """A function run in a forked child process; its pickled result read back over a pipe (`result`)."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd, self.done = pid, fd, False

    def result(self, within_s: float = FORK_RESULT_S) -> Any:
        """The child's return value, or None when it failed or sent nothing within `within_s` (logged). A child
        forked beside other threads (the lease heartbeat, a harvest) can hang on a lock one of them held at the
        fork: the parent then gives up on it and builds the part itself."""
        deadline = time.monotonic() + within_s
        chunks: list[bytes] = []
        try:
            while True:
                ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise TimeoutError(f"no answer in {within_s:g} s")
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            value = pickle.loads(b"".join(chunks))
        except (EOFError, pickle.UnpicklingError, OSError, TimeoutError) as exc:
            value = exc
        self.close()
        if isinstance(value, BaseException):
            log.warning("a forked catalog reader failed (%s): its part is built in the parent", value)
            return None
        return value

    def close(self) -> None:
        """Reap the child (killed when its result was not read: the parent gave up)."""
        if self.done:
            return
        self.done = True
        os.close(self.fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


def _forked(work: Callable[[], Any]) -> _Forked:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send, leave without running the parent's exit handlers or flushing its buffers
        status = 1
        try:
            os.close(read)
            with os.fdopen(write, "wb") as pipe:
                pickle.dump(work(), pipe, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        except BaseException:  # noqa: BLE001 - anything: the parent sees a short pipe and decodes the part itself
            pass
        finally:
            os._exit(status)
    os.close(write)
    return _Forked(pid, read)


def _decode(conn: Connection, portal_key: str, ids: list[int]) -> dict[str, list[Any]]:
    """{field: values} of the records of versions `ids`, in that order."""
    # Only the records needed, fetched by version id in `ids`' order (one array / JSON parameter, not
    # thousands of binds) and decoded a chunk at a time straight into columns: a 300k catalog's record texts
    # and per-record dicts never sit in memory at once (they were ~3 GB of a 4 GB peak).
    # Rows come with their place in `ids` (no ORDER BY: sorting the texts cost a temporary copy of them all),
    # and a version stored against its key version with the key's record frame (storage/compact.py).
    with_key = " LEFT JOIN dataset_versions AS k ON k.id = v.base_version"
    if is_sqlite(conn):
        q = sa.text("SELECT j.key, v.record, k.record FROM json_each(:ids) AS j"
                    " JOIN dataset_versions AS v ON v.id = j.value" + with_key)
        params: dict[str, Any] = {"ids": orjson.dumps(ids).decode()}
    else:
        q = sa.text("SELECT j.n - 1, v.record, k.record FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY"
                    " AS j(id, n) JOIN dataset_versions AS v ON v.id = j.id" + with_key)
        params = {"ids": ids}
    packer = compact.portal_codec(conn, portal_key)  # the portal's dictionaries: record frames name theirs
    columns = _RecordColumns()
    for chunk in conn.execution_options(stream_results=True).execute(q, params).partitions(RECORD_CHUNK):
        columns.extend([(place, compact.version_bytes(packer, blob, key_blob)) for place, blob, key_blob in chunk])
    return columns.ordered()


def _catalog_frame(conn: Connection, portal_key: str, run: Any, versions: Versions,
                   decoded: DecodedVersions | None = None) -> pd.DataFrame:
    """The catalog table of the datasets of `versions` (in that order), from their latest versions (records taken
    from `decoded` where it has them)."""
    with gc_paused():
        return _with_history(_records(conn, portal_key, versions.version_ids.tolist(), decoded), run, versions)


def _records(conn: Connection, portal_key: str, ids: list[int], decoded: DecodedVersions | None = None) -> pd.DataFrame:
    """The RECORD_FIELDS table of the records of versions `ids`, in that order."""
    if decoded is None:
        return columns_frame(_decode(conn, portal_key, ids))
    return columns_frame(decoded.columns(ids, lambda missing: _decode(conn, portal_key, missing)))


def _with_history(df: pd.DataFrame, run: Any, versions: Versions) -> pd.DataFrame:
    """The records of `versions`' datasets (in that order) with the columns their versions' history gives (in
    place)."""
    df["city_key"] = run.city_key
    times: dict[Any, datetime] = {}  # stored value -> aware UTC datetime, converted once per value
    code: dict[Any, int] = {}  # first_seen values are a few run dates: converted once each, then taken
    at = np.array([code.setdefault(t, len(code)) for t in versions.first_seen], dtype=np.intp)
    firsts = pd.to_datetime(pd.Series([_stored_time(t, times) for t in code], dtype=object), utc=True)
    df["first_seen"] = firsts.array.take(at)
    seen: dict[tuple[Any, ...], tuple[datetime, ...]] = {}  # equal tuples converted once
    df["data_modified_seen"] = pd.Series([seen[s] if s in seen else seen.setdefault(
        s, tuple(sorted(_stored_time(t, times) for t in s))) for s in versions.seen], dtype=object)
    return df


PAGE_IDS = 1_000  # catalog_rows reads at most this many datasets' versions by id


def catalog_rows(engine: Engine, city_key: str, start: int, stop: int,
                 as_of: datetime | None = None) -> tuple[pd.DataFrame, int]:
    """Rows [start, stop) of the city's catalog in `city_catalog_chunks` order (portal key, then source_id), and
    how many rows it has: a page read straight from storage (only its records decoded), for a view that shows
    the catalog in that order before its whole table is built. At most PAGE_IDS rows."""
    stop = min(stop, start + PAGE_IDS)
    frames, total = [], 0
    with engine.connect() as conn:
        keys = conn.execute(sa.select(portals_t.c.key).where(portals_t.c.city_key == city_key)
                            .order_by(portals_t.c.key)).scalars().all()
        for key in keys:
            run = _catalog_run(conn, key, as_of)
            if run is None:
                continue
            members = _members(conn, run)
            lo, hi = max(0, start - total), max(0, stop - total)
            total += len(members)
            part = members[lo:hi]
            if part:
                frames.append(_catalog_frame(conn, key, run, _latest_versions(conn, key, run, set(part))))
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty_catalog(), total
    return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), total


def city_catalog_chunks(engine: Engine, city_key: str, as_of: datetime | None = None, *,
                        rows: int = 20_000) -> Iterator[pd.DataFrame]:
    """The city's catalog (`city_catalog`'s rows and columns, portal by portal) in frames of at most `rows` rows.

    For readers that keep a few columns of each row (the dashboard's explorer table): their peak memory is one
    chunk's decoded records, whatever the catalog's size. Nothing is cached here (the reader keeps its result).
    """
    with engine.connect() as conn:
        keys = conn.execute(sa.select(portals_t.c.key).where(portals_t.c.city_key == city_key)
                            .order_by(portals_t.c.key)).scalars().all()
        for key in keys:
            run = _catalog_run(conn, key, as_of)
            if run is not None:
                yield from _catalog_chunks(conn, key, run, rows)


def catalog(engine: Engine, portal_key: str, as_of: datetime | None = None) -> pd.DataFrame:
    """The portal's catalog as of its latest ok/suspect run at/before `as_of` (latest run when None).

    Columns: every RECORD_FIELDS column (as `records_frame`) + city_key, first_seen, data_modified_seen.
    What it was built from (the run, confirmed removals or None, history start) is `catalog_run`.
    """
    with engine.connect() as conn:
        return _catalog(conn, portal_key, as_of)[0]


def catalog_run(engine: Engine, portal_key: str, as_of: datetime | None = None) -> CatalogRun:
    """The run `catalog(engine, portal_key, as_of)` is built from, the ids removed at it and the history start."""
    with engine.connect() as conn:
        return _catalog(conn, portal_key, as_of)[1]


def city_harvest(engine: Engine, city_key: str, as_of: datetime | None = None, *, keep: bool = True,
                 decoded: DecodedVersions | None = None, jobs: int = 1, snapshot: bool = False) -> CityHarvest:
    """The city's catalog (all its portals in one table) with the stored facts behind it, as of `as_of`.

    `keep=False` leaves the tables out of the per-process catalog cache (`score --all` reads each date once:
    50 cities' histories filled it to its bound, ~6.7 KB a row measured, in every worker). `decoded`: records
    already decoded for an earlier date of the city, and kept for the next (`DecodedVersions`). `jobs` > 1:
    large catalogs are built in that many processes, this one and forked children (`_catalog_in_parts`): for a caller
    that owns its process (the `score` command), not one with other threads at work (fork copies none of them,
    nor what they hold). `snapshot`: records are taken from, and kept in, each portal's catalog snapshot
    (`_catalog_from_snapshot`; for the caller that scores a city's latest catalog, not `decoded` readers)."""
    with engine.connect() as conn:
        pts = conn.execute(sa.select(portals_t.c.key, portals_t.c.kind).where(portals_t.c.city_key == city_key)
                           .order_by(portals_t.c.key)).all()
        built = {key: _catalog(conn, key, as_of, keep, decoded, jobs, snapshot) for key, _ in pts}
        if decoded is not None:
            decoded.release_unused()
        # A run still in progress is not history yet (its as_of would stamp scores with a catalog it has not stored).
        history_q = (_run_select().where(portals_t.c.city_key == city_key, runs_t.c.status != "running")
                     .order_by(runs_t.c.as_of, runs_t.c.id))
        if as_of is not None:
            history_q = history_q.where(runs_t.c.as_of <= utc(as_of))
        history = [_run_dict(r) for r in conn.execute(history_q)]
        newest_ok: dict[str, int] = {}
        for r in history:  # oldest first, so the last ok run per portal wins
            if r["status"] == "ok":
                newest_ok[r["portal_key"]] = r["run_id"]
        checks = schema_checks(conn, newest_ok.values())
    frames = [f for f, _ in built.values() if len(f)]
    frame = _empty_catalog() if not frames else frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return CityHarvest(
        frame=frame,
        kinds={str(k): str(kind) for k, kind in pts},
        runs=_frame(history, RUN_COLUMNS, ("as_of", "started_at", "finished_at")),
        catalog_runs={key: info for key, (_, info) in built.items()},
        schema_checks={key: checks.get(run_id) for key, run_id in newest_ok.items()},
    )


def city_schema_checks(engine: Engine, city_key: str, as_of: datetime | None = None) -> dict[str, SchemaCheck | None]:
    """`city_harvest(...).schema_checks` without building the catalogs: {portal_key: the SchemaCheck of its newest
    ok run at/before `as_of`, None when that run has none on record}; portals with an ok run only."""
    q = (sa.select(runs_t.c.portal_key, runs_t.c.id).join(portals_t, portals_t.c.key == runs_t.c.portal_key)
         .where(portals_t.c.city_key == city_key, runs_t.c.status == "ok").order_by(runs_t.c.as_of, runs_t.c.id))
    if as_of is not None:
        q = q.where(runs_t.c.as_of <= utc(as_of))
    with engine.connect() as conn:
        newest = {str(k): int(r) for k, r in conn.execute(q).all()}  # oldest first: the newest ok run wins, as there
        checks = schema_checks(conn, newest.values())
    return {key: checks.get(run_id) for key, run_id in sorted(newest.items())}


def city_catalog(engine: Engine, city_key: str, as_of: datetime | None = None) -> pd.DataFrame:
    """All the city's portals' catalogs in one table (`city_harvest(...).frame`)."""
    return city_harvest(engine, city_key, as_of).frame


# ---------------------------------------------------------------- scores, evidence, audit

def _score_select(flagged: bool = False) -> sa.Select:
    """Score rows; those of a crawl that fell short (`flag` set: partial or empty) only when `flagged`.

    This is the one place that keeps flagged scores out of every line, delta, comparison, export and "latest"
    value: a short crawl is not the city's state. `flagged=True` adds them, for drawing them as marked points.
    """
    s = scores_t
    q = sa.select(s.c.city_key, s.c.as_of, s.c.criterion, s.c.indicator, s.c.value, s.c.numerator,
                  s.c.denominator, s.c.stage, s.c.flag)
    return q if flagged else q.where(s.c.flag.is_(None))


def _scores_frame(conn: Connection, q: sa.Select) -> pd.DataFrame:
    q = q.order_by(scores_t.c.city_key, scores_t.c.as_of, scores_t.c.criterion, scores_t.c.indicator)
    df = _frame(conn.execute(q).mappings().all(), SCORE_COLUMNS, ("as_of",))
    for c in ("value", "numerator", "denominator"):
        df[c] = pd.to_numeric(df[c]).astype("float64")
    return df


def scores(engine: Engine, city_key: str | None = None, criterion: str | None = None, *,
           flagged: bool = False) -> pd.DataFrame:
    """Every stored score row of complete crawls (and flagged ones when `flagged`), oldest first; `indicator` == ""
    marks a criterion roll-up row; `flag` is None, or "partial" / "empty" for a flagged row."""
    q = _score_select(flagged)
    if city_key is not None:
        q = q.where(scores_t.c.city_key == city_key)
    if criterion is not None:
        q = q.where(scores_t.c.criterion == criterion)
    with engine.connect() as conn:
        return _scores_frame(conn, q)


def criterion_scores(engine: Engine, city_key: str | None = None, since: datetime | None = None, *,
                     flagged: bool = False) -> pd.DataFrame:
    """The criterion roll-up rows of `scores` only (indicator == ""), at/after `since` when given.

    Same columns and order as `scores` (flagged rows only when `flagged`); about a fifth of its rows (the
    dashboard's overview and compare history need no indicator rows). Per city it is a range of
    ix_scores_city_indicator_as_of.
    """
    q = _score_select(flagged).where(scores_t.c.indicator == "")
    if city_key is not None:
        q = q.where(scores_t.c.city_key == city_key)
    if since is not None:
        q = q.where(scores_t.c.as_of >= utc(since))
    with engine.connect() as conn:
        return _scores_frame(conn, q)


def latest_scores(engine: Engine, city_key: str | None = None) -> pd.DataFrame:
    """Score rows of each city's latest date scored from complete crawls only (flagged scores never are "latest")."""
    newest = sa.select(scores_t.c.city_key.label("ck"), sa.func.max(scores_t.c.as_of).label("mx")) \
        .where(scores_t.c.flag.is_(None)).group_by(scores_t.c.city_key).subquery()
    q = _score_select().join(newest, sa.and_(newest.c.ck == scores_t.c.city_key, newest.c.mx == scores_t.c.as_of))
    if city_key is not None:
        q = q.where(scores_t.c.city_key == city_key)
    with engine.connect() as conn:
        return _scores_frame(conn, q)


def score_evidence(engine: Engine, city_key: str, indicator: str,
                   as_of: datetime | None = None) -> tuple[datetime, dict[str, Any]] | None:
    """(as_of, {"failing": {...}, "matches": {...}, "detail": {...}}) of the latest score at/before `as_of` (of a
    complete crawl: flagged scores are not the city's state)."""
    q = (sa.select(scores_t.c.as_of, scores_t.c.failing, evidence_bases_t.c.evidence.label("base"))
         .outerjoin(evidence_bases_t, evidence_bases_t.c.id == scores_t.c.evidence_base)
         .where(scores_t.c.city_key == city_key, scores_t.c.indicator == indicator, scores_t.c.flag.is_(None))
         .order_by(scores_t.c.as_of.desc()).limit(1))
    if as_of is not None:
        q = q.where(scores_t.c.as_of <= utc(as_of))
    with engine.connect() as conn:
        row = conn.execute(q).one_or_none()
    if row is None:
        return None
    return row.as_of, compact.decode_evidence(row.failing, row.base)


def explain(engine: Engine, city_key: str, indicator: str, as_of: datetime | None = None) -> pd.DataFrame:
    """The datasets failing the latest score of `indicator` (at/before `as_of`), with their title then."""
    cols = ["source_id", "title", "reason", "landing_url"]
    found = score_evidence(engine, city_key, indicator, as_of)
    if found is None or not found[1].get("failing"):
        return pd.DataFrame(columns=cols)
    scored_at, ev = found
    cat = city_catalog(engine, city_key, scored_at)
    by_id = cat.drop_duplicates("source_id").set_index("source_id")[["title", "landing_url"]].to_dict("index")
    rows = [{"source_id": sid, "title": by_id.get(sid, {}).get("title"), "reason": reason,
             "landing_url": by_id.get(sid, {}).get("landing_url")} for sid, reason in ev["failing"].items()]
    return pd.DataFrame(rows, columns=cols)


def evidence(engine: Engine, city_key: str | None = None) -> pd.DataFrame:
    e = evidence_t
    q = sa.select(e.c.id, e.c.city_key, e.c.criterion, e.c.url, e.c.date, e.c.note, e.c.actor, e.c.created_at) \
        .order_by(e.c.city_key, e.c.criterion, e.c.id)
    if city_key is not None:
        q = q.where(e.c.city_key == city_key)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return _frame(rows, ["id", "city_key", "criterion", "url", "date", "note", "actor", "created_at"], ("created_at",))


def audit_log(engine: Engine, limit: int = 100) -> pd.DataFrame:
    """Newest first."""
    q = sa.select(audit_t.c.at, audit_t.c.actor, audit_t.c.action, audit_t.c.detail) \
        .order_by(audit_t.c.at.desc(), audit_t.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return _frame(rows, ["at", "actor", "action", "detail"], ("at",))


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: how the benchmark and the tests see what a run wrote."""
    tables = (cities_t, portals_t, runs_t, datasets_t, versions_t, scores_t, evidence_t, audit_t)
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables}
