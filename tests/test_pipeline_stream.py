"""Harvests stored page by page (issue 13): the records a one-pass harvest stores, nothing left of a run that fails
mid-way, unchanged items neither normalized nor written.

Batches are made small here (`vocab.DISCOVERY_SAMPLE` = 50, Socrata pages of 50) so the recorded catalogs stream in
several pages and batches: Chicago's Discovery scrape has 295 lines and 260 unique ids (35 repeats), served by
resource id in pages of 50 (see tests/fixtures/PROVENANCE.md); Cincinnati's data.json 145
datasets (one document); Birmingham's package_search 10 packages.
"""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

import storage
from connectors import make_connector, vocab
from connectors.items import normalize_each
from connectors.socrata import SocrataConnector
from maturity import pipeline
from storage import compact
from storage.writes import _record_json
from tests import test_pipeline
from tests.conftest import FIXTURES
from tests.emulator import Emulator, load_socrata_jsonl
from tests.test_pipeline import CHICAGO
from tests.test_pipeline_faults import chicago_with

# the three recorded portals (Chicago, Cincinnati, Birmingham) on both backends: tests/test_pipeline.py's fixtures
emu, setup = test_pipeline.emu, test_pipeline.setup

SAMPLE = 50
PAGE = 50
T1 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
CHICAGO_UNIQUE = 260
CINCINNATI_DATASETS = 145


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Batches of 50 items, Socrata pages of 50: every recorded catalog streams in several of both."""
    monkeypatch.setattr(vocab, "DISCOVERY_SAMPLE", SAMPLE)

    def connector(portal, **kw):
        if portal.kind == "socrata":
            return SocrataConnector(portal, page_limit=PAGE, **kw)
        return make_connector(portal, **kw)

    monkeypatch.setattr(pipeline, "make_connector", connector)


def stored_records(engine, portal_key: str) -> dict[str, bytes]:
    """{source_id: the record JSON of its newest version} as stored (decoded: storage/codec.py)."""
    d, v = sa.table("datasets", sa.column("id"), sa.column("source_id"), sa.column("portal_key")), sa.table(
        "dataset_versions", sa.column("dataset_id"), sa.column("record"), sa.column("id"), sa.column("base_version"))
    k = v.alias("k")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.source_id, v.c.record, k.c.record).join(v, v.c.dataset_id == d.c.id)
                            .outerjoin(k, k.c.id == v.c.base_version)
                            .where(d.c.portal_key == portal_key).order_by(v.c.id)).all()
        packer = compact.portal_codec(conn, portal_key)
    return {sid: compact.version_bytes(packer, record, key) for sid, record, key in rows}


def one_pass_records(portal) -> dict[str, bytes]:
    """What the harvest stored before it streamed: every item fetched, the profile of the run's first
    DISCOVERY_SAMPLE items, every item normalized, the first of each id kept."""
    connector = pipeline.make_connector(portal)
    raws = list(connector.fetch())
    batch = normalize_each(connector, raws, connector.discover(raws))
    out: dict[str, bytes] = {}
    for rec in batch.records:
        out.setdefault(rec.source_id, _record_json(rec))
    return out


def test_streamed_harvests_store_the_records_of_one_pass(setup):
    cfg, engine = setup
    for portal, count in zip(cfg.portals, (CHICAGO_UNIQUE, CINCINNATI_DATASETS, 10), strict=True):
        summary = pipeline.harvest(cfg, engine, portal, now=T1)
        assert (summary.status, summary.items, summary.new_versions) == ("ok", count, count)
        assert stored_records(engine, portal.key) == one_pass_records(portal)
    assert storage.runs(engine, portal_key=cfg.portals[0].key).iloc[0]["pages"] >= 6  # 260 unique ids, pages of 50


def test_a_portal_failing_mid_stream_leaves_no_trace_and_earlier_history_intact(setup, monkeypatch):
    cfg, engine = setup
    chicago, cincinnati = cfg.portals[0], cfg.portals[1]
    assert pipeline.harvest(cfg, engine, cincinnati, now=T1).status == "ok"
    assert pipeline.harvest(cfg, engine, chicago, now=T1).items == CHICAGO_UNIQUE
    before = storage.row_counts(engine)

    # Every item changed (its name), so every batch writes versions; the 5th page request fails.
    changed = chicago_with(lambda item, n: item["resource"].update(name=f"renamed {n}"))
    written = []
    real_add = storage.RunWriter.add

    def add(self, records, raws):
        real_add(self, records, raws)
        written.append(len(records))

    monkeypatch.setattr(storage.RunWriter, "add", add)
    with Emulator(socrata={CHICAGO: changed}) as emu2:
        emu2.fault("/api/catalog/v1", shape=True, after=4)
        summary = pipeline.harvest(cfg, engine, dataclasses.replace(chicago, url=emu2.url), now=T2)
    assert summary.status == "failed" and summary.error.startswith("PortalIncompatible")
    # Four pages of 50 lines (with their repeats) were stored in batches of 50 before the fault: all rolled back.
    assert len(written) >= 3 and sum(written) >= 150
    after = storage.row_counts(engine)
    assert {k: after[k] for k in ("datasets", "dataset_versions")} == {
        k: before[k] for k in ("datasets", "dataset_versions")}
    runs = storage.runs(engine, portal_key=chicago.key).sort_values("as_of")
    assert list(runs["status"]) == ["ok", "failed"]
    assert len(storage.catalog(engine, chicago.key)) == CHICAGO_UNIQUE
    assert len(storage.catalog(engine, cincinnati.key)) == CINCINNATI_DATASETS
    assert stored_records(engine, chicago.key) == one_pass_records(chicago)  # still the T1 records


def test_a_first_harvest_failing_mid_stream_stores_no_dataset(setup):
    cfg, engine = setup
    chicago = cfg.portals[0]
    with Emulator(socrata={CHICAGO: load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")}
                  ) as emu2:
        emu2.fault("/api/catalog/v1", shape=True, after=5)
        summary = pipeline.harvest(cfg, engine, dataclasses.replace(chicago, url=emu2.url), now=T1)
    assert summary.status == "failed"
    counts = storage.row_counts(engine)
    assert counts["datasets"] == counts["dataset_versions"] == 0
    assert storage.runs(engine).iloc[0]["error"].startswith("PortalIncompatible")


def test_an_unchanged_reharvest_normalizes_only_the_changed_item(setup, monkeypatch):
    cfg, engine = setup
    chicago = cfg.portals[0]
    assert pipeline.harvest(cfg, engine, chicago, now=T1).new_versions == CHICAGO_UNIQUE
    normalized = []
    real = SocrataConnector.normalize

    def counting(self, raw, profile=vocab.EMPTY_PROFILE):
        normalized.append(raw["resource"]["id"])
        return real(self, raw, profile)

    monkeypatch.setattr(SocrataConnector, "normalize", counting)
    one_renamed = chicago_with(lambda item, n: n == 7 and item["resource"].update(name="renamed"))
    with Emulator(socrata={CHICAGO: one_renamed}) as emu2:
        summary = pipeline.harvest(cfg, engine, dataclasses.replace(chicago, url=emu2.url), now=T2)
    renamed = sorted({i["resource"]["id"] for i in one_renamed if i["resource"]["name"] == "renamed"})
    assert (summary.status, summary.items, summary.new_versions, summary.repeats) == ("ok", CHICAGO_UNIQUE, 1, 35)
    assert normalized == renamed  # one item normalized, the 259 others only hashed
    assert storage.catalog(engine, chicago.key).set_index("source_id").loc[renamed[0], "title"] == "renamed"


def test_a_run_reads_its_field_profile_only_when_an_item_is_normalized(setup, monkeypatch):
    """Birmingham's 10 items are one short batch, the whole run: its unchanged re-harvest reads no profile.
    Chicago's first batch is a full one (50 of 260 ids): read at once, not kept while the later pages arrive."""
    cfg, engine = setup
    chicago, birmingham = cfg.portals[0], cfg.portals[2]
    read = []
    for cls in {type(pipeline.make_connector(p)) for p in (chicago, birmingham)}:
        real = cls.discover
        monkeypatch.setattr(cls, "discover", staticmethod(lambda raws, real=real: read.append(len(raws)) or real(raws)))
    for when in (T1, T2):
        for portal in (chicago, birmingham):
            pipeline.harvest(cfg, engine, portal, now=when)
    assert read == [SAMPLE, 10, SAMPLE]  # first harvests: both; re-harvests: Chicago's full first batch only


