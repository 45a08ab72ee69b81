"""compact history: versions as zstd frames with per-portal dictionaries, members and evidence as changes

Converts a database in place (storage/codec.py holds the encodings): every version's record (text) and raw
(zlib) become zstd frames, with a dictionary per portal and field learned from its first versions
(`codec_dictionaries`), each a key version (`dataset_versions.base_version` NULL: new writes store a changed
dataset against its key version); every run's members (zlib of the full list) become a change against a base run
(`harvest_runs.members_base`), and every score's evidence (zlib JSON) a change against a base
(`evidence_bases`, `scores.evidence_base`), by the rules a new write follows. Downgrade converts back.

The conversion reads and writes in batches (BATCH rows), so a large history never sits in memory at once.

Revision ID: 0005_compact_history
Revises: 0002_item_errors
Create Date: 2026-11-30
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from storage import codec

revision = '0005_compact_history'
down_revision = '0002_item_errors'
branch_labels = None
depends_on = None

BATCH = 2_000


def upgrade() -> None:
    op.create_table('codec_dictionaries',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('portal_key', sa.String(length=100), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=10), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['portal_key'], ['portals.key'], name=op.f('fk_codec_dictionaries_portal_key_portals')),
    sa.ForeignKeyConstraint(['run_id'], ['harvest_runs.id'], name=op.f('fk_codec_dictionaries_run_id_harvest_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_codec_dictionaries'))
    )
    with op.batch_alter_table('codec_dictionaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_codec_dictionaries_portal_key'), ['portal_key'], unique=False)
    op.create_table('evidence_bases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('city_key', sa.String(length=64), nullable=False),
    sa.Column('indicator', sa.String(length=100), nullable=False),
    sa.Column('evidence', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['city_key'], ['cities.key'], name=op.f('fk_evidence_bases_city_key_cities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_bases'))
    )
    with op.batch_alter_table('evidence_bases', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_bases_city_indicator', ['city_key', 'indicator'], unique=False)
    with op.batch_alter_table('harvest_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('members_base', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_harvest_runs_members_base_harvest_runs'), 'harvest_runs',
                                    ['members_base'], ['id'])
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_base', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_scores_evidence_base_evidence_bases'), 'evidence_bases',
                                    ['evidence_base'], ['id'])
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.alter_column('record', existing_type=sa.Text(), type_=sa.LargeBinary(),
                              postgresql_using="convert_to(record, 'UTF8')")
        batch_op.add_column(sa.Column('base_version', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_dataset_versions_base_version_dataset_versions'),
                                    'dataset_versions', ['base_version'], ['id'])
    conn = op.get_bind()
    _compact_versions(conn)
    _compact_members(conn)
    _compact_evidence(conn)


def downgrade() -> None:
    conn = op.get_bind()
    _expand_versions(conn)
    _expand_members(conn)
    _expand_evidence(conn)
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_dataset_versions_base_version_dataset_versions'), type_='foreignkey')
        batch_op.drop_column('base_version')
        batch_op.alter_column('record', existing_type=sa.LargeBinary(), type_=sa.Text(),
                              postgresql_using="convert_from(record, 'UTF8')")
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_scores_evidence_base_evidence_bases'), type_='foreignkey')
        batch_op.drop_column('evidence_base')
    with op.batch_alter_table('harvest_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_harvest_runs_members_base_harvest_runs'), type_='foreignkey')
        batch_op.drop_column('members_base')
    with op.batch_alter_table('evidence_bases', schema=None) as batch_op:
        batch_op.drop_index('ix_evidence_bases_city_indicator')
    op.drop_table('evidence_bases')
    with op.batch_alter_table('codec_dictionaries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_codec_dictionaries_portal_key'))
    op.drop_table('codec_dictionaries')


def _batches(conn: sa.Connection, sql: str, **params: Any) -> Iterator[list[Any]]:
    """Rows of `sql` (which orders by id and takes :after and :n) in id order, BATCH at a time."""
    after = -1
    while True:
        rows = conn.execute(sa.text(sql), {**params, "after": after, "n": BATCH}).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _text(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)  # SQLite keeps old text as text


_PORTAL_VERSIONS = ("SELECT v.id, v.run_id, v.record, v.raw FROM dataset_versions v"
                    " JOIN datasets d ON d.id = v.dataset_id"
                    " WHERE d.portal_key = :portal AND v.id > :after ORDER BY v.id LIMIT :n")


def _compact_versions(conn: sa.Connection) -> None:
    for (portal,) in conn.execute(sa.text("SELECT key FROM portals ORDER BY key")).all():
        first = next(_batches(conn, _PORTAL_VERSIONS, portal=portal), [])
        if not first:
            continue
        # The dictionaries are learned from the portal's first versions, as its first large write does now.
        packer = codec.Codec()
        for field, items in ((codec.RAW, [zlib.decompress(r.raw) for r in first if r.raw is not None]),
                             (codec.RECORD, [_text(r.record) for r in first])):
            dict_id = codec.dictionary_id(first[0].run_id, field)
            data = codec.train(items, dict_id)
            if data is not None:
                packer = packer.with_dictionary(field, dict_id, data)
                conn.execute(sa.text("INSERT INTO codec_dictionaries (id, portal_key, run_id, field, data)"
                                     " VALUES (:id, :portal, :run, :field, :data)"),
                             {"id": dict_id, "portal": portal, "run": first[0].run_id, "field": field, "data": data})
        for rows in _batches(conn, _PORTAL_VERSIONS, portal=portal):
            conn.execute(sa.text("UPDATE dataset_versions SET record = :record, raw = :raw WHERE id = :id"), [
                {"id": r.id, "record": packer.pack(codec.RECORD, _text(r.record)),
                 "raw": None if r.raw is None else packer.pack(codec.RAW, zlib.decompress(r.raw))} for r in rows])


def _portal_codec(conn: sa.Connection, portal: str) -> codec.Codec:
    rows = conn.execute(sa.text("SELECT id, field, data FROM codec_dictionaries WHERE portal_key = :p ORDER BY id"),
                        {"p": portal}).all()
    return codec.Codec({r.id: bytes(r.data) for r in rows}, {r.field: r.id for r in rows})


def _read(packer: codec.Codec, blob: Any, key: Any) -> bytes:
    return packer.unpack(bytes(blob)) if key is None else codec.unpack_against(bytes(blob), packer.unpack(bytes(key)))


_EXPAND_VERSIONS = ("SELECT v.id, v.record, v.raw, k.record AS key_record, k.raw AS key_raw"
                    " FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
                    " LEFT JOIN dataset_versions k ON k.id = v.base_version"
                    " WHERE d.portal_key = :portal AND v.id > :after ORDER BY v.id LIMIT :n")


def _expand_versions(conn: sa.Connection) -> None:
    """Versions stored against a key version first (their keys are still frames), then the key versions."""
    for (portal,) in conn.execute(sa.text("SELECT key FROM portals ORDER BY key")).all():
        packer = _portal_codec(conn, portal)
        for keys_too in (False, True):
            for rows in _batches(conn, _EXPAND_VERSIONS, portal=portal):
                updates = [{"id": r.id, "record": _read(packer, r.record, r.key_record),
                            "raw": None if r.raw is None else zlib.compress(_read(packer, r.raw, r.key_raw), 1)}
                           for r in rows if (r.key_record is None) == keys_too]
                if updates:
                    conn.execute(sa.text("UPDATE dataset_versions SET record = :record, raw = :raw WHERE id = :id"),
                                 updates)


_RUNS = ("SELECT id, portal_key, status, members, members_base FROM harvest_runs WHERE id > :after"
         " ORDER BY id LIMIT :n")


def _compact_members(conn: sa.Connection) -> None:
    """Each run in id order against its portal's newest base, as storage.compact.encode_members decides."""
    bases: dict[str, tuple[int, list[str]]] = {}
    for rows in _batches(conn, _RUNS):
        updates = []
        for r in rows:
            if r.members is None:
                continue
            text = zlib.decompress(r.members).decode("utf-8")
            ids = text.split("\n") if text else []
            base = bases.get(r.portal_key)
            if base is not None:
                added, dropped = codec.ids_delta(ids, base[1])
                if not (r.status == "ok" and codec.needs_base(len(added) + len(dropped), len(ids))):
                    updates.append({"id": r.id, "members": codec.encode_ids_delta(added, dropped), "base": base[0]})
                    continue
            bases[r.portal_key] = (r.id, sorted(ids))
            updates.append({"id": r.id, "members": codec.encode_ids(ids), "base": None})
        if updates:
            conn.execute(sa.text("UPDATE harvest_runs SET members = :members, members_base = :base WHERE id = :id"),
                         updates)


