"""Named locks with a time-to-live, atomic under concurrent callers on SQLite and PostgreSQL.

One statement decides: INSERT the lock, or on conflict take it over only if it expired or is ours
(`ON CONFLICT … DO UPDATE … WHERE`). PostgreSQL locks the conflicting row while evaluating the WHERE;
SQLite serializes writers. Whoever gets a row back holds the lock, so no read-then-write race.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.db import is_sqlite, utc, write_tx
from storage.models import locks_t

log = logging.getLogger("maturity.storage")


def try_lock(engine: Engine, name: str, owner: str, *, ttl_s: float, now: datetime) -> bool:
    """Take (or renew, if `owner` holds it) the lock `name` until now + ttl_s; False if someone else holds it."""
    # The two dialects' Insert share the ON CONFLICT API but no base class that declares it.
    insert: Any
    if is_sqlite(engine):
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    at = utc(now)
    assert at is not None  # utc() returns None only for None
    stmt = insert(locks_t).values(name=name, owner=owner, expires_at=at + timedelta(seconds=ttl_s))
    stmt = stmt.on_conflict_do_update(
        index_elements=[locks_t.c.name],
        set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
        where=sa.or_(locks_t.c.expires_at <= at, locks_t.c.owner == owner),
    ).returning(locks_t.c.owner)
    with write_tx(engine) as conn:
        return conn.execute(stmt).scalar_one_or_none() == owner


def renew_lock(engine: Engine, name: str, owner: str, *, ttl_s: float, now: datetime) -> bool:
    """Move the expiry of `name` to now + ttl_s if `owner` still holds it; never takes a lock that is gone.

    The heartbeat renews with this, not with `try_lock`'s upsert: a renewal racing `drop_lease` (the heartbeat
    copied the lease, the holder then released it) would otherwise put the released row back for a whole TTL.
    """
    at = utc(now)
    assert at is not None  # utc() returns None only for None
    with write_tx(engine) as conn:
        done = conn.execute(sa.update(locks_t).where(locks_t.c.name == name, locks_t.c.owner == owner)
                            .values(expires_at=at + timedelta(seconds=ttl_s)))
    return done.rowcount == 1


def release_lock(engine: Engine, name: str, owner: str) -> None:
    """Release `name` if `owner` holds it (a no-op otherwise: an expired lock may have passed to someone else)."""
    with write_tx(engine) as conn:
        conn.execute(sa.delete(locks_t).where(locks_t.c.name == name, locks_t.c.owner == owner))


# --- leases: locks their holder keeps alive ------------------------------------------------------------------
#
# A harvest holds its portal's lock as a lease: short-lived, renewed by one heartbeat thread per process while
# the harvest runs. A holder that dies (kill -9, OOM, power) stops renewing, and its lease is free after
# LEASE_TTL_S instead of a lifetime long enough for the slowest harvest; on the same machine a dead holder is
# seen at once (its pid is gone), so the next harvest does not wait at all.

LEASE_TTL_S = 90.0  # a holder silent this long is gone; well above a stalled renewal (SQLite busy_timeout, GC)
RENEW_EVERY_S = LEASE_TTL_S / 3  # two renewals may fail before the lease lapses


def node() -> str:
    """This machine and PID namespace (containers on one host reuse pids and may share a hostname)."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{ns}"


def process_owner(role: str) -> str:
    """An owner name that says which process holds a lock: `<role>:<node>:<pid>` (a suffix may follow)."""
    return f"{role}:{node()}:{os.getpid()}"


