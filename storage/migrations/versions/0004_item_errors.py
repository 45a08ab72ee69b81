"""item_errors: raw items a run set aside because they could not be normalized, with the error

Revision ID: 0002_item_errors
Revises: 0002_crawl_status
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_item_errors'
down_revision = '0002_crawl_status'  # written in parallel with 0002 and 0003: chained after them
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('item_errors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['harvest_runs.id'], name=op.f('fk_item_errors_run_id_harvest_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_errors'))
    )
    with op.batch_alter_table('item_errors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_errors_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('item_errors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_errors_run_id'))
    op.drop_table('item_errors')
