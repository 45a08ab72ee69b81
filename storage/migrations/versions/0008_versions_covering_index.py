"""versions index covers the versions pass: (dataset_id, as_of, id, data_modified)

The catalog's pass over its datasets' versions (storage.queries._latest_versions) reads dataset_id, id, as_of
and data_modified of every version up to a date. With all four in the index it reads the index alone, not each
version's row beside its record blob. It replaces ix_dataset_versions_dataset_as_of (dataset_id, as_of), which
leads it; id stays third, so the writer's "newest version at a date" (ORDER BY as_of DESC, id DESC LIMIT 1) is
still read in index order.

Revision ID: 0008_versions_covering_index
Revises: 0007_catalog_snapshots
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op

revision = '0008_versions_covering_index'
down_revision = '0007_catalog_snapshots'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_dataset_versions_dataset_as_of_modified', 'dataset_versions',
                    ['dataset_id', 'as_of', 'id', 'data_modified'], unique=False)
    op.drop_index('ix_dataset_versions_dataset_as_of', table_name='dataset_versions')


def downgrade() -> None:
    op.create_index('ix_dataset_versions_dataset_as_of', 'dataset_versions', ['dataset_id', 'as_of'], unique=False)
    op.drop_index('ix_dataset_versions_dataset_as_of_modified', table_name='dataset_versions')
