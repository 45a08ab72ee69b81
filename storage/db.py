"""Engines: one cached engine per URL, SQLite tuned for one writer beside many dashboard readers.

SQLite is the embedded default. WAL lets the dashboard read while a harvest writes; writers take the
write lock up front (`BEGIN IMMEDIATE`, see `write_tx`) so two writers queue instead of failing with SQLITE_BUSY
when a deferred read transaction tries to upgrade to a write. They queue on the writers' lock (`writer`) first:
SQLite's own wait (`busy_timeout`) polls, sleeping up to 100 ms between tries, so a lock freed in a millisecond
sat idle for tens of ms while every harvest thread waited on it.
"""
from __future__ import annotations

import fcntl
import gc
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

# How long a SQLite writer waits for another writer's lock before giving up. A full 12k-dataset harvest
# holds it for about a second, an import of many snapshots a few seconds each; 60 s leaves ample margin.
SQLITE_BUSY_TIMEOUT_MS = 60_000
# How often a writer waiting on another process's writer tries the lock file again (`writer`): short, since the
# lock is typically held for milliseconds; one waiting thread per process tries, at the cost of a system call.
WRITER_POLL_S = (0.0002, 0.002)  # first and longest pause between tries

# Connections a process keeps open to a database server. Not a limit: a process takes as many as its threads use
# at once (max_overflow -1), since a harvest worker's threads each hold one for as long as their run is open (a
# large portal: its whole harvest), and SQLAlchemy's default bound (5 kept + 10, then a 30 s wait and an error)
# failed the 16th open run with a database error (its run could not even record it: the harvest stopped). The
# server's own max_connections is the limit to size (docs/deploy.md). Kept: a worker's default 16 harvest
# threads, its lease heartbeat and its main thread, so that they do not reconnect for every portal.
POOL_KEPT = 20
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def create(url: str) -> Engine:
    """A new engine for `url` (not cached); `open_db` is what callers normally want."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=POOL_KEPT, max_overflow=-1)
    if u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:  # DBAPI objects: untyped
        # Hand transaction control to SQLAlchemy's "begin" event below (the pysqlite driver's own
        # implicit BEGIN cannot be told to be IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # In WAL mode NORMAL is still crash-safe for the database (a power cut may lose the last commit);
        # it saves an fsync per commit.
        cur.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint the WAL into the database every ~40 MB instead of every 4 MB (the default 1,000 pages): a
        # first harvest writes ~35 MB per 12k datasets, and each checkpoint runs inside a writer's commit, holding
        # the write lock the other harvest workers wait on.
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def _after_fork_in_child() -> None:
    # A forked worker (gunicorn --preload) must not reuse the parent's pooled connections: both
    # processes would talk over the same socket. dispose(close=False) gives the child fresh pools
    # without closing the parent's connections (SQLAlchemy's documented recipe for multiprocessing).
    for engine in list(_ENGINES.values()):
        engine.dispose(close=False)
    # Nor the parent's writers' locks: a parent thread writing at the fork holds one the child could never release.
    global _WRITERS_LOCK
    _WRITERS_LOCK = threading.Lock()
    for w in _WRITERS.values():
        if w.fd is not None:
            os.close(w.fd)  # the parent's lock stays the parent's (its LOCK_UN frees it, whatever the child holds)
    _WRITERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def open_db(url: str) -> Engine:
    """The engine for `url`, created once per process and cached (pools are per engine)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = create(url)
        return engine


def dispose(url: str) -> None:
    """Close and forget the cached engine of `url` (tests drop their databases afterwards)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()
    from storage.queries import forget  # queries imports this module

    forget(engine.url.render_as_string(hide_password=False) if engine is not None else url)


def unreachable_reason(exc: BaseException) -> str | None:
    """The driver's first line when `exc` is the database failing to answer (cannot connect, connection lost,
    cannot open the file); None for any other error."""
    if not isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return None
    text = str(exc.orig or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def log_cleanup_failure(logger: logging.Logger, exc: BaseException, what: str) -> None:
    """Log that `what` (cleanup after an earlier failure) failed too: one line when the database is gone (the
    caller reports that once, with the first error), with the traceback otherwise."""
    if (gone := unreachable_reason(exc)) is not None:
        logger.error("could not %s: %s", what, gone)
    else:
        logger.exception("could not %s", what)


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed on success, rolled back on any exception."""
    with writer(engine), engine.connect().execution_options(write=True) as conn:
        with conn.begin():
            yield conn


