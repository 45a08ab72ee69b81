"""Engines: one cached engine per URL, SQLite tuned for one writer beside many dashboard readers.

SQLite is the embedded default. WAL lets the dashboard read while a harvest writes; writers take the
write lock up front (`BEGIN IMMEDIATE`, see `write_tx`) so two writers queue on `busy_timeout` instead of
failing with SQLITE_BUSY when a deferred read transaction tries to upgrade to a write.
"""
from __future__ import annotations

import gc
import os
import threading
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

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def create(url: str) -> Engine:
    """A new engine for `url` (not cached); `open_db` is what callers normally want."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
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


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed on success, rolled back on any exception."""
    with engine.connect().execution_options(write=True) as conn:
        with conn.begin():
            yield conn


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
