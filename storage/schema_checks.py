"""A run's schema check (data.json against POD v1.1) stored as data: one row per run, one per dataset with errors.

Written inside `save_harvest`'s transaction, so a run and its check land together; read back as the
connectors' own `SchemaCheck` (the shared contract), never parsed from text.
"""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connectors.base import SchemaCheck
from storage.models import schema_checks_t, schema_errors_t


def save_schema_check(conn: Connection, run_id: int, check: SchemaCheck | None) -> None:
    """Store (or replace) the check of a run; nothing when the connector reported none."""
    if check is None:
        return
    conn.execute(sa.delete(schema_errors_t).where(schema_errors_t.c.run_id == run_id))
    conn.execute(sa.delete(schema_checks_t).where(schema_checks_t.c.run_id == run_id))
    conn.execute(sa.insert(schema_checks_t), {"run_id": run_id, "schema_name": check.schema,
                                              "entries": check.entries, "error_count": check.error_count})
    rows = [{"run_id": run_id, "source_id": sid, "messages": list(msgs)} for sid, msgs in check.errors.items()]
    if rows:
        conn.execute(sa.insert(schema_errors_t), rows)


def schema_checks(conn: Connection, run_ids: Iterable[int]) -> dict[int, SchemaCheck]:
    """run_id -> its stored check, for the runs that have one."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    c, e = schema_checks_t, schema_errors_t
    heads = conn.execute(sa.select(c.c.run_id, c.c.schema_name, c.c.entries, c.c.error_count)
                         .where(c.c.run_id.in_(ids))).all()
    errors: dict[int, dict[str, tuple[str, ...]]] = {}
    for run_id, sid, msgs in conn.execute(sa.select(e.c.run_id, e.c.source_id, e.c.messages)
                                          .where(e.c.run_id.in_(ids)).order_by(e.c.run_id, e.c.id)):
        errors.setdefault(run_id, {})[sid] = tuple(str(m) for m in msgs or ())
    return {h.run_id: SchemaCheck(schema=h.schema_name, entries=h.entries, error_count=h.error_count,
                                  errors=errors.get(h.run_id, {})) for h in heads}
