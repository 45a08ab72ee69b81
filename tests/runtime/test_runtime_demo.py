"""The bundled demo: a small, checksummed set of real recorded catalogs whose portals exist in config.toml,
imported and scored through the real pipeline into an empty database."""
from __future__ import annotations

import hashlib
from datetime import time
from pathlib import Path

import pytest
from runtime_helpers import load_settings

import storage
from maturity import demo
from maturity import settings as settings_mod

BUNDLE = Path(demo.__file__).resolve().parent / "demo_data"
MAX_BUNDLE_BYTES = 5 * 1024 * 1024  # "a few MB": it lives in git


def test_bundle_is_small_compressed_and_matches_its_manifest():
    snaps = demo.manifest(BUNDLE)
    files = sorted(p for p in BUNDLE.rglob("*") if p.is_file() and p.name not in ("manifest.toml", "PROVENANCE.md"))
    assert sorted(s.path for s in snaps) == files  # every file listed once, nothing unlisted
    assert all(p.suffix == ".gz" for p in files)
    assert sum(p.stat().st_size for p in files) < MAX_BUNDLE_BYTES
    for s in snaps:
        assert hashlib.sha256(s.path.read_bytes()).hexdigest() == s.sha256
    provenance = (BUNDLE / "PROVENANCE.md").read_text(encoding="utf-8")
    assert all(s.portal_key in provenance for s in snaps)


def test_manifest_portals_exist_in_the_shipped_config():
    cfg = settings_mod.load((Path(__file__).resolve().parents[2] / "config.toml"), environ={})
    for s in demo.manifest(BUNDLE):
        assert cfg.portal(s.portal_key).city_key == s.city_key
    kinds = {cfg.portal(s.portal_key).kind for s in demo.manifest(BUNDLE)}
    assert {"socrata", "dcat"} <= kinds


def test_damaged_bundle_is_refused(tmp_path):
    snaps = demo.manifest(BUNDLE)
    bad = demo.Snapshot(snaps[0].city_key, snaps[0].portal_key, snaps[0].as_of, snaps[0].path, "0" * 64)
    with pytest.raises(demo.DemoError, match="sha256"):
        demo._check(bad)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'maturity.db'}"
    cfg = load_settings(url)
    storage.upgrade(url)
    engine = storage.open_db(url)
    loaded = demo.load(cfg, engine)
    yield cfg, engine, loaded
    storage.dispose(url)


def test_demo_fills_an_empty_database_with_five_or_more_cities(demo_db):
    cfg, engine, loaded = demo_db
    assert loaded is True
    runs = storage.runs(engine)
    assert set(runs["source"]) == {"import"} and "failed" not in set(runs["status"])
    per_portal = runs.groupby("portal_key").size().to_dict()
    # Hand count from manifest.toml: chicago 4, cincinnati 5, nyc/sf/austin 3 each, indianapolis 2,
    # minneapolis and philadelphia-dcat 1 each.
    assert per_portal == {"chicago-socrata": 4, "cincinnati-socrata": 5, "nyc-socrata": 3, "sf-socrata": 3,
                          "austin-socrata": 3, "indianapolis-dcat": 2, "minneapolis-dcat": 1,
                          "philadelphia-dcat": 1}
    per_city = runs.groupby("city_key").size()
    assert (per_city >= 2).sum() >= 5
    # every run date of every city is scored (score_all), so the over-time charts have their points; those of
    # partial crawls are flagged (marked points, never a line), the others are the lines
    for city in per_city.index:
        scored = set(storage.scores(engine, city, flagged=True)["as_of"])
        assert scored == set(storage.run_dates(engine, city)), city
        complete = set(runs.loc[(runs["city_key"] == city) & (runs["status"] == "ok"), "as_of"])
        assert set(storage.scores(engine, city)["as_of"]) == complete, city
    # Complete ("ok") = >= 0.9 x the last complete run's unique ids (PROVENANCE.md counts), else partial
    # ("suspect"), unless partial runs have lasted 28 days and this is the largest crawl since (the new size):
    # chicago 313, 256 (0.82), 95, 260 (07-23: 31 days after 06-22, the largest since); nyc 944, 81, 977;
    # sf 214, 21, 159 (0.74, 24 days); austin 386, 25, 304 (0.79, 24 days); cincinnati 53, 41 (0.77), 6,
    # 46 (07-20: 28 days after 06-22, the largest since), 43 (>= 0.9 x 46); indianapolis 229, 1210.
    status = {k: list(g.sort_values("as_of")["status"]) for k, g in runs.groupby("portal_key")}
    assert status == {"chicago-socrata": ["ok", "suspect", "suspect", "ok"], "nyc-socrata": ["ok", "suspect", "ok"],
                      "sf-socrata": ["ok", "suspect", "suspect"], "austin-socrata": ["ok", "suspect", "suspect"],
                      "cincinnati-socrata": ["ok", "suspect", "suspect", "ok", "ok"],
                      "indianapolis-dcat": ["ok", "ok"], "minneapolis-dcat": ["ok"], "philadelphia-dcat": ["ok"]}
    # every snapshot is dated at the end of its day (the manifest gives days)
    assert set(runs["as_of"].dt.time) == {time(23, 59, 59)}


def test_demo_is_not_loaded_twice(demo_db):
    cfg, engine, _ = demo_db
    before = len(storage.runs(engine))
    assert demo.load(cfg, engine) is False
    assert len(storage.runs(engine)) == before
