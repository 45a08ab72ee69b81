"""Named locks with a time-to-live, atomic under concurrent callers on SQLite and PostgreSQL.

One statement decides: INSERT the lock, or on conflict take it over only if it expired or is ours
(`ON CONFLICT … DO UPDATE … WHERE`). PostgreSQL locks the conflicting row while evaluating the WHERE;
SQLite serializes writers. Whoever gets a row back holds the lock, so no read-then-write race.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.db import is_sqlite, utc, write_tx
from storage.models import locks_t


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


def release_lock(engine: Engine, name: str, owner: str) -> None:
    """Release `name` if `owner` holds it (a no-op otherwise: an expired lock may have passed to someone else)."""
    with write_tx(engine) as conn:
        conn.execute(sa.delete(locks_t).where(locks_t.c.name == name, locks_t.c.owner == owner))
