"""The write path: runs, change-only dataset history, config sync.

A run's history is written by `RunWriter` page by page, in ONE transaction that spans the run: for each page one
query reads {source_id: (dataset id, hash of the version valid at the run's as_of)} of the page's ids, hashes
are compared in Python, and only new datasets and changed versions are bulk-inserted (COPY / executemany).
Memory does not grow with the catalog beyond the run's set of ids. `save_harvest` is the writer fed once.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage import codec, compact, crawls
from storage.db import gc_paused, is_sqlite, log_cleanup_failure, now_utc, utc, write_tx, writer
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
# SET from the parameters' column names; only a run still "running": one closed meanwhile by another process (its
# lease lapsed, storage/orphans.py, and that process may be harvesting the portal now) keeps how it ended.
_CLOSE_RUN = sa.update(runs_t).where(_RUN_BY_ID, runs_t.c.status == "running")
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
# The version of each dataset valid at a time: its newest version dated at or before it (on a date tie, the one
# stored last). For a page of source ids at a time: one index seek per dataset
# (ix_dataset_versions_dataset_as_of_modified), never a scan of the portal's history.
_v = versions_t.alias("valid")
_VALID_ID = (sa.select(_v.c.id).where(_v.c.dataset_id == datasets_t.c.id, _v.c.as_of <= _p("as_of"))
             .order_by(_v.c.as_of.desc(), _v.c.id.desc()).limit(1).scalar_subquery())
_VERSIONS_OF = (sa.select(datasets_t.c.source_id, datasets_t.c.id, versions_t.c.id, versions_t.c.raw_hash)
                .select_from(datasets_t.outerjoin(versions_t, versions_t.c.id == _VALID_ID))
                .where(datasets_t.c.portal_key == _p("portal_key"),
                       datasets_t.c.source_id.in_(sa.bindparam("source_ids", expanding=True))))
# The ids of datasets this run has just inserted (they have no version yet: no join to the versions).
_DATASET_IDS = (sa.select(datasets_t.c.source_id, datasets_t.c.id)
                .where(datasets_t.c.portal_key == _p("portal_key"),
                       datasets_t.c.source_id.in_(sa.bindparam("source_ids", expanding=True))))
VERSIONS_OF_BATCH = 5_000  # source ids per query (SQLite allows 32,766 parameters; a page is 5,000 items)
# The run's row, and whether its portal has any dataset yet: before its first run, every id is new, so a first
# harvest asks for no stored versions (most of the 291 recorded portals are one batch: the lookups were 3 of their
# ~10 queries). One statement: it is read twice a run (before the writers' lock and under it).
_RUN_ROW = sa.select(runs_t.c.portal_key, runs_t.c.as_of, runs_t.c.status,
                     sa.exists().where(datasets_t.c.portal_key == runs_t.c.portal_key).label("had_datasets")
                     ).where(_RUN_BY_ID)


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


class RunConflict(RuntimeError):
    """Another run of the same portal stored versions between a run's first read and its write lock."""


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
    """Mark a run still "running" failed with its reason (its own transaction; earlier runs are untouched). A run
    another process has already closed (the orphan sweep's "interrupted", or "ok" before a later step raised)
    keeps that ending: its row says first how it ended, as `_CLOSE_RUN` does for `finish`."""
    with write_tx(engine) as conn:
        conn.execute(_CLOSE_RUN, {"run_id": run_id, "status": "failed", "error": reason,
                                  "finished_at": utc(finished_at)})


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
    """Store one run's records change-only, in one transaction, and close the run as ok or suspect (the
    `RunWriter` fed once: `maturity import`, tests).

    On any exception the transaction is rolled back (earlier runs intact), the run is recorded failed with
    the exception as its reason in a separate transaction, and the exception is re-raised.
    """
    with gc_paused(), RunWriter(engine, run_id) as run:
        run.add(records, raws)
        return run.finish(stats, finished_at=finished_at)


class _Write(NamedTuple):
    """A version to write: its dataset, raw hash, data_modified, record JSON and raw item, and the version it
    supersedes (None: the dataset's first)."""

    dataset_id: int
    raw_hash: str
    data_modified: datetime | None
    record: bytes
    raw: bytes
    old: int | None


# Changed datasets whose key version's raw item is in a block, held at most this many before they are written
# (~6 KB each: ~60 MB), so a block is decoded once for all of them (`RunWriter._add`).
PENDING_MAX = 10_000

