"""data.json schema checks as data: tables schema_checks and schema_errors, filled from old run notes

The DCAT connector used to write "schema_errors=N" into a run's notes, which queries parsed back. The count
of each such run moves into schema_checks (entries = the run's items; per-dataset messages were not kept
by dataset then, so old runs have none). The notes themselves are left as they were.

Revision ID: 0002_schema_checks
Revises: 0001
Create Date: 2026-11-30
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = '0002_schema_checks'
down_revision = '0001'
branch_labels = None
depends_on = None

_OLD_NOTE = re.compile(r"^schema_errors=(\d+)$")
_POD = "POD v1.1 non-federal"


def upgrade() -> None:
    op.create_table('schema_checks',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('schema_name', sa.String(length=100), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['harvest_runs.id'], name=op.f('fk_schema_checks_run_id_harvest_runs')),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_schema_checks'))
    )
    op.create_table('schema_errors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.String(length=300), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['schema_checks.run_id'],
                            name=op.f('fk_schema_errors_run_id_schema_checks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schema_errors')),
    sa.UniqueConstraint('run_id', 'source_id', name=op.f('uq_schema_errors_run_id_source_id'))
    )
    # One-time move of the old text notes into the table (the only place that still reads them).
    runs = sa.table('harvest_runs', sa.column('id', sa.Integer), sa.column('items', sa.Integer),
                    sa.column('notes', sa.JSON))
    checks = sa.table('schema_checks', sa.column('run_id', sa.Integer), sa.column('schema_name', sa.String),
                      sa.column('entries', sa.Integer), sa.column('error_count', sa.Integer))
    conn = op.get_bind()
    rows = []
    for run_id, items, notes in conn.execute(sa.select(runs.c.id, runs.c['items'], runs.c.notes)
                                             .where(runs.c.notes.is_not(None))):
        for note in notes or ():
            m = _OLD_NOTE.match(str(note).strip())
            if m:
                rows.append({"run_id": run_id, "schema_name": _POD, "entries": items or 0,
                             "error_count": int(m.group(1))})
                break
    if rows:
        conn.execute(sa.insert(checks), rows)


def downgrade() -> None:
    op.drop_table('schema_errors')
    op.drop_table('schema_checks')
