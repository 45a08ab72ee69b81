"""initial schema: cities, portals, harvest runs, change-only dataset history, scores, evidence, audit, locks

Datetimes are `DateTime(timezone=True)` here; the models wrap them in `UTCDateTime` (naive UTC on SQLite).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('cities',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_cities'))
    )
    op.create_table('locks',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_locks'))
    )
    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('city_key', sa.String(length=64), nullable=False),
    sa.Column('criterion', sa.String(length=20), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=True),
    sa.Column('date', sa.String(length=10), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['city_key'], ['cities.key'], name=op.f('fk_evidence_city_key_cities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence'))
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_city_key'), ['city_key'], unique=False)

    op.create_table('portals',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('city_key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['city_key'], ['cities.key'], name=op.f('fk_portals_city_key_cities')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_portals'))
    )
    with op.batch_alter_table('portals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portals_city_key'), ['city_key'], unique=False)

    op.create_table('scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('city_key', sa.String(length=64), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('criterion', sa.String(length=20), nullable=False),
    sa.Column('indicator', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('numerator', sa.Float(), nullable=True),
    sa.Column('denominator', sa.Float(), nullable=True),
    sa.Column('stage', sa.String(length=20), nullable=True),
    sa.Column('failing', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['city_key'], ['cities.key'], name=op.f('fk_scores_city_key_cities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scores')),
    sa.UniqueConstraint('city_key', 'as_of', 'criterion', 'indicator',
                        name=op.f('uq_scores_city_key_as_of_criterion_indicator'))
    )
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.create_index('ix_scores_city_indicator_as_of', ['city_key', 'indicator', 'as_of'], unique=False)

    op.create_table('harvest_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_key', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('items', sa.Integer(), nullable=True),
    sa.Column('reported_total', sa.Integer(), nullable=True),
    sa.Column('repeats', sa.Integer(), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('new_versions', sa.Integer(), nullable=True),
    sa.Column('removed', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('suspect_reason', sa.Text(), nullable=True),
    sa.Column('notes', sa.JSON(), nullable=True),
    sa.Column('members', sa.LargeBinary(), nullable=True),
    sa.CheckConstraint("source IN ('harvest', 'import')", name=op.f('ck_harvest_runs_source')),
    sa.CheckConstraint("status IN ('running', 'ok', 'suspect', 'failed')", name=op.f('ck_harvest_runs_status')),
    sa.ForeignKeyConstraint(['portal_key'], ['portals.key'], name=op.f('fk_harvest_runs_portal_key_portals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_harvest_runs'))
    )
    with op.batch_alter_table('harvest_runs', schema=None) as batch_op:
        batch_op.create_index('ix_harvest_runs_portal_as_of', ['portal_key', 'as_of'], unique=False)

    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_key', sa.String(length=100), nullable=False),
    sa.Column('source_id', sa.String(length=300), nullable=False),
    sa.Column('first_run_id', sa.Integer(), nullable=False),
    sa.Column('last_run_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['first_run_id'], ['harvest_runs.id'], name=op.f('fk_datasets_first_run_id_harvest_runs')),
    sa.ForeignKeyConstraint(['last_run_id'], ['harvest_runs.id'], name=op.f('fk_datasets_last_run_id_harvest_runs')),
    sa.ForeignKeyConstraint(['portal_key'], ['portals.key'], name=op.f('fk_datasets_portal_key_portals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('portal_key', 'source_id', name=op.f('uq_datasets_portal_key_source_id'))
    )
    op.create_table('dataset_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('raw_hash', sa.String(length=64), nullable=True),
    sa.Column('data_modified', sa.DateTime(timezone=True), nullable=True),
    sa.Column('record', sa.Text(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_dataset_versions_dataset_id_datasets')),
    sa.ForeignKeyConstraint(['run_id'], ['harvest_runs.id'], name=op.f('fk_dataset_versions_run_id_harvest_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_versions'))
    )
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.create_index('ix_dataset_versions_dataset_as_of', ['dataset_id', 'as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_versions_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_versions_run_id'))
        batch_op.drop_index('ix_dataset_versions_dataset_as_of')

    op.drop_table('dataset_versions')
    op.drop_table('datasets')
    with op.batch_alter_table('harvest_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_harvest_runs_portal_as_of')

    op.drop_table('harvest_runs')
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_index('ix_scores_city_indicator_as_of')

    op.drop_table('scores')
    with op.batch_alter_table('portals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portals_city_key'))

    op.drop_table('portals')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_city_key'))

    op.drop_table('evidence')
    op.drop_table('locks')
    op.drop_table('cities')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
