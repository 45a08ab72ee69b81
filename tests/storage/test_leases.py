"""Leases (locks their holder renews) and the closing of runs whose process is gone, on both backends."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import storage
import storage.locks as locks
from connectors.base import FetchStats

T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_owner_gone_knows_this_machine_only():
    assert not locks.owner_gone(storage.process_owner("cli"))  # this very process
    assert locks.owner_gone(f"cli:{locks.node()}:{dead_pid()}")
    assert locks.owner_gone(f"scheduler:{locks.node()}:{dead_pid()}:ab12cd34")  # a job's suffixed owner
    assert not locks.owner_gone(f"cli:elsewhere/1:{dead_pid()}")  # another machine: cannot tell, so alive
    assert not locks.owner_gone("worker-a")  # not a process owner at all


def test_a_dead_holders_lease_is_taken_at_once_and_its_running_run_closed(engine):
    dead = f"cli:{locks.node()}:{dead_pid()}"
    # an hour left on it, but nobody will renew it
    assert storage.try_lock(engine, "harvest:chicago-socrata", dead, ttl_s=3600, now=T0)
    run_id = storage.start_run(engine, "chicago-socrata", as_of=T0)
    assert storage.take_portal(engine, "chicago-socrata", "maturity.cli:next", now=T0 + timedelta(seconds=1))
    run = storage.runs(engine, portal_key="chicago-socrata").iloc[0]
    assert (run["run_id"], run["status"]) == (run_id, "failed")
    assert run["error"].startswith("interrupted: still running at 2026-01-05 04:00 UTC")
    storage.drop_lease(engine, "harvest:chicago-socrata", "maturity.cli:next")


def test_a_live_holder_keeps_its_lease_and_its_run(engine):
    assert storage.take_portal(engine, "chicago-socrata", "cli:elsewhere/1:42", now=T0)
    run_id = storage.start_run(engine, "chicago-socrata", as_of=T0)
    assert not storage.take_portal(engine, "chicago-socrata", "maturity.cli:next", now=T0 + timedelta(seconds=10))
    assert storage.close_orphaned_runs(engine, now=T0 + timedelta(seconds=10)) == []
    assert storage.runs(engine, portal_key="chicago-socrata").iloc[0]["status"] == "running"
    # another machine's holder that stopped renewing: its lease lapses after LEASE_TTL_S, and the run is closed
    later = T0 + timedelta(seconds=storage.LEASE_TTL_S + 1)
    assert storage.close_orphaned_runs(engine, now=later) == [run_id]
    storage.drop_lease(engine, "harvest:chicago-socrata", "cli:elsewhere/1:42")


def test_a_run_without_any_lease_is_closed_after_the_grace(engine):
    started = datetime.now(UTC)
    run_id = storage.start_run(engine, "chicago-socrata", as_of=T0)
    assert storage.close_orphaned_runs(engine, now=started + timedelta(seconds=10)) == []
    assert storage.close_orphaned_runs(engine, now=started + timedelta(seconds=storage.LEASE_TTL_S + 10)) == [run_id]
    # a finished run is never touched
    ok = storage.start_run(engine, "chicago-socrata", as_of=T0)
    storage.save_harvest(engine, ok, [], [], FetchStats(), finished_at=T0)
    assert storage.close_orphaned_runs(engine, now=started + timedelta(days=1)) == []


def test_the_heartbeat_renews_a_held_lease(engine, monkeypatch):
    monkeypatch.setattr(locks, "RENEW_EVERY_S", 0.05)
    owner = storage.process_owner("test")
    assert storage.take_lease(engine, "export", owner, ttl_s=2)
    first = locks.lock_holders(engine, "export")["export"][1]
    locks._HEARTBEAT._wake.set()  # the thread may be sleeping on an earlier, longer interval
    deadline = time.monotonic() + 30
    while locks.lock_holders(engine, "export")["export"][1] <= first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert locks.lock_holders(engine, "export")["export"][1] > first  # renewed: its expiry moved on
    storage.drop_lease(engine, "export", owner)
    assert locks.lock_holders(engine, "export") == {}
    assert ("export", owner) not in [(n, o) for _, n, o in storage.held_leases()]


def test_a_forked_child_holds_none_of_its_parents_leases(engine):
    owner = storage.process_owner("test")
    assert storage.take_lease(engine, "export", owner)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report how many leases it thinks it holds, and leave without cleanup
        os.write(write, str(len(storage.held_leases())).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"0"
    storage.drop_lease(engine, "export", owner)


def test_a_fork_waits_for_a_lease_renewal_in_progress(engine, monkeypatch):
    """A child forked while the heartbeat thread was inside a renewal's SQLite transaction would inherit SQLite's
    in-process lock state mid-write (then time out on every write, or hang). A fork now waits for the renewal
    in progress. The renewal here holds until told; the fork runs on another thread and reports when it is done."""
    import threading

    in_renewal, finish = threading.Event(), threading.Event()
    order: list[str] = []
    real_renew = locks.renew_lock

    owner = storage.process_owner("test-fork")

    def slow_renew(engine, name, who, **kwargs):
        if (name, who) == ("export", owner):  # ours; leases other tests of this process hold renew as ever
            in_renewal.set()
            finish.wait(30)
            order.append("renewed")
        return real_renew(engine, name, who, **kwargs)

    monkeypatch.setattr(locks, "renew_lock", slow_renew)
    assert storage.take_lease(engine, "export", owner)
    locks._HEARTBEAT._wake.set()  # renew now
    assert in_renewal.wait(30)

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        order.append("forked")
        os.waitpid(pid, 0)

    forker = threading.Thread(target=fork)
    forker.start()
    forker.join(0.5)
    assert forker.is_alive() and order == []  # the fork waits while the renewal runs
    finish.set()
    forker.join(30)
    assert order == ["renewed", "forked"]
    monkeypatch.setattr(locks, "renew_lock", real_renew)
    storage.drop_lease(engine, "export", owner)


def test_an_import_in_progress_is_left_alone_until_its_grace_is_over(engine):
    started = datetime.now(UTC)
    run_id = storage.start_run(engine, "chicago-socrata", as_of=T0, source="import")
    assert storage.take_portal(engine, "chicago-socrata", "cli:elsewhere/1:7", now=started)  # a harvest starts
    storage.drop_lease(engine, "harvest:chicago-socrata", "cli:elsewhere/1:7")
    assert storage.close_orphaned_runs(engine, now=started + timedelta(seconds=storage.LEASE_TTL_S * 2)) == []
    assert storage.runs(engine, portal_key="chicago-socrata").iloc[0]["status"] == "running"
    from storage.orphans import IMPORT_GRACE_S

    assert storage.close_orphaned_runs(engine, now=started + timedelta(seconds=IMPORT_GRACE_S + 10)) == [run_id]


def test_a_renewal_that_races_a_drop_does_not_bring_the_lease_back(engine):
    """The heartbeat copies the held leases, then renews them one by one; a holder may drop its lease in
    between. The renewal then finds no row and must not write one back (it did, with try_lock's upsert: the
    released portal stayed locked for a whole TTL, seen as a flaky heartbeat test on a loaded machine)."""
    owner = storage.process_owner("test")
    assert storage.take_lease(engine, "export", owner, ttl_s=60)
    storage.drop_lease(engine, "export", owner)
    # the beat that copied the lease before the drop now renews it
    assert locks.renew_lock(engine, "export", owner, ttl_s=60, now=datetime.now(UTC)) is False
    assert locks.lock_holders(engine, "export") == {}
    # while held, a renewal moves the expiry on
    assert storage.take_lease(engine, "export", owner, ttl_s=1)
    before = locks.lock_holders(engine, "export")["export"][1]
    assert locks.renew_lock(engine, "export", owner, ttl_s=60, now=datetime.now(UTC)) is True
    assert locks.lock_holders(engine, "export")["export"][1] > before
    storage.drop_lease(engine, "export", owner)
