"""Runs whose process is gone: closed as failed ("interrupted") by the next process that touches the portal.

A harvest run is "running" while its process works on it, and that process holds the portal's lease
(`locks.take_lease`, lock `harvest:<portal>`). When the lease is gone — its holder died on this machine, or
stopped renewing it for `LEASE_TTL_S` — the run can never finish: it is recorded failed with the reason, so the
Harvests page stops showing it as running and the next harvest proceeds. An import holds no lease; its run is
closed once it is older than any import takes (`IMPORT_GRACE_S`).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.db import utc, write_tx
from storage.locks import LEASE_TTL_S, lease_live, lock_holders, take_lease
from storage.models import runs_t

PORTAL_LEASE_PREFIX = "harvest:"  # the scheduler's job ids and lock names share this prefix
# An import (`maturity import`, the demo loader) holds no lease: its run counts as gone only after this long. An
# hour is far above the slowest import (a 12k-item file: ~20 s), so a live import is never closed under itself.
IMPORT_GRACE_S = 3600.0


def portal_lease(portal_key: str) -> str:
    return f"{PORTAL_LEASE_PREFIX}{portal_key}"


def interrupted_reason(now: datetime, how: str = "the harvesting process stopped") -> str:
    return f"interrupted: still running at {utc(now):%Y-%m-%d %H:%M} UTC ({how})"


def close_orphaned_runs(engine: Engine, *, now: datetime | None = None, portal_key: str | None = None,
                        grace_s: float = LEASE_TTL_S) -> list[int]:
    """Record as failed every "running" run (of one portal, or all) whose process is gone; their ids.

    Gone: a harvest run whose portal's lease is held by a dead process or has lapsed, or that has no lease at all
    and started more than `grace_s` ago (a harvest started without one, as tests do, gets the time a lease would
    take to lapse); an import run started more than IMPORT_GRACE_S ago.
    """
    at = utc(now or datetime.now(UTC))
    assert at is not None
    query = sa.select(runs_t.c.id, runs_t.c.portal_key, runs_t.c.started_at, runs_t.c.source).where(
        runs_t.c.status == "running")
    if portal_key is not None:
        query = query.where(runs_t.c.portal_key == portal_key)
    with engine.connect() as conn:
        running = conn.execute(query).all()
    if not running:
        return []
    holders = lock_holders(engine, PORTAL_LEASE_PREFIX)
    orphans = []
    for run_id, key, started, source in running:
        holder = holders.get(portal_lease(key))
        if source != "harvest":
            if utc(started) < at - timedelta(seconds=IMPORT_GRACE_S):
                orphans.append(run_id)
        elif holder is None:
            if utc(started) < at - timedelta(seconds=grace_s):
                orphans.append(run_id)
        elif not lease_live(holder, at):
            orphans.append(run_id)
    return _close(engine, orphans, interrupted_reason(at), at)


def take_portal(engine: Engine, portal_key: str, owner: str, *, now: datetime | None = None) -> bool:
    """Take the portal's lease (see `locks.take_lease`); the portal's harvest runs still "running" then belong to
    a process that is gone, and are closed as interrupted (an import in progress holds no lease and is left
    alone). False if a live process holds it."""
    at = now or datetime.now(UTC)
    if not take_lease(engine, portal_lease(portal_key), owner, now=at):
        return False
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(runs_t.c.id).where(
            runs_t.c.status == "running", runs_t.c.portal_key == portal_key, runs_t.c.source == "harvest")).scalars())
    _close(engine, ids, interrupted_reason(at), at)
    return True


def close_runs_of(engine: Engine, portal_keys: list[str], how: str, *, started_after: datetime,
                  now: datetime | None = None) -> list[int]:
    """This process is stopping (a signal): its portals' runs still "running" → failed, "interrupted (how)"."""
    at = utc(now or datetime.now(UTC))
    assert at is not None
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(runs_t.c.id).where(
            runs_t.c.status == "running", runs_t.c.portal_key.in_(portal_keys),
            runs_t.c.started_at >= utc(started_after))).scalars())
    return _close(engine, ids, interrupted_reason(at, how), at)


def _close(engine: Engine, run_ids: list[int], reason: str, at: datetime) -> list[int]:
    if not run_ids:
        return []
    with write_tx(engine) as conn:  # only runs still running: one finished meanwhile keeps its status
        return sorted(conn.execute(
            sa.update(runs_t).where(runs_t.c.id.in_(run_ids), runs_t.c.status == "running")
            .values(status="failed", error=reason, finished_at=at).returning(runs_t.c.id)).scalars())