# A version's compressed record JSON, its raw item's frame (None: in a raw block), its base version, and its raw
# block's id and place (None, None: a frame).
Payload = tuple[bytes, bytes | None, int | None, int | None, int | None]


class _Packed(NamedTuple):
    """A first batch's new versions packed before the write transaction (`RunWriter._packed_early`): their
    source ids, record JSON and raw items in order, the codec with the dictionaries learned from them (rows to
    insert), the record frames and the raw blocks."""

    ids: list[str]
    records: list[bytes]
    raws: list[bytes]
    packer: codec.Codec
    dictionaries: list[dict[str, Any]]
    frames: list[bytes]
    blocks: list[bytes]


class RunWriter:
    """One run's change-only history, written page by page in ONE write transaction that spans the run.

        with RunWriter(engine, run_id) as run:      # the write transaction begins at the first add()
            for page in pages:
                stored = run.stored_hashes(ids)     # {source_id: raw_hash valid at the run's as_of}
                run.keep(unchanged_ids)             # members of the run, nothing written
                run.add(records, raw_bytes)         # new datasets and changed versions
            summary = run.finish(stats, finished_at=...)

    The block commits when it ends; any exception rolls everything back, so a run that fails on its 25th page
    leaves no dataset or version behind. A failure of the database itself (or of what was given to it: a
    record of another portal) is recorded on the run as its reason, in a separate transaction, and re-raised
    with `failed` set (and `recorded`, when the run's row could be written: the database is still there); whoever
    feeds the writer records its own failures (a portal error) after the block.
    Memory held across pages: the run's source ids (its members), the ids of changed datasets, counts.
    """

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine, self.run_id = engine, run_id
        self.failed = False  # set when the writer's own work raised (recorded on the run unless RunClosed)
        # After a failure: the reason, and whether the run's row says how it ended (recorded here, or closed by
        # someone else: RunClosed). False: not even that could be written; the database itself is gone.
        self.reason: str | None = None
        self.recorded = False
        self._conn: Connection | None = None
        self._tx: Any = None
        self._writer = ExitStack()  # holds the writers' lock (storage.db.writer) while the transaction is open
        self.portal_key = ""
        self.as_of = _BEFORE_ANY_RUN
        self.portal_had_datasets = True  # read with the run (`_load_run`); False: every id not yet seen is new
        self.members: set[str] = set()
        self.dropped = 0  # repeats among the items given (the first one wins)
        self.new_versions = 0
        self.changed: list[int] = []  # existing datasets that get a new version from this run
        self.replaced: dict[int, int] = {}  # dataset_id -> id of the version this run supersedes at its as_of
        self.earlier_than_first: list[int] = []  # seen before any stored version: an older snapshot imported later
        self.summary: RunSummary | None = None
        self._read_early: dict[str, str | None] = {}  # stored_hashes before the write transaction began
        # The portal's codec (storage/codec.py), read at the first version written; a field without a dictionary
        # learns one from the first batch that writes at least codec.min_items(field) versions (a first harvest:
        # its first batch, the sample the field profile is taken from too), in this run's transaction.
        self.packer: codec.Codec | None = None
        self._kept_early: list[str] = []  # ids kept before it began: checked again under the lock
        self._pending: list[_Write] = []  # changes against keys in blocks, written together (PENDING_MAX)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        conn, self._conn = self._conn, None
        if conn is None:  # no transaction was begun (a failure in an early read, or nothing to write)
            self._record_if_failed()
            if exc is None and self.summary is None:
                raise ValueError(f"run {self.run_id}: the writer's block ended without finish()")
            return
        try:
            if exc is None and self.summary is not None:
                self._tx.commit()
            else:
                self._tx.rollback()
        except BaseException as commit_exc:
            self._broke(commit_exc)
            raise
        finally:
            conn.close()
            self._writer.close()  # the next writer goes on at once, before this run's failure is recorded
            self._record_if_failed()
        if exc is None and self.summary is None:
            raise ValueError(f"run {self.run_id}: the writer's block ended without finish(); rolled back")

    # --- what the feeder calls, page by page ---------------------------------------------------------------

    def stored_hashes(self, source_ids: Iterable[str]) -> dict[str, str | None]:
        """{source_id: raw_hash of its version valid at the run's as_of} for those of `source_ids` stored
        before (None: a dataset with no version at that time). Before the first `add`, a short read that takes
        no lock (see `_begin`)."""
        with self._guard(begin=False) as conn:
            if not self.portal_had_datasets:
                return {}
            found = {sid: h for sid, (_did, _vid, h) in _versions_of(conn, self.portal_key, self.as_of,
                                                                     list(source_ids)).items()}
        if self._conn is None:
            self._read_early.update(found)
        return found

    def keep(self, source_ids: Iterable[str]) -> None:
        """Items found unchanged (`stored_hashes`): members of the run, nothing written."""
        for sid in source_ids:
            if sid in self.members:
                self.dropped += 1
            else:
                self.members.add(sid)
                if self._conn is None:
                    self._kept_early.append(sid)

    def add(self, records: Sequence[DatasetRecord], raws: Sequence[bytes]) -> None:
        """Records and their raw bytes (same order; `raws` may be lazy: only new and changed items are read):
        new datasets and changed versions are inserted, the others only counted as members."""
        packed = self._packed_early(records, raws) if self._conn is None and self.summary is None else None
        with self._guard() as conn:
            self._add(conn, records, raws, packed)

    def _packed_early(self, records: Sequence[DatasetRecord], raws: Sequence[bytes]) -> _Packed | None:
        """The first batch of a portal without datasets (as read before the lock: `stored_hashes`), packed before
        the write transaction begins: each of its items is a new version, so its frames (and the portal's first
        dictionaries) need nothing from the database. Harvest threads queue on the writers' lock, and CPU spent
        holding it is spent one writer at a time: packing was ~60% of the first harvest's time under the lock
        (py-spy, 20 recorded catalogs side by side). None otherwise: packed under the lock, as later batches."""
        if self.portal_had_datasets or self.packer is not None or not self.portal_key or len(records) != len(raws):
            return None
        picked: dict[str, int] = {}
        for i, rec in enumerate(records):
            if rec.source_id not in self.members:
                picked.setdefault(rec.source_id, i)
        json_todo = [_record_json(records[i]) for i in picked.values()]
        raw_todo = [raws[i] for i in picked.values()]
        packer, dictionaries = compact.trained(codec.Codec(), self.run_id,
                                               {codec.RAW: raw_todo, codec.RECORD: json_todo})
        return _Packed(list(picked), json_todo, raw_todo, packer, dictionaries,
                       packer.pack_many(codec.RECORD, json_todo), packer.pack_blocks(raw_todo))

    def finish(self, stats: FetchStats, *, finished_at: datetime) -> RunSummary:
        """Judge the run (complete / partial / empty against the portal's earlier runs) and close it."""
        with self._guard() as conn:
            self.summary = self._finish(conn, stats, utc(finished_at))
            return self.summary

    # --- inside the transaction ----------------------------------------------------------------------------

    @contextmanager
    def _guard(self, *, begin: bool = True) -> Iterator[Connection]:
        """The run's write transaction (begun at the first call with `begin`), else a short read of its own;
        a failure here is the writer's."""
        if self.summary is not None:
            raise ValueError(f"run {self.run_id} is finished")
        try:
            if self._conn is None and not begin:
                with self.engine.connect() as conn, conn.begin():
                    self._load_run(conn)
                    yield conn
                return
            if self._conn is None:
                self._begin()
            assert self._conn is not None
            yield self._conn
        except BaseException as exc:
            self._broke(exc)
            raise

    def _begin(self) -> None:
        """The write transaction, from the first `add` to the end of the run (SQLite: the writers' lock, then BEGIN
        IMMEDIATE). The first batch is read, normalized (and for a portal without datasets packed:
        `_packed_early`) before it, so a portal of one batch (most portals) holds SQLite's lock only while it is
        written, as harvests side by side need. What was found unchanged then is
        checked again under the lock: only another run of the same portal writing in between (which portal
        leases exclude) can change it, and then this run fails rather than store a wrong history."""
        with ExitStack() as held:
            held.enter_context(writer(self.engine))
            self._conn = self.engine.connect().execution_options(write=True)
            self._writer = held.pop_all()  # released in __exit__, after the commit or rollback
        self._tx = self._conn.begin()
        self._load_run(self._conn)
        if self._kept_early:
            now = _versions_of(self._conn, self.portal_key, self.as_of, self._kept_early)
            moved = [sid for sid in self._kept_early if now.get(sid, (0, None, None))[2] != self._read_early[sid]]
            if moved:
                raise RunConflict(f"run {self.run_id}: another run of portal {self.portal_key!r} stored "
                                  f"{len(moved)} of its datasets meanwhile (e.g. {moved[0]!r}); harvest it again")
        self._kept_early, self._read_early = [], {}

    def _load_run(self, conn: Connection) -> None:
        run = conn.execute(_RUN_ROW, {"run_id": self.run_id}).one_or_none()
        if run is None:
            raise RunClosed(f"no harvest run {self.run_id}")
        if run.status != "running":
            raise RunClosed(f"run {self.run_id} is {run.status!r}, not running")
        self.portal_key, self.as_of = run.portal_key, run.as_of
        # Read again under the write lock (`_begin`): a portal still without datasets then stays so for this run
        # but for the ones it inserts itself, which are its members and never looked up.
        self.portal_had_datasets = bool(run.had_datasets)

    def _broke(self, exc: BaseException) -> None:
        self.failed = True
        if self.reason is None and isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM in the CLI
            self.reason = "interrupted: KeyboardInterrupt while writing"
        elif self.reason is None:
            # SQLAlchemy's error carries the statement and up to 10 rows of parameters: the driver's says why
            shown = getattr(exc, "orig", None) or exc
            self.reason = f"{type(shown).__name__}: {str(shown).strip()}"
            self.recorded = isinstance(exc, RunClosed)  # a closed run is left as it is: its row says how it ended

    def _record_if_failed(self) -> None:
        """The writer's failure on the run's row, in a transaction of its own (after the rollback)."""
        if not self.failed or self.recorded or self.reason is None:
            return
        try:
            fail_run(self.engine, self.run_id, self.reason, finished_at=now_utc())
        except Exception as exc:  # the database itself may be what failed; keep the original error
            log_cleanup_failure(log, exc, f"record run {self.run_id} as failed")
            return
        self.recorded = True

    def _add(self, conn: Connection, records: Sequence[DatasetRecord], raws: Sequence[bytes],
             packed: _Packed | None = None) -> None:
        if len(records) != len(raws):
            raise ValueError(f"{len(records)} records but {len(raws)} raw items")
        portal_key, run_id, as_of = self.portal_key, self.run_id, self.as_of
        # Items repeated in the run count once (the first one wins) and add to the run's repeats.
        picked: dict[str, int] = {}
        for i, rec in enumerate(records):
            if rec.portal_key != portal_key:
                raise ValueError(
                    f"record {rec.source_id!r} is from portal {rec.portal_key!r}, run {run_id} is {portal_key!r}")
            if rec.source_id in self.members or rec.source_id in picked:
                self.dropped += 1
            else:
                picked[rec.source_id] = i
        self.members.update(picked)
        existing = _versions_of(conn, portal_key, as_of, list(picked)) if self.portal_had_datasets else {}
        new_ids = [sid for sid in picked if sid not in existing]
        if new_ids:
            _bulk_insert(conn, datasets_t, [{"portal_key": portal_key, "source_id": sid, "first_run_id": run_id,
                                             "last_run_id": run_id} for sid in new_ids])
            existing.update(_new_dataset_ids(conn, portal_key, new_ids))
        is_new = set(new_ids)

        todo: list[tuple[int, int, str]] = []  # (record index, dataset id, raw hash) of the versions to write
        for sid, i in picked.items():
            dataset_id, old_version, old_hash = existing[sid]
            h = records[i].raw_hash or hashlib.sha1(raws[i]).hexdigest()
            if sid not in is_new and old_version is None:
                self.earlier_than_first.append(dataset_id)
            if old_version is not None and h == old_hash:
                continue
            if sid not in is_new:
                self.changed.append(dataset_id)
            if old_version is not None:
                self.replaced[dataset_id] = old_version
            todo.append((i, dataset_id, h))
        if not todo:
            return
        if packed is not None and (self.portal_had_datasets or packed.ids != list(picked)):
            packed = None  # another run stored this portal's datasets meanwhile (leases exclude it): pack here
        if packed is not None:  # every item new (no dataset before): the frames made before the lock
            writes = [_Write(dataset_id, h, utc(records[i].data_modified), packed.records[n], packed.raws[n], None)
                      for n, (i, dataset_id, h) in enumerate(todo)]
            self._write(conn, writes, packed)
            return
        writes = [_Write(dataset_id, h, utc(records[i].data_modified), _record_json(records[i]), raws[i],
                         existing[records[i].source_id][1]) for i, dataset_id, h in todo]
        # A changed dataset is stored against its key version, whose raw item, when it is in a block, costs the
        # block's decoding (~1 MB). In a catalog whose order moves between runs, every batch's changes touch
        # nearly every block: such changes wait (PENDING_MAX at most) and are written together, each block
        # decoded once for all of them.
        wait = compact.keys_in_blocks(conn, [w.old for w in writes if w.old is not None])
        if wait:
            self._pending.extend(w for w in writes if w.old in wait)
            writes = [w for w in writes if w.old not in wait]
        self._write(conn, writes)
        if len(self._pending) >= PENDING_MAX:
            self._flush(conn)

    def _flush(self, conn: Connection) -> None:
        pending, self._pending = self._pending, []
        self._write(conn, pending)

    def _write(self, conn: Connection, writes: list[_Write], packed: _Packed | None = None) -> None:
        if not writes:
            return
        payloads = self._payloads(conn, writes) if packed is None else self._saved(conn, packed)
        _bulk_insert(conn, versions_t, [
            {"dataset_id": w.dataset_id, "run_id": self.run_id, "as_of": self.as_of,
             "raw_hash": codec.hash_bytes(w.raw_hash), "data_modified": w.data_modified, "record": record,
             "raw": raw, "base_version": base, "raw_block": block, "raw_at": at}
            for w, (record, raw, base, block, at) in zip(writes, payloads, strict=True)])
        self.new_versions += len(writes)

    def _payloads(self, conn: Connection, writes: list[_Write]) -> list[Payload]:
        """The stored frames of new and changed versions (storage/codec.py): with the portal's dictionaries
        (learned here from these versions when a field has none yet), a changed dataset against its key version
        when that is smaller (storage/compact.py), the raw items of the others in raw blocks (codec.RAW_BLOCK_ITEMS
        to a block, inserted here, in the run's transaction)."""
        raw_todo = [w.raw for w in writes]
        json_todo = [w.record for w in writes]
        if self.packer is None:
            # A portal without datasets has no dictionaries either: they are written with its first versions.
            self.packer = compact.portal_codec(conn, self.portal_key) if self.portal_had_datasets else codec.Codec()
        if any(field not in self.packer.current for field in codec.FIELDS):
            self.packer, new = compact.trained(self.packer, self.run_id,
                                               {codec.RAW: raw_todo, codec.RECORD: json_todo})
            compact.save_dictionaries(conn, self.portal_key, new)  # before the frames that name them
        packer = self.packer
        stored: list[tuple[bytes, bytes | None, int | None]] = [
            (record, None, None) for record in packer.pack_many(codec.RECORD, json_todo)]
        changed = {n: w.old for n, w in enumerate(writes) if w.old is not None}
        keys = compact.key_versions(conn, packer, changed.values())
        for n, vid in changed.items():
            if vid in keys:
                # The change against the key version, unless it costs more than half of the version in full (whose
                # raw frame alone is what this compares: its share of a block is not known before the block is).
                full = (stored[n][0], packer.pack(codec.RAW, raw_todo[n]), None)
                against = compact.smaller(full, json_todo[n], raw_todo[n], keys[vid])
                if against is not full:
                    stored[n] = against
        in_blocks = [n for n, (_, raw, _) in enumerate(stored) if raw is None]
        block_ids = compact.save_raw_blocks(conn, self.run_id, packer.pack_blocks([raw_todo[n] for n in in_blocks]))
        places: dict[int, tuple[int, int]] = {
            n: (block_ids[k // codec.RAW_BLOCK_ITEMS], k % codec.RAW_BLOCK_ITEMS) for k, n in enumerate(in_blocks)}
        return [(record, raw, base, *places.get(n, (None, None))) for n, (record, raw, base) in enumerate(stored)]

    def _saved(self, conn: Connection, packed: _Packed) -> list[Payload]:
        """`_payloads` of versions packed before the transaction (`_packed_early`): their dictionaries and raw
        blocks inserted."""
        self.packer = packed.packer
        compact.save_dictionaries(conn, self.portal_key, packed.dictionaries)
        block_ids = compact.save_raw_blocks(conn, self.run_id, packed.blocks)
        return [(record, None, None, block_ids[k // codec.RAW_BLOCK_ITEMS], k % codec.RAW_BLOCK_ITEMS)
                for k, record in enumerate(packed.frames)]

    def _finish(self, conn: Connection, stats: FetchStats, finished_at: datetime | None) -> RunSummary:
        portal_key, run_id, as_of = self.portal_key, self.run_id, self.as_of
        self._flush(conn)
        carried = _keep_later_runs_right(conn, portal_key, run_id, as_of, self.replaced) if self.replaced else 0
        if self.earlier_than_first:
            conn.execute(sa.update(datasets_t).where(datasets_t.c.id == sa.bindparam("did"))
                         .values(first_run_id=run_id), [{"did": d} for d in self.earlier_than_first])
        _touch_last_version(conn, run_id, self.changed)

        items = len(self.members)
        status, reason, removed, notes = _judge(conn, portal_key, run_id, as_of, items, self.members,
                                                list(stats.notes))
        repeats = (stats.repeats or 0) + self.dropped
        closed = conn.execute(_CLOSE_RUN, {
            "run_id": run_id, "status": status, "finished_at": finished_at, "items": items,
            "reported_total": stats.reported_total, "repeats": repeats, "pages": stats.pages,
            "new_versions": self.new_versions + carried, "removed": removed, "suspect_reason": reason,
            "notes": notes or None,
            **compact.encode_members(conn, portal_key, run_id, self.members, may_be_base=status == crawls.COMPLETE),
        })
        if closed.rowcount != 1:  # this run's work is rolled back (RunClosed): a run has one ending
            row = conn.execute(_RUN_ROW, {"run_id": run_id}).one_or_none()
            raise RunClosed(f"run {run_id} was closed by another process while it was written "
                            f"({row.status if row else 'deleted'}); its versions are not stored")
        save_schema_check(conn, run_id, stats.schema_check)
        _rejudge_later_runs(conn, portal_key, as_of, run_id)
        return RunSummary(run_id=run_id, portal_key=portal_key, status=status, items=items,
                          new_versions=self.new_versions + carried, repeats=repeats, removed=removed or 0,
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
                v.c.base_version, v.c.raw_block, v.c.raw_at]
        src = sa.select(v.c.dataset_id, sa.bindparam("rid", type_=sa.Integer),
                        sa.bindparam("at", type_=v.c.as_of.type), v.c.raw_hash, v.c.data_modified, v.c.record,
                        v.c.raw, v.c.base_version, v.c.raw_block, v.c.raw_at).where(v.c.id == sa.bindparam("vid"))
        conn.execute(sa.insert(v).from_select(cols, src), copies)
    return len(copies)


def _versions_of(conn: Connection, portal_key: str, as_of: datetime,
                 source_ids: Sequence[str]) -> dict[str, tuple[int, int | None, str | None]]:
    """{source_id: (dataset_id, id of its version valid at as_of or None, that version's raw_hash)} for those of
    `source_ids` that the portal has a dataset for."""
    return {sid: (did, vid, h) for sid, did, vid, h in
            _by_source_ids(conn, _VERSIONS_OF, {"portal_key": portal_key, "as_of": as_of}, source_ids)}


def _new_dataset_ids(conn: Connection, portal_key: str,
                     source_ids: Sequence[str]) -> dict[str, tuple[int, None, None]]:
    """`_versions_of` for datasets inserted in this transaction: their ids, and no version."""
    return {sid: (did, None, None) for sid, did in
            _by_source_ids(conn, _DATASET_IDS, {"portal_key": portal_key}, source_ids)}


def _by_source_ids(conn: Connection, stmt: sa.Select, params: dict[str, Any],
                   source_ids: Sequence[str]) -> Iterator[Any]:
    """The rows of `stmt` for `source_ids`, VERSIONS_OF_BATCH ids a query."""
    for start in range(0, len(source_ids), VERSIONS_OF_BATCH):
        yield from conn.execute(stmt, {**params, "source_ids": source_ids[start:start + VERSIONS_OF_BATCH]})


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
            blob = {"failing": _plain(s.failing), "matches": _plain(s.matches), "detail": _plain(s.detail)}
            rows.append({"city_key": city_key, "as_of": as_of, "criterion": mapping.get(key, ""), "indicator": key,
                         "value": _num(s.value), "numerator": _num(s.numerator), "denominator": _num(s.denominator),
                         "stage": None, "flag": flag,
                         **compact.encode_evidence(conn, city_key, key, blob, bases, may_be_base=flag is None)})
        if rows:
            conn.execute(sa.insert(scores_t), rows)


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping as a dict (what orjson writes), not copied when it is one: a failing map can hold 200,000
    entries."""
    return mapping if type(mapping) is dict else dict(mapping)


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
