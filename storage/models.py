"""Tables (SQLAlchemy 2 typed models). The schema itself is created by Alembic (`storage/migrations`).

History is change-only: `dataset_versions` gets a row only when a dataset's raw hash differs from its
version valid at the run's `as_of`; a run keeps the ids it saw in one compressed `members` blob, not a
row per dataset per run, and that blob is a change against a base run's full list (storage/codec.py says how
every blob is encoded, storage/compact.py finds the bases and dictionaries).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.codec import hash_bytes, hash_text

# Named constraints, so migrations (and SQLite batch mode, which rebuilds tables) can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# "ok" = a complete crawl, "suspect" = a partial one, "empty" = 0 datasets (storage/crawls.py says how runs are judged).
RUN_STATUSES = ("running", "ok", "suspect", "empty", "failed")
SCORE_FLAGS = ("partial", "empty")  # scores.flag: the crawl a score stands on was not complete (NULL: it was)
RUN_SOURCES = ("harvest", "import")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on both backends.

    SQLite has no time zone type: values are stored as naive UTC text in one fixed format, so text order
    is time order (the catalog query compares `as_of` in SQL). PostgreSQL stores `timestamptz`.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RawHash(sa.TypeDecorator[str]):
    """A raw item's hash as text in Python, stored as bytes (codec.hash_bytes: a sha1 digest in 20 bytes, not
    40 characters). PostgreSQL: bytea. SQLite: the column keeps its declared text type, which stores bytes as
    they are given, so versions written before migration 0006 keep their text and read as before."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(sa.String(64) if dialect.name == "sqlite" else sa.LargeBinary())

    def process_bind_param(self, value: str | bytes | None, dialect: sa.Dialect) -> bytes | None:
        return None if value is None else hash_bytes(value)

    def process_result_value(self, value: bytes | str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else hash_text(value)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class City(Base):
    __tablename__ = "cities"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))


