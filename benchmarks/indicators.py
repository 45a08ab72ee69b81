"""Time `indicators.compute_all` on a 200,000-dataset catalog built from real recorded catalogs.

    .venv/bin/python benchmarks/indicators.py [--rows 200000] [--repeat 3]

Every Socrata Discovery file in tests/fixtures/socrata/latest, every DCAT-US data.json in
tests/fixtures/dcat_us and the CKAN package_search / package_show files in tests/fixtures/ckan are normalised
by the real connectors (socrata.normalize_item, dcat.normalize_dataset, ckan.normalize_package), then the
rows are replicated with fresh source ids until the catalog holds --rows rows (--unique-text also makes
every title and description distinct, the worst case for the text work, which runs once per distinct
value). History columns are filled as storage would for a dataset seen since its creation: first_seen =
a run date, data_modified_seen = the distinct (created, data_modified) values. Not a test: numbers for the
README. Reports wall and CPU time of compute_all (best and median of --repeat; on a shared, loaded machine
the CPU time is the fair number), then peak traced memory of one more run
(tracemalloc, allocations made during compute_all) and the process peak RSS (resource.getrusage).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures"
AS_OF = datetime(2022, 7, 23, 12, tzinfo=UTC)


def real_records() -> list:
    from connectors import ckan, dcat, socrata
    from connectors.archive import read_items

    records = []
    for path in sorted((FIXTURES / "socrata" / "latest").glob("*.jsonl.gz")):
        if path.name.endswith(".stats.jsonl.gz"):
            continue
        portal = SimpleNamespace(key=path.name.split(".jsonl")[0], kind="socrata", url=f"https://{path.name[:-9]}")
        items, _stats = read_items(path, "socrata")
        records += [socrata.normalize_item(portal, it) for it in items]
    for path in sorted((FIXTURES / "dcat_us").glob("*.json*")):
        portal = SimpleNamespace(key=path.name.split(".json")[0], kind="dcat", url="https://example.invalid/data.json")
        items, _stats = read_items(path, "dcat")
        records += [dcat.normalize_dataset(portal, it) for it in items]
    for path in sorted((FIXTURES / "ckan").glob("*package_s*.json*")):  # package_search / package_show files
        portal = SimpleNamespace(key=path.name.split(".json")[0], kind="ckan", url="https://example.invalid")
        items, _stats = read_items(path, "ckan")
        records += [ckan.normalize_package(portal, it) for it in items]
    return records


def build_catalog(rows: int, unique_text: bool = False):
    """(CityCatalog of `rows` rows with typed portal facts, number of real records it was built from)."""
    from connectors.base import records_frame
    from indicators.base import CityCatalog, DatajsonCheck, PortalFacts

    base = records_frame(real_records())
    reps = -(-rows // len(base))
    df = pd.concat([base] * reps, ignore_index=True).iloc[:rows].copy()
    copy_no = np.repeat(np.arange(reps), len(base))[:rows]
    df["source_id"] = df["source_id"].astype(str) + "-r" + pd.Series(copy_no).astype(str)  # fresh ids
    if unique_text:  # worst case for the per-distinct-value string work: every title and description differs
        tag = " #" + pd.Series(np.arange(len(df))).astype(str)
        df["title"] = df["title"].astype(object).fillna("") + tag
        df["description"] = df["description"].astype(object).fillna("") + tag
    df["city_key"] = "bench"
    df["first_seen"] = pd.Timestamp("2022-06-08", tz="UTC")
    seen = pd.Series(list(zip(df["created"], df["data_modified"], strict=True)), dtype=object)
    df["data_modified_seen"] = seen.map(lambda t: tuple(sorted({x for x in t if not pd.isna(x)})))
    facts = PortalFacts(reachable=True, kinds=frozenset({"socrata", "dcat"}),
                        history_start=datetime(2022, 6, 8, tzinfo=UTC),
                        datajson=DatajsonCheck(checked=True, present=True, validated=True, entries=len(df),
                                               error_count=3),
                        removed=frozenset({"gone-1"}), departments=("Finance", "Police", "Fire", "Parks"))
    return CityCatalog(df, facts), len(base)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--unique-text", action="store_true", help="make every title and description distinct")
    args = ap.parse_args(argv)

    import indicators

    t0 = time.perf_counter()
    df, n_real = build_catalog(args.rows, args.unique_text)
    print(f"catalog: {len(df.frame):,} rows from {n_real:,} real normalised records "
          f"({time.perf_counter() - t0:.1f} s to build)")

    times, cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        scores = indicators.compute_all(df, AS_OF)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(f"compute_all: {len(scores)} indicators, best {min(times):.2f} s, median {float(np.median(times)):.2f} s, "
          f"runs {', '.join(f'{x:.2f}' for x in times)} (load average {__import__('os').getloadavg()[0]:.1f}); "
          f"CPU time best {min(cpu):.2f} s (what an idle machine would take: the work is single-threaded)")

    tracemalloc.start()
    indicators.compute_all(df, AS_OF)
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"peak memory allocated during compute_all (tracemalloc): {peak / 2**20:.0f} MiB")
    print(f"process peak RSS (catalog + scores + interpreter): {rss_mb:.0f} MiB")


if __name__ == "__main__":
    main()
