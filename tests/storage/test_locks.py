"""Named TTL locks: exclusive across engines (processes) and threads, on both backends."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import storage
from storage.db import create

T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def test_lock_is_exclusive_across_two_engines(engine, db_url):
    other = create(db_url)  # a second engine, as a second worker process would have
    try:
        assert storage.try_lock(engine, "harvest:chicago", "worker-a", ttl_s=60, now=T0)
        assert not storage.try_lock(other, "harvest:chicago", "worker-b", ttl_s=60, now=T0 + timedelta(seconds=59))
        # A different name is a different lock.
        assert storage.try_lock(other, "harvest:boston", "worker-b", ttl_s=60, now=T0)
        # The holder may renew; after expiry anyone may take it.
        assert storage.try_lock(engine, "harvest:chicago", "worker-a", ttl_s=60, now=T0 + timedelta(seconds=30))
        assert not storage.try_lock(other, "harvest:chicago", "worker-b", ttl_s=60, now=T0 + timedelta(seconds=89))
        assert storage.try_lock(other, "harvest:chicago", "worker-b", ttl_s=60, now=T0 + timedelta(seconds=90))
        assert not storage.try_lock(engine, "harvest:chicago", "worker-a", ttl_s=60, now=T0 + timedelta(seconds=91))
        # Releasing a lock one no longer holds is a no-op; the holder's release frees it.
        storage.release_lock(engine, "harvest:chicago", "worker-a")
        assert not storage.try_lock(engine, "harvest:chicago", "worker-a", ttl_s=60, now=T0 + timedelta(seconds=92))
        storage.release_lock(other, "harvest:chicago", "worker-b")
        assert storage.try_lock(engine, "harvest:chicago", "worker-a", ttl_s=60, now=T0 + timedelta(seconds=93))
    finally:
        other.dispose()


def test_exactly_one_of_many_concurrent_callers_wins(engine, db_url):
    engines = [create(db_url) for _ in range(2)]
    start = threading.Barrier(8)
    wins: list[str] = []
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        owner = f"worker-{i}"
        try:
            start.wait()
            if storage.try_lock(engines[i % 2], "export", owner, ttl_s=300, now=T0):
                wins.append(owner)
        except BaseException as exc:  # surfaced below: a lock must refuse, not crash
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    assert len(wins) == 1
