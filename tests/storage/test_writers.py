"""The writers' lock of an SQLite file (storage.db.writer) and what a first harvest does before taking it.

Writers of one SQLite file queue on a lock of their process and a lock file shared with other processes, so the
next writer goes on the moment the last one ends instead of polling SQLite (busy_timeout). A portal's first batch
is packed before its run's write transaction, outside that lock.
"""
from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import threading

import pytest
import sqlalchemy as sa

import storage
from storage import codec, db
from tests.storage.conftest import CHICAGO, chicago_snapshot


def lock_file(url: str) -> str:
    return os.path.realpath(sa.engine.make_url(url).database) + "-writer"


def free(path: str) -> bool:
    """Whether another process could take the lock file now (a descriptor of its own conflicts like one)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the last descriptor releases a lock taken through it
    return True


@pytest.fixture
def sqlite_engine(sqlite_url):
    storage.upgrade(sqlite_url)
    engine = storage.open_db(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE scratch (name TEXT)"))
    yield engine
    storage.dispose(sqlite_url)


def test_a_write_transaction_waits_for_the_writers_lock_not_for_sqlite(sqlite_engine, sqlite_url, monkeypatch):
    """While a thread holds the writers' lock (SQLite itself unlocked), another thread's write transaction does
    not begin: it gives up after the busy timeout with TimeoutError. Once released, it goes through."""
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            with db.write_tx(sqlite_engine) as conn:
                conn.execute(sa.text("INSERT INTO scratch VALUES ('x')"))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with db.writer(sqlite_engine):
        assert not free(lock_file(sqlite_url))  # other processes wait too
        t = threading.Thread(target=write)
        t.start()
        t.join()
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)
    assert free(lock_file(sqlite_url))
    write()
    assert outcome[1] is None


def test_the_writers_lock_is_reentrant_and_free_after(sqlite_engine, sqlite_url):
    """A thread holding it may take it again (a nested write then waits on SQLite, as before); the lock file is
    free only when the outermost hold ends."""
    path = lock_file(sqlite_url)
    with db.writer(sqlite_engine):
        with db.writer(sqlite_engine):
            assert not free(path)
        assert not free(path)
    assert free(path)


def test_no_writers_lock_for_other_databases():
    """An in-memory SQLite (no file) holds no lock file; neither would PostgreSQL (its writers queue on rows)."""
    engine = db.create("sqlite://")
    with db.writer(engine):
        pass
    assert db._file_of(engine) is None
    engine.dispose()


def _child_writes(url: str, done) -> None:  # runs in a forked child
    engine = storage.open_db(url)
    with db.write_tx(engine) as conn:
        conn.execute(sa.text("INSERT INTO scratch VALUES ('child')"))
    done.send("written")


def test_a_process_forked_while_another_thread_writes_waits_then_writes(sqlite_engine, sqlite_url):
    """A worker forked while a thread of its parent holds the writers' lock starts with locks of its own (the
    parent's thread does not exist in the child, so the copied lock could never be released there): the child
    waits on the lock file until the parent releases it, then writes."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.writer(sqlite_engine):
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    here, there = mp.get_context("fork").Pipe()
    child = mp.get_context("fork").Process(target=_child_writes, args=(sqlite_url, there))
    child.start()
    release.set()
    holder.join()
    assert here.poll(30) and here.recv() == "written"
    child.join(30)
    assert child.exitcode == 0
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM scratch")).scalars().all() == ["child"]


def test_a_run_holds_the_writers_lock_from_its_first_add_to_its_end(sqlite_engine, sqlite_url):
    snap = chicago_snapshot("2022-06-08")
    storage.sync_config(sqlite_engine, _settings())
    path = lock_file(sqlite_url)
    run_id = storage.start_run(sqlite_engine, CHICAGO.key, as_of=snap.as_of, source="import")
    with storage.RunWriter(sqlite_engine, run_id) as run:
        assert free(path)
        run.add(list(snap.records), list(snap.raws))
        assert not free(path)
        run.finish(snap.stats, finished_at=snap.as_of)
    assert free(path)
    # and when the run fails: released before its failure is recorded (a write of its own)
    run_id = storage.start_run(sqlite_engine, CHICAGO.key, as_of=snap.as_of, source="import")
    with pytest.raises(RuntimeError, match="page 2"):
        with storage.RunWriter(sqlite_engine, run_id) as run:
            run.add(list(snap.records[:10]), list(snap.raws[:10]))
            raise RuntimeError("page 2 could not be read")
    assert free(path)


def _settings():
    from tests.storage.conftest import SETTINGS

    return SETTINGS


def _stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT d.source_id, v.raw_hash, v.record, v.raw, v.base_version, b.data, v.raw_at, c.field, c.data"
            " FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
            " LEFT JOIN raw_blocks b ON b.id = v.raw_block"
            " LEFT JOIN codec_dictionaries c ON c.portal_key = d.portal_key AND c.field = 'raw'"
            " ORDER BY d.source_id"))]


def test_a_first_batch_is_packed_before_the_lock_and_stored_as_under_it(tmp_path, monkeypatch):
    """A portal without datasets (as `stored_hashes` reads before the lock): its first batch's dictionaries, record
    frames and raw blocks are made while the writers' lock is free; what is stored is byte for byte what packing
    under the lock stores (save_harvest, which reads nothing before its transaction)."""
    snap = chicago_snapshot("2022-06-08")
    stored = []
    for way in ("under the lock", "before the lock"):
        url = f"sqlite:///{tmp_path / way.replace(' ', '-')}.db"
        storage.upgrade(url)
        engine = storage.open_db(url)
        storage.sync_config(engine, _settings())
        lock_free_when_packing: list[bool] = []
        real, path = codec.Codec.pack_blocks, lock_file(url)

        def pack_blocks(self, items, path=path, seen=lock_free_when_packing, real=real):
            seen.append(free(path))
            return real(self, items)

        monkeypatch.setattr(codec.Codec, "pack_blocks", pack_blocks)
        run_id = storage.start_run(engine, CHICAGO.key, as_of=snap.as_of, source="import", started_at=snap.as_of)
        with storage.RunWriter(engine, run_id) as run:
            if way == "before the lock":
                assert run.stored_hashes(r.source_id for r in snap.records) == {}
            run.add(list(snap.records), list(snap.raws))
            summary = run.finish(snap.stats, finished_at=snap.as_of)
        assert summary.status == "ok" and summary.new_versions == 313
        assert lock_free_when_packing == [way == "before the lock"]
        stored.append(_stored(engine))
        monkeypatch.undo()
        storage.dispose(url)
    assert len(stored[0]) == 313 and stored[0] == stored[1]
