"""Harvest benchmark: every recorded Socrata domain catalog through the real pipeline, against the emulator.

    .venv/bin/python benchmarks/harvest.py [DIR] [--url DATABASE_URL] [--jobs N] [--threads N] [--repeat N]

DIR holds Discovery-API `*.jsonl.gz` files (default: ../shared/fixtures/socrata_scrape_2022/latest — 291
domains, 12,226 recorded items — else tests/fixtures/socrata/latest). The emulator runs in a child process and
renders each domain's response once before the clock starts (a real portal renders on its own machine, not
on ours). Each domain becomes one portal; `pipeline.harvest_many` — what `maturity harvest` runs — fetches them
over HTTP on 127.0.0.1, `--jobs` worker processes each harvesting `--threads` portals at once (defaults: the
CLI's; `--jobs 1` runs them in this process, `--jobs 1 --threads 1` one portal after another), normalizes and
stores them (one transaction per portal) into a fresh database.

Reported: datasets per second; the parsing floor (a bare `json.loads` of the very response bodies the
harvest received, in this process) and our ratio to it; peak memory (max RSS of this process or of a worker);
then an immediate unchanged re-harvest: its time and the rows it wrote (must be 0 dataset versions).

Times are wall clock and CPU time (user + system) of this process and its worker processes (the emulator
child is not counted): the wall ratio is the target's; the CPU ratio says what the work costs in all. On a
shared machine both swing with other load, so with `--repeat N` the whole measurement (first harvest into a
fresh database, re-harvest, floor) runs N times and the best of each is reported: the least-disturbed run.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DIRS = (ROOT.parent / "shared" / "fixtures" / "socrata_scrape_2022" / "latest",
                ROOT / "tests" / "fixtures" / "socrata" / "latest")
PAGE_LIMIT = 10_000  # the connector asks for the Discovery API maximum too


def serve(files: list[str], queue, latency_s: float = 0.0) -> None:
    """Child process: the emulator serving every domain's recorded items (each answer `latency_s` late)."""
    from tests.emulator import Emulator, load_socrata_jsonl

    catalogs = {Path(f).name.removesuffix(".jsonl.gz"): load_socrata_jsonl(f) for f in files}
    emu = Emulator(socrata=catalogs, frozen=True, latency_s=latency_s)
    for domain in catalogs:  # rendered before the clock starts: the portal's CPU is not the harvest's
        emu.render("/api/catalog/v1", {"domains": domain, "limit": str(PAGE_LIMIT)})
    emu.start()
    queue.put(emu.url)
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", type=Path)
    ap.add_argument("--url", help="database URL (default: a fresh SQLite file per repeat)")
    ap.add_argument("--jobs", type=int, default=None,
                    help="portals harvested at once, as `maturity harvest --jobs` (default: its default)")
    ap.add_argument("--threads", type=int, default=None,
                    help="portals each worker harvests at once, as `maturity harvest --threads` (default: its default)")
    ap.add_argument("--repeat", type=int, default=1, help="measure N times, report the best (default 1)")
    args = ap.parse_args(argv)
    from maturity import pipeline
    args.jobs = pipeline.HARVEST_JOBS if args.jobs is None else args.jobs
    args.threads = pipeline.HARVEST_THREADS if args.threads is None else args.threads
    if args.url and args.repeat > 1:
        ap.error("--repeat needs a fresh database each time: leave out --url")
    folder = args.dir or next(d for d in DEFAULT_DIRS if d.exists())
    files = sorted(str(f) for f in folder.glob("*.jsonl.gz") if not f.name.endswith(".stats.jsonl.gz"))
    domains = [Path(f).name.removesuffix(".jsonl.gz") for f in files]
    if not domains:  # (a relative folder read from another work tree: a "0.00 s" harvest would pass for a number)
        raise SystemExit(f"no recorded catalogs (*.jsonl.gz) in {folder.resolve()}")

    queue: mp.Queue = mp.Queue()
    child = mp.Process(target=serve, args=(files, queue), daemon=True)
    child.start()
    base = queue.get(timeout=120)
    try:
        results = [run(base, domains, args.url, args.jobs, args.threads) for _ in range(args.repeat)]
        if args.repeat > 1:
            report_best(results)
    finally:
        child.terminate()


