"""Fill a database for the dashboard tests and the benchmark from real recorded DCAT-US catalogs.

Records go through the real storage writers (`start_run`, `save_harvest`, `save_scores`). Records are
read from the recorded `data.json` files in tests/fixtures/dcat_us with the real DCAT connector when it
is available (`connectors.make_connector`), else with a small field mapping of the DCAT-US 1.1 names.
Scores come from `indicators.compute_all` + `criteria.rollup` when available, else from two simple
documented indicators, so the dashboard can be tested before and after those packages land.

`perturb(records, rng)` replays a catalog as a later week: some datasets updated (data_modified moves),
some dropped, a few descriptions removed, views grow — the way real weekly snapshots differ.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

import storage
from connectors.base import DatasetRecord, FetchStats
from maturity import settings as settings_mod

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dcat_us"
# (city key, name, [(snapshot file, as_of date)]) — real recorded data.json files of these cities.
CITIES = (
    ("chicago", "Chicago, IL", [("chicago_data_json_socrata_2019-04-26.json.gz", "2019-04-26"),
                                ("chicago_data_json_socrata_2020-07-22.json.gz", "2020-07-22")]),
    ("indianapolis", "Indianapolis, IN", [("indianapolis_data_json_arcgis_hub_2019-01-04.json.gz", "2019-01-04"),
                                         ("indianapolis_data_json_arcgis_hub_2020-08-04.json.gz", "2020-08-04")]),
    ("minneapolis", "Minneapolis, MN", [("minneapolis_data_json_arcgis_hub_2020-08-04.json.gz", "2020-08-04")]),
    ("philadelphia", "Philadelphia, PA", [("philadelphia_data_json_arcgis_hub_2020-08-04.json.gz", "2020-08-04")]),
)
XSS_TITLE = "<script>alert(1)</script>"
# A partial crawl between two complete ones: (city, date, share of the previous snapshot's datasets seen). Chicago on
# 2019-06-01 sees the first 60 % of its 749 datasets of 2019-04-26 (449 < 0.9 x 749: storage judges it partial); the
# real pipeline scores it and stores the scores flagged "partial" (kept off every line, drawn as hollow points).
PARTIAL = ("chicago", "2019-06-01", 0.6)


def make_settings(cities: Sequence[tuple[str, str]], path: Path, storage_url: str, *,
                  poll_seconds: int = 30) -> settings_mod.Settings:
    raw = {"storage": {"url": storage_url}, "web": {"poll_seconds": poll_seconds},
           "cities": [{"key": k, "name": n, "portals": [{"kind": "dcat", "url": f"https://{k}.example.org"}]}
                      for k, n in cities]}
    return settings_mod.parse(raw, path, {})


def load_catalog(path: Path) -> list[dict]:
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        return json.load(f)["dataset"]


def normalize(portal, raw: dict) -> DatasetRecord:
    """The real connector's normalize when it exists, else a plain DCAT-US 1.1 field mapping."""
    try:
        import connectors

        return connectors.make_connector(portal).normalize(raw)
    except (ImportError, AttributeError, KeyError):
        pass
    dist = raw.get("distribution") or []
    formats = tuple(sorted({(d.get("format") or d.get("mediaType") or "").split("/")[-1].upper()
                            for d in dist if d.get("format") or d.get("mediaType")}))
    contact = raw.get("contactPoint") or {}
    return DatasetRecord(
        portal_key=portal.key, source_id=str(raw.get("identifier")), asset_type="dataset",
        landing_url=raw.get("landingPage"), title=raw.get("title") or None,
        description=raw.get("description") or None, keywords=tuple(raw.get("keyword") or ()),
        theme=(raw.get("theme") or [None])[0], department=(raw.get("publisher") or {}).get("name"),
        contact_name=contact.get("fn"), contact_email=(contact.get("hasEmail") or "").replace("mailto:", "") or None,
        license=raw.get("license"), data_modified=_time(raw.get("modified")),
        metadata_modified=_time(raw.get("modified")),
        declared_frequency=(raw.get("accrualPeriodicity")
                            if str(raw.get("accrualPeriodicity", "")).startswith("R/") else None),
        formats=formats, distribution_count=len(dist),
        raw_hash=hashlib.sha1(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest())


def _time(v):
    if not v:
        return None
    try:
        t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def perturb(records: list[DatasetRecord], rng: random.Random, as_of: datetime, *,
            drop: float = 0.02, update: float = 0.15) -> list[DatasetRecord]:
    out = []
    for r in records:
        if rng.random() < drop:
            continue  # dropped this week
        changes = {}
        if rng.random() < update:
            changes["data_modified"] = as_of - timedelta(days=rng.randint(0, 6))
        if rng.random() < 0.03:
            changes["description"] = None
        changes["views"] = int((r.views or rng.randint(0, 500)) * (1 + rng.random() * 0.05))
        if changes.keys() - {"views"}:
            changes["raw_hash"] = hashlib.sha1(f"{r.raw_hash}{as_of.isoformat()}".encode()).hexdigest()
        out.append(dataclasses.replace(r, **changes))
    return out


def records_from_catalog(catalog) -> list[DatasetRecord]:
    """A stored catalog (storage.catalog / city_catalog frame) back into DatasetRecords, for replaying a run."""
    import pandas as pd

    from connectors.base import RECORD_FIELDS, record_from_dict

    def clean(v):
        if isinstance(v, pd.Timestamp):
            return None if pd.isna(v) else v.to_pydatetime()
        if v is None or v is pd.NaT or (isinstance(v, float) and v != v):
            return None
        return v

    rows = catalog[list(RECORD_FIELDS)].astype(object).to_dict("records")
    return [record_from_dict({k: clean(v) for k, v in r.items()}) for r in rows]


def save_run(engine, portal_key: str, records: list[DatasetRecord], as_of: datetime):
    run_id = storage.start_run(engine, portal_key, as_of=as_of, source="import")
    raws = [orjson.dumps(r.as_dict(), default=str) for r in records]
    stats = FetchStats(items_seen=len(records), repeats=0, reported_total=len(records), pages=1)
    return storage.save_harvest(engine, run_id, records, raws, stats, finished_at=as_of + timedelta(minutes=3))


def score(engine, cfg, city_key: str, as_of: datetime) -> None:
    """Score the city's catalog at `as_of` with the real indicators, as the product does (a failure fails the
    test that called it)."""
    import indicators
    from indicators import criteria
    from maturity import pipeline

    scoring, _ = pipeline.scoring_input(engine, cfg.city(city_key), as_of)
    scores = indicators.compute_all(scoring, as_of)
    storage.save_scores(engine, city_key, as_of, scores, criteria.rollup(scores), criterion_of=indicators.CRITERION_OF)


def fill(url: str, tmp: Path, *, weeks: int = 3, xss: bool = True, poll_seconds: int = 30):
    """The test database: four real cities, `weeks` weekly runs each after their recorded snapshots, and Chicago's
    partial crawl (PARTIAL).

    Returns the Settings (with the test cities). One Chicago dataset is retitled `<script>alert(1)</script>`
    in the newest run, to prove portal text is rendered as text.
    """
    cfg = make_settings([(k, n) for k, n, _ in CITIES], tmp / "config.toml", url, poll_seconds=poll_seconds)
    storage.upgrade(url)
    engine = storage.open_db(url)
    storage.sync_config(engine, cfg)
    rng = random.Random(20260325)
    for key, _name, snaps in CITIES:
        portal = cfg.city(key).portals[0]
        records = []
        for fname, day in snaps:
            as_of = datetime.fromisoformat(day).replace(hour=6, tzinfo=UTC)
            records = [normalize(portal, raw) for raw in load_catalog(FIXTURES / fname)]
            save_run(engine, portal.key, records, as_of)
            score(engine, cfg, key, as_of)
            if (key, day) == (PARTIAL[0], snaps[0][1]):
                from maturity import pipeline

                at = datetime.fromisoformat(PARTIAL[1]).replace(hour=6, tzinfo=UTC)
                save_run(engine, portal.key, records[: int(len(records) * PARTIAL[2])], at)
                pipeline.score(cfg, engine, key, as_of=at)
        for w in range(1, weeks + 1):
            as_of = as_of + timedelta(days=7)
            records = perturb(records, rng, as_of)
            if xss and key == "chicago" and w == weeks:
                records[0] = dataclasses.replace(records[0], title=XSS_TITLE, raw_hash="xss")
            save_run(engine, portal.key, records, as_of)
            score(engine, cfg, key, as_of)
    return cfg
