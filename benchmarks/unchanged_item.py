"""What an unchanged Socrata item costs a re-harvest, and whether a fingerprint of the item as received could skip
its canonical hash (issue 13, target 2).

    .venv/bin/python benchmarks/unchanged_item.py --size 30000 --rounds 3     # under flock /work/bench.lock

1. Real crawls: the weekly history of ten cities (../shared/fixtures/socrata_scrape_2022/history, consecutive
   snapshots 7 days apart, the last pair 3 days). Of the items whose canonical hash (`SocrataConnector.raw_hash`)
   is unchanged between two snapshots, how many are also byte-identical as received (orjson of the item without
   its usage counters, key and column order as served): the share an as-received fingerprint, compared before the
   canonical hash, would let skip it.
2. Cost per item, in place: the pages of `benchmarks/scale_portal.py` (Chicago's 2022 items, fresh ids) parsed with
   orjson as the harvest parses them, then each item's id, canonical hash, `canonical_item` alone, and the sha1 of
   its bytes as received, timed over every item of each freshly parsed page (CPU time, cyclic GC paused as in a
   harvest). Min over the rounds, microseconds per item.
"""
from __future__ import annotations

import argparse
import gc
import gzip
import hashlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.scale_portal import FIXTURES, ScalePortal  # noqa: E402 - after the checkout is on the path
from connectors.hashing import _without_usage  # noqa: E402
from connectors.socrata import SocrataConnector, canonical_item  # noqa: E402

HISTORY = FIXTURES / "socrata_scrape_2022" / "history"


def as_received(raw: dict[str, Any]) -> bytes:
    """sha1 of the item without usage counters, keys and columns in the order served."""
    return hashlib.sha1(orjson.dumps(_without_usage(raw))).digest()


def real_crawls() -> dict[int, list[int]]:
    """{days between snapshots: [pairs, unchanged by the canonical hash, of those byte-identical as received]}."""
    out: dict[int, list[int]] = {}
    for domain in sorted(p for p in HISTORY.iterdir() if p.is_dir()):
        previous: dict[str, tuple[str, bytes]] | None = None
        previous_day: datetime | None = None
        for path in sorted(domain.glob("*.jsonl.gz")):
            day = datetime.strptime(path.name[:10], "%Y-%m-%d").replace(tzinfo=UTC)
            current: dict[str, tuple[str, bytes]] = {}
            with gzip.open(path, "rb") as f:
                for line in f:
                    if line.strip():
                        raw = orjson.loads(line)
                        current.setdefault(SocrataConnector.source_id(raw),
                                           (SocrataConnector.raw_hash(raw), as_received(raw)))
            if previous is not None and previous_day is not None:
                row = out.setdefault((day - previous_day).days, [0, 0, 0])
                for sid, (h, fp) in current.items():
                    if sid in previous:
                        row[0] += 1
                        row[1] += previous[sid][0] == h
                        row[2] += previous[sid] == (h, fp)
            previous, previous_day = current, day
    return out


def per_item(bodies: list[bytes], rounds: int) -> dict[str, float]:
    """Min over `rounds` of CPU microseconds per item: the page parse, and each step on the freshly parsed items."""
    steps: dict[str, Callable[[dict[str, Any]], Any]] = {
        "source_id": SocrataConnector.source_id,
        "canonical hash (raw_hash)": SocrataConnector.raw_hash,
        "  of which canonical_item": canonical_item,
        "sha1 as received": as_received,
    }
    best = dict.fromkeys(["orjson parse of the page", *steps], float("inf"))
    n = 0
    gc.disable()
    try:
        for _ in range(rounds):
            for name, step in steps.items():
                parse = spent = 0.0
                n = 0
                for body in bodies:
                    t = time.process_time()
                    items = orjson.loads(body)["results"]
                    parse += time.process_time() - t
                    t = time.process_time()
                    for raw in items:
                        step(raw)
                    spent += time.process_time() - t
                    n += len(items)
                    del items
                best[name] = min(best[name], spent)
                best["orjson parse of the page"] = min(best["orjson parse of the page"], parse)
    finally:
        gc.enable()
    return {k: v / n * 1e6 for k, v in best.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--size", type=int, default=30_000, help="items of the synthetic portal (default 30000)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
          flush=True)
    for days, (pairs, same, identical) in sorted(real_crawls().items()):
        print(f"real crawls {days} days apart: {pairs:,} items in both, {same:,} unchanged (canonical hash), "
              f"{identical:,} of those byte-identical as received ({identical / same:.0%})")
    with ScalePortal("socrata", args.size) as portal:
        bodies = portal.page_bodies()
    for name, us in per_item(bodies, args.rounds).items():
        print(f"  {name:28s} {us:6.1f} us an item")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