class Clock:
    """Wall and process CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu() - self.cpu


def _cpu() -> float:
    """CPU seconds of this process plus its finished children (the harvest's worker processes; the emulator
    child is still running, so it is not counted)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run(base: str, domains: list[str], url: str | None, jobs: int, threads: int) -> dict:
    import requests

    import storage
    from maturity import pipeline
    from maturity.settings import CityConfig, PortalConfig, Settings

    tmp = tempfile.mkdtemp()
    url = url or f"sqlite:///{tmp}/bench.db"
    cities = tuple(
        CityConfig(key=f"c{i}", name=d, portals=(PortalConfig(key=f"p{i}", city_key=f"c{i}", kind="socrata",
                                                               url=base, domain=d),))
        for i, d in enumerate(domains))
    cfg = Settings(path=Path(tmp) / "config.toml", storage_url=url, cities=cities)

    storage.upgrade(url)
    engine = storage.open_db(url)
    now = datetime(2026, 11, 25, 4, tzinfo=UTC)
    with Clock() as first_t:
        first = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=jobs, threads=threads, now=now)
    counts = storage.row_counts(engine)
    datasets = sum(s.items for s in first)
    failed = [s for s in first if s.status == "failed"]

    with Clock() as again_t:
        again = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=jobs, threads=threads,
                                      now=now + timedelta(days=1))
    counts2 = storage.row_counts(engine)
    # The parsing floor: the same bodies the harvest received, paged the same way, parsed with json.loads.
    # Measured after the harvests, so the first harvest's workers are forked from a process that has not just
    # built and freed the floor's parsed objects (a real `maturity harvest` has not).
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
    floors = []
    for _ in range(3):  # the floor is short, so the least-disturbed of three
        with Clock() as floor:
            parsed_items = sum(len(json.loads(b)["results"]) for b in bodies)
        floors.append(floor)
    floor_wall, floor_cpu = min(f.wall for f in floors), min(f.cpu for f in floors)

    peak_mb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    storage.dispose(url)

    print(f"jobs: {jobs}  threads: {threads}  domains: {len(domains)}  recorded items: {parsed_items}  "
          f"unique datasets stored: {datasets}  failed portals: {len(failed)}")
    print(f"first harvest: {first_t.wall:.2f} s wall ({datasets / first_t.wall:,.0f} datasets/s), "
          f"{first_t.cpu:.2f} s CPU")
    print(f"parsing floor (json.loads of the {len(bodies)} response bodies): {floor_wall:.3f} s wall, "
          f"{floor_cpu:.3f} s CPU -> ratio {first_t.wall / floor_wall:.1f}x wall, {first_t.cpu / floor_cpu:.1f}x CPU")
    print(f"peak memory (max RSS): {peak_mb:.0f} MB")
    print(f"unchanged re-harvest: {again_t.wall:.2f} s wall, {again_t.cpu:.2f} s CPU; rows written: "
          f"dataset_versions +{counts2['dataset_versions'] - counts['dataset_versions']}, "
          f"datasets +{counts2['datasets'] - counts['datasets']}, "
          f"harvest_runs +{counts2['harvest_runs'] - counts['harvest_runs']}; "
          f"new versions reported {sum(s.new_versions for s in again)}")
    for s in failed[:5]:
        print(f"  failed {s.portal_key}: {s.error}")
    sys.stdout.flush()
    return {"datasets": datasets, "first_wall": first_t.wall, "first_cpu": first_t.cpu, "floor_wall": floor_wall,
            "floor_cpu": floor_cpu, "again_wall": again_t.wall, "again_cpu": again_t.cpu, "peak_mb": peak_mb,
            "again_versions": counts2["dataset_versions"] - counts["dataset_versions"]}


def report_best(results: list[dict]) -> None:
    best = {k: min(r[k] for r in results) for k in ("first_wall", "first_cpu", "floor_wall", "floor_cpu",
                                                    "again_wall", "again_cpu")}
    r0 = results[0]
    print(f"--- best of {len(results)}: first harvest {best['first_wall']:.2f} s wall "
          f"({r0['datasets'] / best['first_wall']:,.0f} datasets/s), {best['first_cpu']:.2f} s CPU; floor "
          f"{best['floor_wall']:.3f} s wall, {best['floor_cpu']:.3f} s CPU -> ratio "
          f"{best['first_wall'] / best['floor_wall']:.1f}x wall, {best['first_cpu'] / best['floor_cpu']:.1f}x CPU; "
          f"re-harvest {best['again_wall']:.2f} s wall, {best['again_cpu']:.2f} s CPU, "
          f"{max(r['again_versions'] for r in results)} dataset_versions written; "
          f"peak RSS {max(r['peak_mb'] for r in results):.0f} MB")


if __name__ == "__main__":
    main()
