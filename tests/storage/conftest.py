"""Storage test helpers: a migrated database on both backends and the real weekly Chicago snapshots.

The snapshots are `tests/fixtures/socrata/history/` (copied from socrata_scrape_2022/history, see the
provenance note there), read and normalized by the real connector code, as `maturity import` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

import storage
from connectors.base import DatasetRecord, FetchStats
from maturity.settings import CityConfig, PortalConfig, Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHICAGO_HISTORY = FIXTURES / "socrata" / "history" / "data.cityofchicago.org"
CHICAGO_DATES = ("2022-06-08", "2022-06-15", "2022-06-22", "2022-06-29",
                 "2022-07-06", "2022-07-13", "2022-07-20", "2022-07-23")

CHICAGO = PortalConfig(key="chicago-socrata", city_key="chicago", kind="socrata",
                       url="https://data.cityofchicago.org", domain="data.cityofchicago.org")
CHICAGO_DCAT = PortalConfig(key="chicago-dcat", city_key="chicago", kind="dcat",
                            url="https://data.cityofchicago.org")
OTHER = PortalConfig(key="cincinnati-socrata", city_key="cincinnati", kind="socrata",
                     url="https://data.cincinnati-oh.gov", domain="data.cincinnati-oh.gov")
SETTINGS = Settings(path=Path("test-config.toml"), storage_url="sqlite://", cities=(
    CityConfig(key="chicago", name="Chicago, IL", portals=(CHICAGO, CHICAGO_DCAT)),
    CityConfig(key="cincinnati", name="Cincinnati, OH", portals=(OTHER,)),
))


@dataclass(frozen=True)
class Snapshot:
    as_of: datetime
    records: tuple[DatasetRecord, ...]
    raws: tuple[bytes, ...]
    stats: FetchStats


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@cache
def chicago_snapshot(date: str) -> Snapshot:
    """One weekly file, read and normalized exactly as `pipeline.import_files` does it."""
    from connectors import make_connector
    from connectors.archive import read_items

    connector = make_connector(CHICAGO)
    raws, stats = read_items(CHICAGO_HISTORY / f"{date}.jsonl.gz", "socrata")
    records = tuple(connector.normalize(r) for r in raws)
    return Snapshot(day(date), records, tuple(connector.raw_bytes(r) for r in raws), stats)


def save(engine, snap: Snapshot, *, portal_key: str = CHICAGO.key, source: str = "import") -> storage.RunSummary:
    run_id = storage.start_run(engine, portal_key, as_of=snap.as_of, source=source, started_at=snap.as_of)
    return storage.save_harvest(engine, run_id, list(snap.records), list(snap.raws), snap.stats,
                                finished_at=snap.as_of)


@pytest.fixture
def engine(db_url):
    """A migrated, config-synced database on the backend `db_url` names."""
    storage.upgrade(db_url)
    eng = storage.open_db(db_url)
    storage.sync_config(eng, SETTINGS)
    yield eng
    storage.dispose(db_url)