class Portal(Base):
    __tablename__ = "portals"
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    city_key: Mapped[str] = mapped_column(sa.ForeignKey("cities.key"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    url: Mapped[str] = mapped_column(sa.String(500))


class HarvestRun(Base):
    __tablename__ = "harvest_runs"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
        sa.CheckConstraint(f"source IN {RUN_SOURCES!r}", name="source"),
        # catalog(): latest ok/suspect run of a portal at/before a date; runs(): newest first per portal.
        sa.Index("ix_harvest_runs_portal_as_of", "portal_key", "as_of"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    portal_key: Mapped[str] = mapped_column(sa.ForeignKey("portals.key"))
    source: Mapped[str] = mapped_column(sa.String(10), default="harvest")
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(10), default="running")
    items: Mapped[int | None] = mapped_column(sa.Integer)
    reported_total: Mapped[int | None] = mapped_column(sa.Integer)
    repeats: Mapped[int | None] = mapped_column(sa.Integer)
    pages: Mapped[int | None] = mapped_column(sa.Integer)
    new_versions: Mapped[int | None] = mapped_column(sa.Integer)
    removed: Mapped[int | None] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.Text)
    suspect_reason: Mapped[str | None] = mapped_column(sa.Text)
    notes: Mapped[Any | None] = mapped_column(sa.JSON)
    # The source_ids this run saw. members_base NULL: the full sorted list (codec.encode_ids), a base for later
    # runs; else the ids added and dropped against that base run's list (codec.encode_ids_delta): an unchanged
    # run stores a few bytes. A base is always a full list, so no chain is ever replayed; runs are never
    # deleted and the foreign key keeps a base while a delta names it.
    members: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    members_base: Mapped[int | None] = mapped_column(sa.ForeignKey("harvest_runs.id"))


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (sa.UniqueConstraint("portal_key", "source_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    portal_key: Mapped[str] = mapped_column(sa.ForeignKey("portals.key"))
    source_id: Mapped[str] = mapped_column(sa.String(300))
    first_run_id: Mapped[int] = mapped_column(sa.ForeignKey("harvest_runs.id"))
    # The newest run (by as_of) that stored a version of it; which runs saw it is in harvest_runs.members.
    last_run_id: Mapped[int] = mapped_column(sa.ForeignKey("harvest_runs.id"))


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        # "latest version of each dataset at/before as_of" is the hot query of both the writer and catalog() (id
        # third: the writer's ORDER BY as_of, id); with data_modified it covers the catalog's versions pass.
        sa.Index("ix_dataset_versions_dataset_as_of_modified", "dataset_id", "as_of", "id", "data_modified"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"))
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("harvest_runs.id"), index=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    raw_hash: Mapped[str | None] = mapped_column(RawHash())
    # Kept beside the record so `data_modified_seen` needs no JSON parsing of old versions.
    data_modified: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # zstd frame of the orjson of DatasetRecord.as_dict() (datetimes ISO 8601). base_version NULL (a key
    # version): compressed with the portal's record dictionary when it has one (the frame names it:
    # codec_dictionaries). Else compressed against that earlier key version of the same dataset, whose bytes
    # are the frame's dictionary: a changed dataset costs its change, not a copy (codec.pack_against). A base
    # is always a key version, so reading costs two frames, never a chain; versions are never deleted.
    record: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # The raw item's orjson bytes: a key version written since migration 0006 has them as item `raw_at` of its
    # write's block (`raw_blocks`, codec.pack_blocks) and `raw` NULL; a version stored against its key version,
    # and a key version written before, as a zstd frame here (the portal's raw dictionary or the key's raw).
    raw: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    base_version: Mapped[int | None] = mapped_column(sa.ForeignKey("dataset_versions.id"))
    raw_block: Mapped[int | None] = mapped_column(sa.ForeignKey("raw_blocks.id"))
    raw_at: Mapped[int | None] = mapped_column(sa.Integer)


class RawBlock(Base):
    """The raw items of up to codec.RAW_BLOCK_ITEMS key versions one write stored, as one zstd frame with the
    portal's raw dictionary (codec.pack_blocks): a changed dataset costs its share of a block, and the frame sees
    what the items share. Written in the run's transaction (a failed run leaves none); never deleted."""

    __tablename__ = "raw_blocks"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("harvest_runs.id"))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class CodecDictionary(Base):
    """A zstd dictionary learned from a portal's items (storage/codec.py): frames name it by `id`, which is
    derived from the run that trained it (codec.dictionary_id), so it is known before anything is written.
    Written in the run's transaction: a failed run leaves none. Never deleted (old frames name it)."""

    __tablename__ = "codec_dictionaries"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    portal_key: Mapped[str] = mapped_column(sa.ForeignKey("portals.key"), index=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("harvest_runs.id"))
    field: Mapped[str] = mapped_column(sa.String(10))  # codec.RAW | codec.RECORD
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class ScoreRow(Base):
    __tablename__ = "scores"
    __table_args__ = (
        sa.UniqueConstraint("city_key", "as_of", "criterion", "indicator"),
        sa.Index("ix_scores_city_indicator_as_of", "city_key", "indicator", "as_of"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    city_key: Mapped[str] = mapped_column(sa.ForeignKey("cities.key"))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    criterion: Mapped[str] = mapped_column(sa.String(20))
    indicator: Mapped[str] = mapped_column(sa.String(100), default="")  # "" = the criterion roll-up row
    value: Mapped[float | None] = mapped_column(sa.Float)
    numerator: Mapped[float | None] = mapped_column(sa.Float)
    denominator: Mapped[float | None] = mapped_column(sa.Float)
    stage: Mapped[str | None] = mapped_column(sa.String(20))
    # The evidence {"failing": {source_id: reason}, "matches": {...}, "detail": {...}}: evidence_base NULL: in
    # full (codec.encode_evidence); else the change against that base (codec.evidence_delta). Score rows are
    # replaced when a date is scored again, so bases live in their own table, which is never deleted from.
    failing: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    evidence_base: Mapped[int | None] = mapped_column(sa.ForeignKey("evidence_bases.id"))
    # NULL: scored from complete crawls, the city's state. "partial" / "empty": a crawl it stands on fell short;
    # kept (a marked point) but left out of every line, delta and "latest" value by storage.queries.
    flag: Mapped[str | None] = mapped_column(sa.String(10))


class EvidenceBase(Base):
    """A score's evidence in full (codec.encode_evidence), that later scores of the indicator store changes
    against; written when a change would cost more than half the full evidence (codec.needs_base)."""

    __tablename__ = "evidence_bases"
    __table_args__ = (sa.Index("ix_evidence_bases_city_indicator", "city_key", "indicator"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    city_key: Mapped[str] = mapped_column(sa.ForeignKey("cities.key"))
    indicator: Mapped[str] = mapped_column(sa.String(100))
    evidence: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Evidence(Base):
    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(primary_key=True)
    city_key: Mapped[str] = mapped_column(sa.ForeignKey("cities.key"), index=True)
    criterion: Mapped[str] = mapped_column(sa.String(20))
    url: Mapped[str | None] = mapped_column(sa.String(1000))
    date: Mapped[str | None] = mapped_column(sa.String(10))  # ISO date text, as entered
    note: Mapped[str | None] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(100))
    detail: Mapped[str | None] = mapped_column(sa.Text)


class SchemaCheckRow(Base):
    """A run's catalog document checked against its schema (data.json: POD v1.1), as data - not run notes."""

    __tablename__ = "schema_checks"
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("harvest_runs.id"), primary_key=True)
    schema_name: Mapped[str] = mapped_column(sa.String(100))
    entries: Mapped[int] = mapped_column(sa.Integer)  # datasets in the document
    error_count: Mapped[int] = mapped_column(sa.Integer)  # every error, also those without a kept message


class SchemaErrorRow(Base):
    """The kept error messages of one dataset ("" = the document itself) in a run's schema check."""

    __tablename__ = "schema_errors"
    __table_args__ = (sa.UniqueConstraint("run_id", "source_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("schema_checks.run_id"))
    source_id: Mapped[str] = mapped_column(sa.String(300))
    messages: Mapped[Any] = mapped_column(sa.JSON)  # list of message texts


class ItemErrorRow(Base):
    """A raw item a run set aside because it could not be normalized (connectors.items), kept with its error so
    the connector can be fixed and the item re-normalized later."""

    __tablename__ = "item_errors"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("harvest_runs.id"), index=True)
    error: Mapped[str] = mapped_column(sa.Text)
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)  # zlib of the raw item's orjson bytes


class CatalogSnapshot(Base):
    """A portal's catalog table as it was last built by a scoring (storage/snapshots.py encodes it), each row with
    the version it was decoded from: the next scoring decodes only the rows whose latest version is not in it.
    A cache, one row a portal, replaced whole; a version's record never changes, so a row is valid whatever ran
    since (which rows make the catalog is decided afresh each time)."""

    __tablename__ = "catalog_snapshots"
    portal_key: Mapped[str] = mapped_column(sa.ForeignKey("portals.key"), primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Lock(Base):
    __tablename__ = "locks"
    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())




def _table(model: type[Base]) -> sa.Table:
    # Each model maps one Table; SQLAlchemy types __table__ as the wider FromClause.
    return cast(sa.Table, model.__table__)


cities_t = _table(City)
portals_t = _table(Portal)
runs_t = _table(HarvestRun)
datasets_t = _table(Dataset)
versions_t = _table(DatasetVersion)
scores_t = _table(ScoreRow)
evidence_t = _table(Evidence)
audit_t = _table(AuditLog)
locks_t = _table(Lock)
schema_checks_t = _table(SchemaCheckRow)
schema_errors_t = _table(SchemaErrorRow)
item_errors_t = _table(ItemErrorRow)
dictionaries_t = _table(CodecDictionary)
evidence_bases_t = _table(EvidenceBase)
raw_blocks_t = _table(RawBlock)
snapshots_t = _table(CatalogSnapshot)
