"""catalog snapshots: a portal's catalog table as its last scoring built it, one row a portal (a cache)

Revision ID: 0007_catalog_snapshots
Revises: 0006_raw_blocks
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_catalog_snapshots'
down_revision = '0006_raw_blocks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_snapshots',
    sa.Column('portal_key', sa.String(length=100), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['portal_key'], ['portals.key'], name=op.f('fk_catalog_snapshots_portal_key_portals')),
    sa.PrimaryKeyConstraint('portal_key', name=op.f('pk_catalog_snapshots'))
    )


def downgrade() -> None:
    op.drop_table('catalog_snapshots')
