"""The SQL side of storage/codec.py: a portal's dictionaries, a run's members and a score's evidence against
their bases. `storage.writes` and `storage.queries` call these; the encodings themselves are codec's.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage import codec
from storage.db import is_sqlite
from storage.models import dictionaries_t, evidence_bases_t, raw_blocks_t, runs_t

# ---------------------------------------------------------------- version dictionaries


def portal_codec(conn: Connection, portal_key: str) -> codec.Codec:
    """The portal's dictionaries (to read any of its frames), its newest one per field for new frames."""
    d = dictionaries_t
    rows = conn.execute(sa.select(d.c.id, d.c.field, d.c.data).where(d.c.portal_key == portal_key)
                        .order_by(d.c.id)).all()
    return codec.Codec({r.id: r.data for r in rows}, {r.field: r.id for r in rows})  # the newest id wins


def trained(base: codec.Codec, run_id: int,
            samples: Mapping[str, Sequence[bytes]]) -> tuple[codec.Codec, list[dict[str, Any]]]:
    """`base` with a dictionary learned from `samples` for each field that has none yet (and enough samples);
    the dictionary rows to insert with the run (`save_dictionaries`)."""
    new: list[dict[str, Any]] = []
    for field, items in samples.items():
        if field in base.current:
            continue
        dict_id = codec.dictionary_id(run_id, field)
        data = codec.train(items, dict_id, codec.min_items(field))
        if data is not None:
            base = base.with_dictionary(field, dict_id, data)
            new.append({"id": dict_id, "run_id": run_id, "field": field, "data": data})
    return base, new


