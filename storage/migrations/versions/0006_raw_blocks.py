"""raw blocks: the raw items of a write's key versions stored RAW_BLOCK_ITEMS to a zstd frame; raw hashes as bytes

Adds `raw_blocks` and `dataset_versions.raw_block` / `.raw_at` (item `raw_at` of block `raw_block`), and stores
`raw_hash` as bytes (codec.hash_bytes: 20 for a sha1 digest instead of 40 characters; on PostgreSQL the column
becomes bytea, which rewrites the table once; on SQLite old rows keep their text, which reads as before). Existing
versions keep their per-row raw frames, which stay valid: no raw item is rewritten (the columns are added in place,
with inline references, so SQLite does not rebuild the table). Downgrade puts each block's items back into their
versions' `raw` as per-item frames with the portal's raw dictionary (what 0005 writes and reads).

Revision ID: 0006_raw_blocks
Revises: 0005_compact_history
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage import codec

revision = '0006_raw_blocks'
down_revision = '0005_compact_history'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('raw_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['harvest_runs.id'], name=op.f('fk_raw_blocks_run_id_harvest_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_blocks'))
    )
    op.add_column('dataset_versions', sa.Column('raw_block', sa.Integer(), sa.ForeignKey(
        'raw_blocks.id', name=op.f('fk_dataset_versions_raw_block_raw_blocks')), nullable=True),
        inline_references=True)
    op.add_column('dataset_versions', sa.Column('raw_at', sa.Integer(), nullable=True))
    # The raw hash as bytes (codec.hash_bytes). SQLite stores bytes in the text column as given: old rows keep
    # their text, which models.RawHash reads as it is. PostgreSQL needs bytea: the column is converted.
    if op.get_bind().dialect.name != "sqlite":
        op.execute("ALTER TABLE dataset_versions ALTER COLUMN raw_hash TYPE bytea USING (CASE WHEN raw_hash ~"
                   " '^[0-9a-f]{40}$' THEN decode(raw_hash, 'hex') ELSE convert_to(raw_hash, 'UTF8') END)")


_BLOCKS = ("SELECT b.id, b.data, r.portal_key FROM raw_blocks b JOIN harvest_runs r ON r.id = b.run_id"
           " WHERE b.id > :after ORDER BY b.id LIMIT 50")


def downgrade() -> None:
    conn = op.get_bind()
    codecs: dict[str, codec.Codec] = {}
    after = -1
    while rows := conn.execute(sa.text(_BLOCKS), {"after": after}).all():
        for block in rows:
            packer = codecs.get(block.portal_key)
            if packer is None:
                dicts = conn.execute(sa.text("SELECT id, field, data FROM codec_dictionaries WHERE portal_key = :p"
                                             " ORDER BY id"), {"p": block.portal_key}).all()
                packer = codecs[block.portal_key] = codec.Codec({r.id: bytes(r.data) for r in dicts},
                                                                {r.field: r.id for r in dicts})
            items = packer.unpack_block(bytes(block.data))
            at = conn.execute(sa.text("SELECT id, raw_at FROM dataset_versions WHERE raw_block = :b"),
                              {"b": block.id}).all()
            conn.execute(sa.text("UPDATE dataset_versions SET raw = :raw WHERE id = :id"),
                         [{"id": v.id, "raw": packer.pack(codec.RAW, items[v.raw_at])} for v in at])
        after = rows[-1].id
    if conn.dialect.name == "sqlite":
        conn.execute(sa.text("UPDATE dataset_versions SET raw_hash = CASE WHEN length(raw_hash) = 20 THEN"
                             " lower(hex(raw_hash)) ELSE CAST(raw_hash AS TEXT) END WHERE typeof(raw_hash) = 'blob'"))
    else:
        op.execute("ALTER TABLE dataset_versions ALTER COLUMN raw_hash TYPE varchar(64) USING (CASE WHEN"
                   " length(raw_hash) = 20 THEN encode(raw_hash, 'hex') ELSE convert_from(raw_hash, 'UTF8') END)")
    if conn.dialect.name == "sqlite":  # the inline reference has no name there: the rebuilt table drops it
        with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
            batch_op.drop_column('raw_at')
            batch_op.drop_column('raw_block')
    else:  # PostgreSQL drops a column's foreign key with it
        op.drop_column('dataset_versions', 'raw_at')
        op.drop_column('dataset_versions', 'raw_block')
    op.drop_table('raw_blocks')
