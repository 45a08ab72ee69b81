"""Time the storage write path and catalog rebuild on real Socrata catalogs (not a test: numbers for the README).

    .venv/bin/python benchmarks/storage.py [--url URL] [DIR]

DIR holds Discovery-API `*.jsonl.gz` files (default: ../shared/fixtures/socrata_scrape_2022/latest, 12,226
items from 291 domains, else tests/fixtures/socrata/latest). Every item is normalized by the real Socrata
connector into one portal, then: a first save (every dataset new), an immediate unchanged re-save (must
write no version rows), the catalog rebuild, and city_catalog. Wall and process CPU time are printed:
on a shared machine the wall time varies with the load, CPU time much less (it includes the database's
work only for SQLite, which runs in-process).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: the project root, not benchmarks/ (whose storage.py is this file), must come first.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
DEFAULT_DIRS = (ROOT.parent / "shared" / "fixtures" / "socrata_scrape_2022" / "latest",
                ROOT / "tests" / "fixtures" / "socrata" / "latest")


def main(argv: list[str] | None = None) -> None:
    import storage
    from connectors import make_connector
    from connectors.archive import read_items
    from connectors.base import FetchStats
    from maturity.settings import CityConfig, PortalConfig, Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path)
    ap.add_argument("--url", help="database URL (default: a fresh SQLite file in a temporary folder)")
    args = ap.parse_args(argv)
    folder = args.dir or next(d for d in DEFAULT_DIRS if d.is_dir())
    url = args.url or f"sqlite:///{tempfile.mkdtemp(prefix='maturity-bench-')}/bench.db"

    portal = PortalConfig(key="bench-socrata", city_key="bench", kind="socrata", url="https://example.org",
                          domain="example.org")
    settings = Settings(path=Path("bench.toml"), storage_url=url,
                        cities=(CityConfig(key="bench", name="Benchmark", portals=(portal,)),))
    connector = make_connector(portal)
    raws, seen = [], set()
    for f in sorted(folder.glob("*.jsonl.gz")):
        if f.name.endswith(".stats.jsonl.gz"):
            continue
        items, _ = read_items(f, "socrata")
        for it in items:
            key = connector.normalize(it).source_id
            if key not in seen:
                seen.add(key)
                raws.append(it)
    t = time.perf_counter()
    records = [connector.normalize(r) for r in raws]
    blobs = [connector.raw_bytes(r) for r in raws]
    t_norm = time.perf_counter() - t
    print(f"{len(records)} unique items from {folder} (normalize + raw bytes {t_norm:.2f} s)")

    storage.upgrade(url)
    engine = storage.open_db(url)
    storage.sync_config(engine, settings)
    as_of = datetime(2022, 7, 23, tzinfo=UTC)
    for label, when in (("first save", as_of), ("unchanged re-save", as_of + timedelta(days=1))):
        before = storage.row_counts(engine)
        run_id = storage.start_run(engine, portal.key, as_of=when)
        t, c = time.perf_counter(), time.process_time()
        s = storage.save_harvest(engine, run_id, records, blobs, FetchStats(items_seen=len(records)), finished_at=when)
        dt, cpu = time.perf_counter() - t, time.process_time() - c
        after = storage.row_counts(engine)
        written = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        print(f"{label}: {dt:.3f} s wall, {cpu:.3f} s CPU ({len(records) / dt:,.0f} datasets/s), status {s.status}, "
              f"new versions {s.new_versions}, rows added {written}")
    for label, fn in (("catalog()", lambda: storage.catalog(engine, portal.key)),
                      ("city_catalog()", lambda: storage.city_catalog(engine, "bench"))):
        t, c = time.perf_counter(), time.process_time()
        df = fn()
        print(f"{label}: {time.perf_counter() - t:.3f} s wall, {time.process_time() - c:.3f} s CPU for {len(df)} rows")
    storage.dispose(url)


if __name__ == "__main__":
    main()