def owner_gone(owner: str) -> bool:
    """True when `owner` names a process on this node that no longer runs; False when alive or unknowable."""
    m = re.search(rf"(?:^|:){re.escape(node())}:(\d+)(?::|$)", owner)
    return m is not None and not _pid_alive(int(m.group(1)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def lock_holders(engine: Engine, prefix: str) -> dict[str, tuple[str, datetime]]:
    """name -> (owner, expires_at) of the locks whose name starts with `prefix`."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(locks_t.c.name, locks_t.c.owner, locks_t.c.expires_at)
                            .where(locks_t.c.name.startswith(prefix, autoescape=True))).all()
    return {name: (owner, utc(expires)) for name, owner, expires in rows}


def lease_live(holder: tuple[str, datetime] | None, now: datetime) -> bool:
    """Whether a lock row (owner, expires_at) still stands for a live holder."""
    if holder is None:
        return False
    owner, expires = holder
    return expires > utc(now) and not owner_gone(owner)


def take_lease(engine: Engine, name: str, owner: str, *, now: datetime | None = None,
               ttl_s: float = LEASE_TTL_S) -> bool:
    """`try_lock` as a lease renewed by this process's heartbeat until `drop_lease`; a holder that died on this
    node is replaced at once."""
    at = now or datetime.now(UTC)
    if not try_lock(engine, name, owner, ttl_s=ttl_s, now=at):
        holder = lock_holders(engine, name).get(name)
        if holder is None or not owner_gone(holder[0]):
            return False
        with write_tx(engine) as conn:  # only that dead owner's row: a live newcomer's is left alone
            conn.execute(sa.delete(locks_t).where(locks_t.c.name == name, locks_t.c.owner == holder[0]))
        if not try_lock(engine, name, owner, ttl_s=ttl_s, now=at):
            return False
    _HEARTBEAT.hold(engine, name, owner, ttl_s)
    return True


@contextmanager
def waited_lease(engine: Engine, name: str, owner: str, *, wait_s: float) -> Iterator[None]:
    """Hold the lease `name` for the block, waiting while another live holder has it (tries at 20 ms, backing off
    to 1 s); TimeoutError after `wait_s`. For work that must not run twice at once but must run: the waiter
    goes after the holder rather than skipping."""
    deadline = time.monotonic() + wait_s
    pause = 0.02
    while not take_lease(engine, name, owner):
        if time.monotonic() > deadline:
            holder = lock_holders(engine, name).get(name)
            raise TimeoutError(f"{name}: held by {holder[0] if holder else 'another process'} for over {wait_s:.0f} s")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
    try:
        yield
    finally:
        drop_lease(engine, name, owner)


def drop_lease(engine: Engine, name: str, owner: str) -> None:
    """Stop renewing and release."""
    _HEARTBEAT.drop(name, owner)
    release_lock(engine, name, owner)


def held_leases() -> list[tuple[Engine, str, str]]:
    """(engine, name, owner) of the leases this process holds."""
    return _HEARTBEAT.held()


class _Heartbeat:
    """One daemon thread per process renewing the leases it holds, every RENEW_EVERY_S."""

    def __init__(self) -> None:
        self._leases: dict[tuple[str, str], tuple[Engine, float]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # held while a renewal runs, and by a fork of this process (`before_fork`): a child forked in the middle
        # of a renewal would inherit SQLite's in-process lock state mid-transaction (it then waits out
        # busy_timeout on every write, or hangs on a mutex); no after-fork hook can reset that state
        self._renewing = threading.Lock()
        self._paused = False

    def hold(self, engine: Engine, name: str, owner: str, ttl_s: float) -> None:
        with self._lock:
            self._leases[name, owner] = (engine, ttl_s)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
                self._thread.start()

    def drop(self, name: str, owner: str) -> None:
        with self._lock:
            self._leases.pop((name, owner), None)

    def held(self) -> list[tuple[Engine, str, str]]:
        with self._lock:
            return [(engine, name, owner) for (name, owner), (engine, _) in self._leases.items()]

    def _run(self) -> None:
        while True:
            self._wake.wait(RENEW_EVERY_S)
            self._wake.clear()
            with self._lock:
                leases = dict(self._leases)
            if not leases:
                continue
            for (name, owner), (engine, ttl_s) in leases.items():
                try:
                    with self._renewing:
                        kept = renew_lock(engine, name, owner, ttl_s=ttl_s, now=datetime.now(UTC))
                except Exception:  # the database away for a moment: the next beat tries again
                    log.warning("lease=%s event=renew-failed", name, exc_info=True)
                    continue
                with self._lock:
                    still_held = (name, owner) in self._leases  # not dropped while this beat ran
                if not kept and still_held:
                    log.error("lease=%s owner=%s event=lease-lost (renewal came too late)", name, owner)
                    self.drop(name, owner)

    def before_fork(self) -> None:
        """A fork waits for a renewal in progress, and none starts until it is done (up to FORK_WAIT_S: a renewal
        queued on the writers' lock behind this very thread must not deadlock it)."""
        self._paused = self._renewing.acquire(timeout=FORK_WAIT_S)

    def after_fork_in_parent(self) -> None:
        if self._paused:
            self._paused = False
            self._renewing.release()

    def after_fork(self) -> None:
        """A forked child holds none of its parent's leases and has no heartbeat thread."""
        self._leases, self._lock, self._thread = {}, threading.Lock(), None
        self._wake = threading.Event()
        self._renewing, self._paused = threading.Lock(), False


FORK_WAIT_S = 5.0  # the longest a fork waits for a lease renewal in progress (one takes milliseconds)
_HEARTBEAT = _Heartbeat()
os.register_at_fork(before=_HEARTBEAT.before_fork, after_in_parent=_HEARTBEAT.after_fork_in_parent,
                    after_in_child=_HEARTBEAT.after_fork)
