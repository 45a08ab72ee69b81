"""Harvest benchmark: every recorded Socrata domain catalog through the real pipeline, against the emulator.

    .venv/bin/python benchmarks/harvest.py [DIR] [--url DATABASE_URL]

DIR holds Discovery-API `*.jsonl.gz` files (default: ../shared/fixtures/socrata_scrape_2022/latest — 291
domains, 12,226 recorded items — else tests/fixtures/socrata/latest). The emulator runs in a child process,
so its serialisation does not share our GIL; each domain becomes one portal and `pipeline.harvest` fetches it
over HTTP on 127.0.0.1, normalizes it and stores it (one transaction per portal) into a fresh database.

Reported: datasets per second; the parsing floor (a bare `json.loads` of the very response bodies the
harvest received, fetched once beforehand) and our ratio to it; peak memory (max RSS of this process); then
an immediate unchanged re-harvest: its time and the rows it wrote (must be 0 dataset versions).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DIRS = (ROOT.parent / "shared" / "fixtures" / "socrata_scrape_2022" / "latest",
                ROOT / "tests" / "fixtures" / "socrata" / "latest")
PAGE_LIMIT = 10_000  # the connector asks for the Discovery API maximum too


def serve(files: list[str], queue) -> None:
    """Child process: the emulator serving every domain's recorded items."""
    from tests.emulator import Emulator, load_socrata_jsonl

    catalogs = {Path(f).name.removesuffix(".jsonl.gz"): load_socrata_jsonl(f) for f in files}
    emu = Emulator(socrata=catalogs).start()
    queue.put(emu.url)
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", type=Path)
    ap.add_argument("--url", help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args(argv)
    folder = args.dir or next(d for d in DEFAULT_DIRS if d.exists())
    files = sorted(str(f) for f in folder.glob("*.jsonl.gz") if not f.name.endswith(".stats.jsonl.gz"))
    domains = [Path(f).name.removesuffix(".jsonl.gz") for f in files]

    queue: mp.Queue = mp.Queue()
    child = mp.Process(target=serve, args=(files, queue), daemon=True)
    child.start()
    base = queue.get(timeout=120)
    try:
        run(base, domains, args.url)
    finally:
        child.terminate()


def run(base: str, domains: list[str], url: str | None) -> None:
    import requests

    import pipeline
    import storage
    from connectors.http import make_session
    from settings import CityConfig, PortalConfig, Settings

    tmp = tempfile.mkdtemp()
    url = url or f"sqlite:///{tmp}/bench.db"
    cities = tuple(
        CityConfig(key=f"c{i}", name=d, portals=(PortalConfig(key=f"p{i}", city_key=f"c{i}", kind="socrata",
                                                               url=base, domain=d),))
        for i, d in enumerate(domains))
    cfg = Settings(path=Path(tmp) / "config.toml", storage_url=url, cities=cities)

    # The parsing floor: the same bodies the harvest will receive, paged the same way, parsed with json.loads.
    bodies = []
    with requests.Session() as s:
        for d in domains:
            scroll = None
            while True:
                params = {"domains": d, "limit": PAGE_LIMIT, **({"scroll_id": scroll} if scroll else {})}
                body = s.get(f"{base}/api/catalog/v1", params=params, timeout=60).content
                bodies.append(body)
                results = json.loads(body)["results"]
                if len(results) < PAGE_LIMIT:
                    break
                scroll = results[-1]["resource"]["id"]
    t = time.perf_counter()
    parsed_items = sum(len(json.loads(b)["results"]) for b in bodies)
    floor = time.perf_counter() - t

    storage.upgrade(url)
    engine = storage.open_db(url)
    session = make_session()

    now = datetime(2026, 11, 25, 4, tzinfo=timezone.utc)
    t = time.perf_counter()
    first = [pipeline.harvest(cfg, engine, p, now=now, session=session) for p in cfg.portals]
    took = time.perf_counter() - t
    counts = storage.row_counts(engine)
    datasets = sum(s.items for s in first)
    failed = [s for s in first if s.status == "failed"]

    t = time.perf_counter()
    again = [pipeline.harvest(cfg, engine, p, now=now + timedelta(days=1), session=session) for p in cfg.portals]
    took2 = time.perf_counter() - t
    counts2 = storage.row_counts(engine)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"domains: {len(domains)}  recorded items: {parsed_items}  unique datasets stored: {datasets}  "
          f"failed portals: {len(failed)}")
    print(f"first harvest: {took:.2f} s  ({datasets / took:,.0f} datasets/s)")
    print(f"parsing floor (json.loads of the {len(bodies)} response bodies): {floor:.3f} s  "
          f"-> ratio {took / floor:.1f}x")
    print(f"peak memory (max RSS): {peak_mb:.0f} MB")
    print(f"unchanged re-harvest: {took2:.2f} s; rows written: "
          f"dataset_versions +{counts2['dataset_versions'] - counts['dataset_versions']}, "
          f"datasets +{counts2['datasets'] - counts['datasets']}, "
          f"harvest_runs +{counts2['harvest_runs'] - counts['harvest_runs']}; "
          f"new versions reported {sum(s.new_versions for s in again)}")
    for s in failed[:5]:
        print(f"  failed {s.portal_key}: {s.error}")


if __name__ == "__main__":
    main()
