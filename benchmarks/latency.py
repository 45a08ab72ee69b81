"""Latency benchmark: are a portal's network waits hidden when many portals are harvested at once?

    flock /work/bench.lock .venv/bin/python benchmarks/latency.py [--latency-ms 0,100,1000] [--repeat 3]
                                                                  [--jobs N] [--threads N] [--postgres URL]

Real recorded Socrata catalogs (../shared/fixtures/socrata_scrape_2022/latest, 291 domains) are served by the
emulator (tests/emulator.py) in a child process, each answer `latency_s` late as a portal far away answers, and
rendered once before the clock starts (a real portal renders on its own machine). Each domain is one portal;
`pipeline.harvest_many` (what `maturity harvest` runs) harvests them at its default settings (or --jobs,
--threads) into a fresh SQLite database under /tmp per measurement (or a fresh PostgreSQL database with --postgres,
dropped after); the wall time of that first harvest is
measured `--repeat` times: min / median / max.

Sets: "20" is every 14th domain by name (a mix of sizes, 20 portals), "200" the first 200 by name. "slowest
alone" is each of the 20 harvested alone at 100 ms (once each; the slowest one then `--repeat` times).

Issue 13, target 5: 20 portals at 100 ms within 1.3x the slowest alone; 20 and 200 portals at 100 ms within
1.3x the same portals at 0 ms.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the shared fixtures beside the project (a work tree one level deeper also finds them)
FIXTURES = next((d for d in (ROOT.parent / "shared" / "fixtures" / "socrata_scrape_2022" / "latest",
                             ROOT.parents[1] / "shared" / "fixtures" / "socrata_scrape_2022" / "latest")
                 if d.exists()), ROOT.parent / "shared" / "fixtures" / "socrata_scrape_2022" / "latest")
from benchmarks.harvest import serve  # noqa: E402 - the same emulator child, with its latency
from benchmarks.pgdb import fresh_database  # noqa: E402


class Portals:
    """An emulator child at one latency, and the harvest of some of its domains."""

    def __init__(self, files: list[str], latency_s: float) -> None:
        queue: mp.Queue = mp.Queue()
        self.child = mp.Process(target=serve, args=(files, queue, latency_s), daemon=True)
        self.child.start()
        self.base = queue.get(timeout=300)

    def close(self) -> None:
        self.child.terminate()
        self.child.join()

    def harvest(self, domains: list[str], jobs: int | None, threads: int | None, postgres: str | None = None) -> float:
        """Wall seconds of one first harvest of `domains` into a fresh database (SQLite, or a new PostgreSQL
        database on the server of the `postgres` URL, dropped after); every portal must succeed."""
        import storage
        from maturity import pipeline
        from maturity.settings import CityConfig, PortalConfig, Settings

        tmp = tempfile.mkdtemp(prefix="fleet-latency-")
        with fresh_database(postgres, "fleet_latency") if postgres else nullcontext(f"sqlite:///{tmp}/bench.db") as url:
            cities = tuple(CityConfig(key=f"c{i}", name=d, portals=(
                PortalConfig(key=f"p{i}", city_key=f"c{i}", kind="socrata", url=self.base, domain=d),))
                for i, d in enumerate(domains))
            cfg = Settings(path=Path(tmp) / "config.toml", storage_url=url, cities=cities)
            storage.upgrade(url)
            engine = storage.open_db(url)
            kw = {k: v for k, v in (("jobs", jobs), ("threads", threads)) if v}
            start = time.perf_counter()
            got = pipeline.harvest_many(cfg, engine, cfg.portals, now=datetime(2026, 11, 25, 4, tzinfo=UTC), **kw)
            wall = time.perf_counter() - start
            storage.dispose(url)
        failed = [s for s in got if s.status == "failed"]
        if failed:
            raise SystemExit(f"{len(failed)} portals failed, e.g. {failed[0].portal_key}: {failed[0].error}")
        return wall


def spread(times: list[float]) -> str:
    return f"{min(times):.2f} / {statistics.median(times):.2f} / {max(times):.2f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", default="0,100,1000", help="comma-separated latencies (default 0,100,1000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sets", default="20,200", help="which portal sets (default 20,200)")
    ap.add_argument("--jobs", type=int, help="worker processes (default: harvest_many's)")
    ap.add_argument("--threads", type=int, help="portals at once per worker (default: harvest_many's)")
    ap.add_argument("--postgres", metavar="URL", help="harvest into a fresh database on this PostgreSQL server "
                    "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) instead of SQLite")
    args = ap.parse_args(argv)
    files = sorted(str(f) for f in FIXTURES.glob("*.jsonl.gz") if not f.name.endswith(".stats.jsonl.gz"))
    domains = [Path(f).name.removesuffix(".jsonl.gz") for f in files]
    if len(domains) < 200:
        raise SystemExit(f"need the 291 recorded catalogs in {FIXTURES}, found {len(domains)}")
    sets = {"20": domains[::14][:20], "200": domains[:200]}
    sets = {k: v for k, v in sets.items() if k in args.sets.split(",")}
    from maturity import pipeline

    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; jobs {args.jobs or pipeline.HARVEST_JOBS}, threads "
          f"{args.threads or pipeline.HARVEST_THREADS}; min / median / max of {args.repeat}, seconds")
    walls: dict[tuple[str, int], list[float]] = {}
    for ms in [int(x) for x in args.latency_ms.split(",")]:
        portals = Portals(files, ms / 1000)

        def harvest(domains: list[str], portals: Portals = portals) -> float:
            return portals.harvest(domains, args.jobs, args.threads, args.postgres)
        try:
            for name, chosen in sets.items():
                walls[name, ms] = [harvest(chosen) for _ in range(args.repeat)]
                print(f"{name:>4} portals at {ms:>4} ms: {spread(walls[name, ms])}", flush=True)
            if ms == 100 and "20" in sets:
                alone = {d: harvest([d]) for d in sets["20"]}
                slowest = max(alone, key=lambda d: alone[d])
                walls["slowest", ms] = [alone[slowest]] + [harvest([slowest]) for _ in range(args.repeat - 1)]
                print(f"slowest alone at 100 ms ({slowest}): {spread(walls['slowest', ms])}", flush=True)
        finally:
            portals.close()
    med = {k: statistics.median(v) for k, v in walls.items()}
    if ("20", 100) in med and ("slowest", 100) in med:
        print(f"20 at 100 ms / slowest alone: {med['20', 100] / med['slowest', 100]:.2f}x (target <= 1.3x, medians)")
    for name in sets:
        if (name, 100) in med and (name, 0) in med:
            print(f"{name} at 100 ms / at 0 ms: {med[name, 100] / med[name, 0]:.2f}x (target <= 1.3x, medians)")
        if (name, 1000) in med and (name, 0) in med:
            print(f"{name} at 1000 ms / at 0 ms: {med[name, 1000] / med[name, 0]:.2f}x (no target)")


if __name__ == "__main__":
    main()