@pytest.mark.parametrize("kind", ["socrata", "ckan", "dcat"])
def test_a_connector_tells_an_items_source_id_and_hash_without_normalizing(setup, kind):
    """The skip of unchanged items compares `source_id(raw)` and `raw_hash(raw)` with what is stored: they must
    be the record's own, item for item."""
    cfg, _engine = setup
    portal = next(p for p in cfg.portals if p.kind == kind)
    connector = pipeline.make_connector(portal)
    raws = list(connector.fetch())
    profile = connector.discover(raws)
    for raw in raws:
        rec = connector.normalize(raw, profile)
        assert (connector.source_id(raw), connector.raw_hash(raw)) == (rec.source_id, rec.raw_hash)


def test_an_item_the_hash_trips_on_is_normalized_not_the_runs_failure(setup, monkeypatch):
    cfg, engine = setup
    chicago = cfg.portals[0]
    assert pipeline.harvest(cfg, engine, chicago, now=T1).new_versions == CHICAGO_UNIQUE
    odd = sorted({i["resource"]["id"] for i in load_socrata_jsonl(
        FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")})[3]
    real_hash, real_normalize, normalized = SocrataConnector.raw_hash, SocrataConnector.normalize, []

    def hash_or_trip(raw):
        if raw["resource"]["id"] == odd:
            raise TypeError("an odd value")
        return real_hash(raw)

    def counting(self, raw, profile=vocab.EMPTY_PROFILE):
        normalized.append(raw["resource"]["id"])
        return real_normalize(self, raw, profile)

    monkeypatch.setattr(SocrataConnector, "raw_hash", staticmethod(hash_or_trip))
    monkeypatch.setattr(SocrataConnector, "normalize", counting)
    summary = pipeline.harvest(cfg, engine, chicago, now=T2)
    # normalized, its record's own hash equals the stored one: no new version; the run stands
    assert (summary.status, summary.items, summary.new_versions) == ("ok", CHICAGO_UNIQUE, 0)
    assert normalized == [odd]