def _expand_members(conn: sa.Connection) -> None:
    # Bases first read, then the deltas rewritten, then the bases (a delta may name a base stored after it).
    fulls = {r.id: codec.decode_ids(bytes(r.members)) for r in conn.execute(sa.text(
        "SELECT id, members FROM harvest_runs WHERE members IS NOT NULL AND members_base IS NULL")).all()}
    for rows in _batches(conn, _RUNS):
        updates = [{"id": r.id, "members": _zlib_ids(codec.apply_ids_delta(bytes(r.members), fulls[r.members_base]))}
                   for r in rows if r.members is not None and r.members_base is not None]
        if updates:
            conn.execute(sa.text("UPDATE harvest_runs SET members = :members, members_base = NULL WHERE id = :id"),
                         updates)
    if fulls:
        conn.execute(sa.text("UPDATE harvest_runs SET members = :members WHERE id = :id"),
                     [{"id": i, "members": _zlib_ids(ids)} for i, ids in fulls.items()])


def _zlib_ids(ids: list[str]) -> bytes:
    return zlib.compress("\n".join(sorted(ids)).encode("utf-8"))


_SCORES = ("SELECT id, city_key, indicator, flag, failing, evidence_base FROM scores"
           " WHERE failing IS NOT NULL AND id > :after ORDER BY id LIMIT :n")