def save_dictionaries(conn: Connection, portal_key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(sa.insert(dictionaries_t), [{**r, "portal_key": portal_key} for r in rows])


# ---------------------------------------------------------------- a changed dataset against its key version

# A version's key version: itself when it is one (base_version NULL), else its base (always a key version).
_KEYS = ("SELECT v.id, k.id AS key_id, k.record, k.raw, k.raw_block, k.raw_at FROM dataset_versions v"
         " JOIN dataset_versions k ON k.id = COALESCE(v.base_version, v.id) WHERE v.id {}")
_KEYS_SQLITE = _KEYS.format("IN (SELECT value FROM json_each(:ids))")
_KEYS_PG = _KEYS.format("= ANY(:ids)")

Key = tuple[int, bytes, bytes]  # a key version's id, record JSON and raw bytes


def _by_ids(conn: Connection, sqlite_sql: str, pg_sql: str, ids: list[int]) -> list[Any]:
    """Rows of a query over a list of version ids: SQLite takes them as one JSON array, PostgreSQL as an array."""
    if is_sqlite(conn):
        return list(conn.execute(sa.text(sqlite_sql), {"ids": orjson.dumps(ids).decode()}).all())
    return list(conn.execute(sa.text(pg_sql), {"ids": ids}).all())


def key_versions(conn: Connection, packer: codec.Codec, version_ids: Iterable[int]) -> dict[int, Key]:
    """{version id: its key version (id, record JSON, raw bytes)} for versions whose key has a raw item."""
    ids = list(version_ids)
    if not ids:
        return {}
    rows = _by_ids(conn, _KEYS_SQLITE, _KEYS_PG, ids)
    in_blocks = block_items(conn, packer, [(r.raw_block, r.raw_at) for r in rows if r.raw is None
                                           and r.raw_block is not None])
    out: dict[int, Key] = {}
    for r in rows:
        raw = packer.unpack(r.raw) if r.raw is not None else in_blocks.get((r.raw_block, r.raw_at))
        if raw is not None:
            out[r.id] = (r.key_id, packer.unpack(r.record), raw)
    return out


_IN_BLOCKS = ("SELECT v.id FROM dataset_versions v JOIN dataset_versions k ON k.id = COALESCE(v.base_version, v.id)"
              " WHERE k.raw IS NULL AND k.raw_block IS NOT NULL AND v.id {}")
_IN_BLOCKS_SQLITE = _IN_BLOCKS.format("IN (SELECT value FROM json_each(:ids))")
_IN_BLOCKS_PG = _IN_BLOCKS.format("= ANY(:ids)")


def keys_in_blocks(conn: Connection, version_ids: Iterable[int]) -> set[int]:
    """Those of the versions whose key version has its raw item in a raw block (reading it decodes the block)."""
    ids = list(version_ids)
    if not ids:
        return set()
    if is_sqlite(conn):
        return set(conn.execute(sa.text(_IN_BLOCKS_SQLITE), {"ids": orjson.dumps(ids).decode()}).scalars())
    return set(conn.execute(sa.text(_IN_BLOCKS_PG), {"ids": ids}).scalars())


_BLOCKS = sa.select(raw_blocks_t.c.id, raw_blocks_t.c.data).where(
    raw_blocks_t.c.id.in_(sa.bindparam("ids", expanding=True)))
BLOCKS_AT_ONCE = 8  # blocks read and decoded per query: ~8 MB of raw items held at a time, whatever is asked


def block_items(conn: Connection, packer: codec.Codec,
                places: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """{(block id, position): raw bytes} of items in raw blocks. Only the items asked for are kept: a block is
    decoded, picked from and dropped, so a re-harvest whose changes touch every block holds a few at a time."""
    wanted: dict[int, list[int]] = {}
    for block, at in places:
        wanted.setdefault(block, []).append(at)
    ids = sorted(wanted)
    out: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(ids), BLOCKS_AT_ONCE):
        for block, data in conn.execute(_BLOCKS, {"ids": ids[start:start + BLOCKS_AT_ONCE]}):
            items = packer.unpack_block(bytes(data))
            out.update(((block, at), items[at]) for at in wanted[block])
    return out


_INSERT_BLOCK = sa.insert(raw_blocks_t).returning(raw_blocks_t.c.id)


def save_raw_blocks(conn: Connection, run_id: int, frames: Sequence[bytes]) -> list[int]:
    """Insert a write's raw blocks (codec.Codec.pack_blocks) in the run's transaction; their ids, in order."""
    return [conn.execute(_INSERT_BLOCK, {"run_id": run_id, "data": frame}).scalar_one() for frame in frames]

_RAWS = ("SELECT v.id, v.raw, v.raw_block, v.raw_at, v.base_version, k.raw AS key_raw, k.raw_block AS key_block,"
         " k.raw_at AS key_at FROM dataset_versions v LEFT JOIN dataset_versions k ON k.id = v.base_version"
         " WHERE v.id {}")
_RAWS_SQLITE = _RAWS.format("IN (SELECT value FROM json_each(:ids))")
_RAWS_PG = _RAWS.format("= ANY(:ids)")


def raws_of(conn: Connection, packer: codec.Codec, version_ids: Iterable[int]) -> dict[int, bytes]:
    """{version id: its raw item's bytes} for versions of one portal (`packer`: `portal_codec`) that have one,
    wherever it is stored: its own frame (with the portal's dictionary, or against its key version's raw item),
    or its place in a raw block (the key version's, for a version stored against it)."""
    ids = list(version_ids)
    if not ids:
        return {}
    rows = _by_ids(conn, _RAWS_SQLITE, _RAWS_PG, ids)
    places = [(r.raw_block, r.raw_at) for r in rows if r.base_version is None and r.raw_block is not None]
    places += [(r.key_block, r.key_at) for r in rows if r.base_version is not None and r.key_block is not None]
    in_blocks = block_items(conn, packer, places)
    out: dict[int, bytes] = {}
    for r in rows:
        if r.base_version is None:
            raw = packer.unpack(r.raw) if r.raw is not None else in_blocks.get((r.raw_block, r.raw_at))
        else:
            key = packer.unpack(r.key_raw) if r.key_raw is not None else in_blocks.get((r.key_block, r.key_at))
            raw = None if r.raw is None or key is None else codec.unpack_against(r.raw, key)
        if raw is not None:
            out[r.id] = raw
    return out


def smaller(full: tuple[bytes, bytes, int | None], record: bytes, raw: bytes,
            key: Key) -> tuple[bytes, bytes, int | None]:
    """The payload of a changed version: against its dataset's key version, unless that costs more than
    codec.BASE_SHARE of the version in full (then it is a new key version)."""
    against = (codec.pack_against(record, key[1]), codec.pack_against(raw, key[2]), key[0])
    if len(against[0]) + len(against[1]) > codec.BASE_SHARE * (len(full[0]) + len(full[1])):
        return full
    return against


def version_bytes(packer: codec.Codec, blob: bytes, key_blob: bytes | None) -> bytes:
    """A version's record bytes (or raw bytes stored in a frame: `raws_of` reads them wherever they are) from its
    frame and, for a version stored against its key version, the key version's frame of the same field."""
    return packer.unpack(blob) if key_blob is None else codec.unpack_against(blob, packer.unpack(key_blob))


# ---------------------------------------------------------------- members


_NEWEST_MEMBERS_BASE = (sa.select(runs_t.c.id, runs_t.c.members)
                        .where(runs_t.c.portal_key == sa.bindparam("portal_key"), runs_t.c.members.is_not(None),
                               runs_t.c.members_base.is_(None), runs_t.c.id != sa.bindparam("run_id"))
                        .order_by(runs_t.c.id.desc()).limit(1))


def encode_members(conn: Connection, portal_key: str, run_id: int, ids: Iterable[str], *,
                   may_be_base: bool) -> dict[str, Any]:
    """The `members` and `members_base` columns for a run's ids: the change against the portal's newest base,
    or the full list when there is no base yet, or when the change would cost more than half a list
    (codec.needs_base) and the run may become a base (a complete crawl: partial and empty crawls are never
    what later runs are stored against)."""
    ids = list(ids)
    base = conn.execute(_NEWEST_MEMBERS_BASE, {"portal_key": portal_key, "run_id": run_id}).one_or_none()
    if base is not None:
        added, dropped = codec.ids_delta(ids, codec.decode_ids(base.members))
        if not (may_be_base and codec.needs_base(len(added) + len(dropped), len(ids))):
            return {"members": codec.encode_ids_delta(added, dropped), "members_base": base.id}
    return {"members": codec.encode_ids(ids), "members_base": None}


# Built once: a run's harvest judges it against the portal's earlier runs with this, and constructing the
# statement (and its cache key) per call cost more than SQLite takes to run it for a small portal.
_base = runs_t.alias("base")
_MEMBERS_OF = (sa.select(runs_t.c.id, runs_t.c.members, runs_t.c.members_base, _base.c.members.label("base_members"))
               .outerjoin(_base, _base.c.id == runs_t.c.members_base)
               .where(runs_t.c.id.in_(sa.bindparam("run_ids", expanding=True))))


def members_of(conn: Connection, run_ids: Iterable[int]) -> dict[int, list[str]]:
    """{run_id: its sorted member ids} for runs that stored members (a running or failed run has none)."""
    run_ids = list(run_ids)
    if not run_ids:
        return {}
    rows = conn.execute(_MEMBERS_OF, {"run_ids": run_ids}).all()
    bases: dict[int, list[str]] = {}
    out: dict[int, list[str]] = {}
    for row in rows:
        if row.members is None:
            continue
        if row.members_base is None:
            out[row.id] = codec.decode_ids(row.members)
            continue
        if row.members_base not in bases:
            bases[row.members_base] = codec.decode_ids(row.base_members)
        out[row.id] = codec.apply_ids_delta(row.members, bases[row.members_base])
    return out


# ---------------------------------------------------------------- score evidence


def newest_evidence_bases(conn: Connection, city_key: str) -> dict[str, tuple[int, codec.StoredEvidence]]:
    """{indicator: (base id, its stored evidence)} of the city's newest evidence base per indicator."""
    e = evidence_bases_t
    newest = (sa.select(sa.func.max(e.c.id)).where(e.c.city_key == city_key).group_by(e.c.indicator)
              .scalar_subquery())
    rows = conn.execute(sa.select(e.c.id, e.c.indicator, e.c.evidence).where(e.c.id.in_(newest))).all()
    return {r.indicator: (r.id, codec.StoredEvidence(bytes(r.evidence))) for r in rows}


def encode_evidence(conn: Connection, city_key: str, indicator: str, evidence: Mapping[str, Any],
                    bases: dict[str, tuple[int, codec.StoredEvidence]], *, may_be_base: bool) -> dict[str, Any]:
    """The `failing` and `evidence_base` columns of a score's evidence: the change against the indicator's newest
    base, or against a new base written now (none yet, or a change worth more than half the evidence and the
    score may be a base: one of complete crawls). `bases` (newest_evidence_bases) is updated."""
    text = codec.evidence_json(evidence)
    known = bases.get(indicator)
    if known is not None:
        # Most scorings find most indicators' evidence as their base has it: the same text, found without
        # decoding the base or comparing entry by entry.
        if text == known[1].json():
            delta: dict[str, Any] | None = codec.unchanged_delta(evidence)
        else:
            delta = codec.evidence_delta(evidence, known[1].evidence, any_size=not may_be_base)
        # A flagged score (of a partial crawl) never renews the base: its change or, when smaller (a partial
        # crawl drops many entries) or a change cannot say the order, its evidence in full outside the bases.
        if not may_be_base:
            full = codec.pack(text)
            change = None if delta is None else codec.encode_evidence(delta)
            if change is None or len(full) <= len(change):
                return {"failing": full, "evidence_base": None}
            return {"failing": change, "evidence_base": known[0]}
        if delta is not None:
            return {"failing": codec.encode_evidence(delta), "evidence_base": known[0]}
    blob = codec.pack(text)
    base_id = conn.execute(sa.insert(evidence_bases_t).returning(evidence_bases_t.c.id), {
        "city_key": city_key, "indicator": indicator, "evidence": blob}).scalar_one()
    bases[indicator] = (base_id, codec.StoredEvidence(blob))
    return {"failing": codec.encode_evidence(codec.unchanged_delta(evidence)), "evidence_base": base_id}


def decode_evidence(failing: bytes | None, base: bytes | None) -> dict[str, Any]:
    """A score's evidence from its `failing` column and its base's `evidence` (None: `failing` is in full)."""
    if base is None:
        return codec.decode_evidence(failing)
    return codec.apply_evidence_delta(failing or b"", codec.decode_evidence(base))
