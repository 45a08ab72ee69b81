"""Scale benchmark (issue 13, targets 1 and 2): memory and speed of harvesting one large portal.

    .venv/bin/python benchmarks/scale.py --sizes 30000,100000,300000 --kind socrata --repeat 3

For each size N, `benchmarks/scale_portal.py` serves a portal of N real records with fresh ids on loopback
(Socrata pages of 10,000 or CKAN pages of 1,000). Each repeat, into a fresh SQLite database under /tmp:

- first harvest: `pipeline.harvest` of the portal, in a fresh child process;
- unchanged re-harvest: the same portal a day later, in another fresh child process;
- the floor: a bare `json.loads` of the very page bodies the portal served, in this process (with the cyclic
  GC on, as `json.loads` runs by default, and paused, as the harvest runs).

Each child's wall and CPU time (all its threads) are measured around `pipeline.harvest` alone (not the
interpreter's start); its peak RSS is the child's own high-water mark since its exec (VmHWM; its `ru_maxrss`
would include the parent's memory at fork), so the numbers of two runs never mix. Reported per size: min /
median / max over the repeats of each, and the ratios of the targets: first harvest / floor (target <= 4x),
re-harvest / first (target <= 30%), peak RSS (target < 1 GB at 300k, < 2x from the smallest size to the
largest). The targets are wall ratios; the same ratios of CPU times (the floor's with the GC paused, as the
harvest runs) are printed beside them because other load on a shared machine moves wall times much more than
CPU times. Heavy: run it under `flock /work/bench.lock`.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T0 = datetime(2026, 11, 25, 4, tzinfo=UTC)


def child(args: argparse.Namespace) -> None:
    """One harvest in this (fresh) process; prints its wall time and summary as JSON."""
    import storage
    from maturity import pipeline
    from maturity.settings import CityConfig, PortalConfig, Settings

    extra = {"domain": args.domain} if args.kind == "socrata" else {}
    portal = PortalConfig(key=f"scale-{args.kind}", city_key="scale", kind=args.kind, url=args.portal_url, **extra)
    cfg = Settings(path=Path(args.db).with_suffix(".toml"), storage_url=f"sqlite:///{args.db}",
                   cities=(CityConfig(key="scale", name="Scale", portals=(portal,)),))
    engine = storage.open_db(cfg.storage_url)
    t, cpu = time.perf_counter(), time.process_time()
    summary = pipeline.harvest(cfg, engine, portal, now=datetime.fromisoformat(args.as_of))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({"wall": wall, "cpu": cpu, "hwm_mb": _high_water_mb(), "status": summary.status,
                      "items": summary.items, "new_versions": summary.new_versions, "error": summary.error}))


def _high_water_mb() -> float | None:
    """This process's peak RSS since its exec (Linux VmHWM). The exec'd child's `ru_maxrss` is not: Linux carries
    the forking parent's high-water mark across exec, and after the floor of a larger size the parent is large."""
    try:
        with open("/proc/self/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return kb / 1024


def harvest_in_child(kind: str, portal_url: str, domain: str, db: str, as_of: datetime) -> dict:
    """Run `child` in a fresh interpreter; its JSON result plus its own peak RSS in MB."""
    cmd = [sys.executable, __file__, "--child", "--kind", kind, "--portal-url", portal_url, "--domain", domain,
           "--db", db, "--as-of", as_of.isoformat()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"harvest child failed ({proc.returncode}): {out[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    if result["status"] == "failed":
        raise RuntimeError(f"harvest failed: {result['error']}")
    result["rss_mb"] = result.get("hwm_mb") or usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def floor(bodies: list[bytes]) -> tuple[float, float, float]:
    """Seconds to json.loads every body: wall with the cyclic GC on (the default) and paused, and the CPU time of
    the paused pass (the harvest runs with the GC paused)."""
    out = []
    for paused in (False, True):
        if paused:
            gc.disable()
        try:
            gc.collect()
            t, cpu = time.perf_counter(), time.process_time()
            for body in bodies:
                json.loads(body)
            out.append(time.perf_counter() - t)
        finally:
            gc.enable()
    return out[0], out[1], time.process_time() - cpu


def stats(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def measure(kind: str, n: int, repeat: int) -> dict:
    from benchmarks.scale_portal import DOMAIN, ScalePortal

    rows: dict[str, list[float]] = {k: [] for k in ("floor", "floor_gc_off", "floor_cpu", "first", "first_cpu",
                                                    "first_rss", "again", "again_cpu", "again_rss", "first_ratio",
                                                    "again_share", "first_cpu_ratio", "again_cpu_share")}
    with ScalePortal(kind, n) as portal:
        url = portal.config().url
        mb = portal.body_bytes / 1e6
        for k in range(repeat):
            with tempfile.TemporaryDirectory(prefix="stream-scale-") as tmp:
                db = f"{tmp}/scale.db"
                import storage

                storage.upgrade(f"sqlite:///{db}")
                storage.dispose(f"sqlite:///{db}")
                first = harvest_in_child(kind, url, DOMAIN, db, T0)
                again = harvest_in_child(kind, url, DOMAIN, db, T0 + timedelta(days=1))
                db_mb = Path(db).stat().st_size / 1e6
            assert first["items"] == n and again["new_versions"] == 0, (first, again)
            bodies = portal.page_bodies()
            on, off, off_cpu = floor(bodies)
            del bodies
            for key, value in (("floor", on), ("floor_gc_off", off), ("floor_cpu", off_cpu),
                               ("first", first["wall"]), ("first_cpu", first["cpu"]), ("first_rss", first["rss_mb"]),
                               ("again", again["wall"]), ("again_cpu", again["cpu"]), ("again_rss", again["rss_mb"]),
                               ("first_ratio", first["wall"] / on), ("again_share", again["wall"] / first["wall"]),
                               ("first_cpu_ratio", first["cpu"] / off_cpu),
                               ("again_cpu_share", again["cpu"] / first["cpu"])):
                rows[key].append(value)
            print(f"  {kind} {n:,} repeat {k + 1}: floor {on:.2f} s ({off:.2f} s GC off, {off_cpu:.2f} s CPU); "
                  f"first {first['wall']:.2f} s ({first['cpu']:.2f} s CPU), {first['rss_mb']:.0f} MB; "
                  f"again {again['wall']:.2f} s ({again['cpu']:.2f} s CPU), {again['rss_mb']:.0f} MB; "
                  f"ratios {first['wall'] / on:.2f}x floor, {again['wall'] / first['wall']:.0%} of first "
                  f"(CPU: {first['cpu'] / off_cpu:.2f}x, {again['cpu'] / first['cpu']:.0%}); db {db_mb:.0f} MB",
                  flush=True)
    print(f"{kind} {n:,} items ({mb:,.0f} MB of JSON), min / median / max of {repeat}:")
    print(f"  json.loads floor      {stats(rows['floor'])} s   (GC off: {stats(rows['floor_gc_off'])} s, "
          f"CPU {stats(rows['floor_cpu'])} s)")
    print(f"  first harvest         {stats(rows['first'])} s   CPU {stats(rows['first_cpu'])} s   "
          f"peak RSS {stats(rows['first_rss'])} MB")
    print(f"  unchanged re-harvest  {stats(rows['again'])} s   CPU {stats(rows['again_cpu'])} s   "
          f"peak RSS {stats(rows['again_rss'])} MB")
    print(f"  first / floor         {stats(rows['first_ratio'])} x     (target <= 4; CPU / GC-off CPU: "
          f"{stats(rows['first_cpu_ratio'])} x)")
    print(f"  re-harvest / first    {stats([100 * s for s in rows['again_share']])} %     (target <= 30; CPU: "
          f"{stats([100 * s for s in rows['again_cpu_share']])} %)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sizes", default="30000", help="comma-separated catalog sizes (default 30000)")
    ap.add_argument("--kind", default="socrata", choices=("socrata", "ckan"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--portal-url", help=argparse.SUPPRESS)
    ap.add_argument("--domain", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--as-of", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {args.kind}, sizes {sizes}, "
          f"repeat {args.repeat}", flush=True)
    peaks = {}
    for n in sizes:
        rows = measure(args.kind, n, args.repeat)
        peaks[n] = statistics.median(rows["first_rss"])
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        print(f"peak RSS growth {lo:,} -> {hi:,}: {peaks[hi] / peaks[lo]:.2f}x (median first harvests; target < 2)")


if __name__ == "__main__":
    main()