def _compact_evidence(conn: sa.Connection) -> None:
    """Each score with evidence, in id order, against the newest base of its city and indicator, as
    storage.compact.encode_evidence decides (scores of one date are stored together, dates in scoring order)."""
    bases: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for rows in _batches(conn, _SCORES):
        updates = []
        for r in rows:
            evidence = orjson.loads(zlib.decompress(r.failing))
            key = (r.city_key, r.indicator)
            known = bases.get(key)
            delta = None if known is None else codec.evidence_delta(evidence, known[1], any_size=r.flag is not None)
            if known is not None and (delta is not None or r.flag is not None):
                full, change = codec.encode_evidence(evidence), None if delta is None else codec.encode_evidence(delta)
                if change is None or (r.flag is not None and len(full) <= len(change)):
                    updates.append({"id": r.id, "failing": full, "base": None})  # as compact.encode_evidence
                else:
                    updates.append({"id": r.id, "failing": change, "base": known[0]})
                continue
            base_id = conn.execute(sa.text("INSERT INTO evidence_bases (city_key, indicator, evidence)"
                                           " VALUES (:c, :i, :e) RETURNING id"),
                                   {"c": r.city_key, "i": r.indicator, "e": codec.encode_evidence(evidence)})
            bases[key] = (base_id.scalar_one(), evidence)
            unchanged = codec.evidence_delta(evidence, evidence) or {}
            updates.append({"id": r.id, "failing": codec.encode_evidence(unchanged), "base": bases[key][0]})
        if updates:
            conn.execute(sa.text("UPDATE scores SET failing = :failing, evidence_base = :base WHERE id = :id"), updates)


def _expand_evidence(conn: sa.Connection) -> None:
    bases = {r.id: codec.decode_evidence(bytes(r.evidence))
             for r in conn.execute(sa.text("SELECT id, evidence FROM evidence_bases")).all()}
    for rows in _batches(conn, _SCORES):
        updates = []
        for r in rows:
            evidence = (codec.decode_evidence(bytes(r.failing)) if r.evidence_base is None
                        else codec.apply_evidence_delta(bytes(r.failing), bases[r.evidence_base]))
            blob = zlib.compress(orjson.dumps(evidence, option=orjson.OPT_NON_STR_KEYS))
            updates.append({"id": r.id, "failing": blob})
        if updates:
            conn.execute(sa.text("UPDATE scores SET failing = :failing, evidence_base = NULL WHERE id = :id"), updates)