class _Writers:
    """One SQLite file's writers' lock in this process: a lock for its threads, then a lock file (flock) for the
    other processes, held while any thread of this one writes (re-entrant, as SQLite's wait was: a nested write
    waits on SQLite, not here)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.threads = threading.RLock()
        self.depth = 0
        self.fd: int | None = None

    def acquire(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        if not self.threads.acquire(timeout=timeout_s):
            raise TimeoutError(f"no write lock on {self.path} after {timeout_s:.0f} s (another writer holds it)")
        try:
            if self.depth == 0:
                self.fd = _flock(self.path + "-writer", deadline)
            self.depth += 1
        except BaseException:
            self.threads.release()
            raise

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd is not None:
            fd, self.fd = self.fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self.threads.release()


def _flock(path: str, deadline: float) -> int:
    """An open descriptor of `path` holding its exclusive flock, tried until `deadline` (time.monotonic).

    Tried rather than waited for (a blocking flock cannot time out), every WRITER_POLL_S: a writer of another
    process gets the lock within ~2 ms of its release, where SQLite's own wait sleeps up to 100 ms."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    pause = WRITER_POLL_S[0]
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:  # another process's writer holds it
            if time.monotonic() > deadline:
                os.close(fd)
                raise TimeoutError(f"no write lock on {path} in time (another process writes)") from None
        except BaseException:
            os.close(fd)
            raise
        time.sleep(pause)
        pause = min(pause * 2, WRITER_POLL_S[1])


@contextmanager
def writer(engine: Engine | Connection) -> Iterator[None]:
    """Hold the writers' lock of `engine`'s SQLite file (nothing for other databases, or an in-memory one): one
    write transaction at a time per file, handed to the next writer the moment the last one ends.

    SQLite lets one writer in at a time and has the others poll (`busy_timeout`: sleeps of 1, 2, 5 ... 100 ms),
    so with 32 harvest threads queued the lock was idle half the time (py-spy: 82% of the threads' time was in
    BEGIN IMMEDIATE). Here the threads of a process queue on a lock that wakes the next one at once, and one
    thread per process tries a lock file every ~2 ms. Waits up to SQLITE_BUSY_TIMEOUT_MS, then TimeoutError."""
    path = _file_of(engine)
    if path is None:
        yield
        return
    with _WRITERS_LOCK:
        w = _WRITERS.get(path) or _WRITERS.setdefault(path, _Writers(path))
    w.acquire(SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        yield
    finally:
        w.release()


def _file_of(engine: Engine | Connection) -> str | None:
    """The absolute path of an SQLite database file; None for another database or an in-memory one."""
    if not is_sqlite(engine):
        return None
    db = engine.engine.url.database if isinstance(engine, Connection) else engine.url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return os.path.realpath(db)


_WRITERS: dict[str, _Writers] = {}  # SQLite file -> its writers' lock in this process
_WRITERS_LOCK = threading.Lock()


@overload
def utc(dt: datetime) -> datetime: ...
@overload
def utc(dt: None) -> None: ...
def utc(dt: datetime | None) -> datetime | None:
    """Aware UTC; a naive datetime is taken to be UTC already (the project's convention)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building ~12k records' worth of dicts and tuples.

    Every few hundred new containers the collector walks its generations, and in a process holding big
    frames the old generation is large: measured on the 11,928 Socrata records of socrata_scrape_2022,
    decoding the stored JSON took 1.38 s with the collector on and 0.14 s with it paused. Nothing built
    here is cyclic, so pausing is safe. Threads harvesting side by side (maturity/harvesters.py) overlap their
    pauses: the collector is re-enabled (if it was on) when the last of them ends, not when the first does.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


_gc_lock = threading.Lock()
_gc_pauses = 0  # gc_paused blocks in progress in this process
_gc_was_enabled = True
