"""crawl status: runs may be "empty" (0 datasets); scores carry the flag of the crawl they stand on

A run is complete ("ok"), partial ("suspect"), empty or failed (storage/crawls.py); a score computed from a
partial or empty crawl is stored with `flag` = "partial" / "empty" and left out of every line, delta and
"latest" value by the queries. Existing scores get no flag: `maturity score --all` recomputes them (and their
flags) under the new rule; runs are judged again by the next import or harvest of their portal.

Revision ID: 0002_crawl_status
Revises: 0002_schema_checks
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_crawl_status'
down_revision = '0002_schema_checks'  # both were written in parallel: chained
branch_labels = None
depends_on = None

OLD = "status IN ('running', 'ok', 'suspect', 'failed')"
NEW = "status IN ('running', 'ok', 'suspect', 'empty', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table('harvest_runs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_harvest_runs_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_harvest_runs_status'), NEW)
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flag', sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_column('flag')
    op.execute("UPDATE harvest_runs SET status = 'suspect' WHERE status = 'empty'")
    with op.batch_alter_table('harvest_runs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_harvest_runs_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_harvest_runs_status'), OLD)
