"""Runtime test helpers: settings pointed at a test database, and fake harvest/score functions.

The fakes do what a harvest does to the database (a run row through storage) without the network, and
record every call, so the tests count harvests exactly.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import storage
from connectors.base import FetchStats
from maturity import settings as settings_mod

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load_settings(url: str, **export):
    cfg = settings_mod.load(environ={"DATABASE_URL": url})
    if export:
        cfg = replace(cfg, export=replace(cfg.export, **export))
    return cfg


def only_portal(cfg, portal_key: str, schedule: str | None = None):
    """The config cut down to one city with one portal (optionally on another schedule)."""
    portal = cfg.portal(portal_key)
    if schedule:
        portal = replace(portal, schedule=schedule)
    city = replace(cfg.city(portal.city_key), portals=(portal,))
    return replace(cfg, cities=(city,), export=replace(cfg.export, schedule=None))


@dataclass
class FakeHarvest:
    """Stands in for pipeline.harvest: records the call, optionally blocks or sleeps, writes an ok run of one
    real recorded item (a run of 0 items would be an *empty* crawl, not an ok one)."""

    delay_s: float = 0.0
    gate: threading.Event | None = None
    calls: list[tuple[str, datetime]] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    fail_with: Exception | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, settings, engine, portal, *, now=None):
        with self._lock:
            self.calls.append((portal.key, datetime.now(UTC)))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        run_id = storage.start_run(engine, portal.key, as_of=now or datetime.now(UTC), source="harvest")
        records, raws = one_item(portal)
        return storage.save_harvest(engine, run_id, records, raws, FetchStats(), finished_at=datetime.now(UTC))


# One real recorded item per portal kind (tests/fixtures/PROVENANCE.md), for the fake harvest's run.
ONE_ITEM_FILES = {"socrata": "socrata/latest/data.cityofchicago.org.jsonl.gz",
                  "dcat": "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz",
                  "ckan": "ckan/birmingham_uk_package_search_purchase_cards_2021.json"}


def one_item(portal) -> tuple[list, list]:
    """The first item of the kind's recorded catalog, normalized for `portal` as a harvest would."""
    from connectors import make_connector
    from connectors.archive import read_items

    connector = make_connector(portal)
    raws, _ = read_items(FIXTURES / ONE_ITEM_FILES[portal.kind], portal.kind)
    return [connector.normalize(raws[0])], [connector.raw_bytes(raws[0])]


@dataclass
class FakeScore:
    calls: list[str] = field(default_factory=list)

    def __call__(self, settings, engine, city_key, **kw):
        self.calls.append(city_key)
        return {}


def wait_for(cond, timeout_s: float = 10.0, step_s: float = 0.05) -> bool:
    """Poll a condition (short steps, bounded): the scheduler runs in its own threads."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step_s)
    return cond()
