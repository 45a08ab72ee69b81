"""Workers benchmark: do two `maturity worker` processes sharing PostgreSQL harvest 200 portals faster than one?

    flock /work/bench.lock .venv/bin/python benchmarks/workers.py [--portals 200] [--latency-ms 100] [--repeat 3]
                                                                  [--workers 1,2] [--threads N]

200 recorded Socrata catalogs (../shared/fixtures/socrata_scrape_2022/latest, the first 200 by name; each one
portal of its own city) are served by the emulator in a child process, every answer `--latency-ms` late (real
portals are far away). Every portal's schedule fired two minutes before, so a worker finds them all due at its
start (its sweep, `scheduler.harvest_due`: the portals split through their leases). For each worker count, a
fresh PostgreSQL database (MATURITY_BENCH_PG, default postgresql+psycopg://postgres@127.0.0.1:5432/test's
server) is upgraded, N `maturity worker --sweep-every 1` processes start, and the clock runs from the first run
started to the last run finished (the database's times: process start-up is not harvesting). Each harvest is
scored, as a worker does. Every portal must end with exactly one ok run. min / median / max of `--repeat`.

`--machine-cpus F` stands each worker's machine in with a CPU quota of F cores (a cgroup of its own, its threads and
children included; needs root and a cgroup cpu controller): each worker then has CPU of its own, as on a machine
of its own, while PostgreSQL and the emulator run outside the quotas as the shared database server and the
portals' own hosts would. Without it the workers, the database and the emulator share this machine's cores,
which on a 2-core machine caps what a second worker can add.

Issue 13, target 7: 2 workers in at most 0.6x the time of one.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from latency import FIXTURES, serve  # noqa: E402 - the same recorded catalogs and emulator child
from pgdb import fresh_database  # noqa: E402

V2 = Path("/sys/fs/cgroup")
V1_CPU = Path("/sys/fs/cgroup/cpu")
PG_ADMIN_URL = os.environ.get("MATURITY_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WAIT_S = 900  # upper bound of one measurement


def config_text(base: str, domains: list[str], fired: datetime) -> str:
    return "".join(f"""
[[cities]]
key = "c{i}"
name = "{d}"
[[cities.portals]]
key = "p{i}"
kind = "socrata"
url = "{base}"
domain = "{d}"
schedule = "{fired.minute} {fired.hour} * * *"
""" for i, d in enumerate(domains))


class Machine:
    """A stand-in for one worker's own machine: a cgroup holding `cpus` cores' worth of CPU time (cgroup v2's
    cpu.max, or v1's CFS quota), which the processes put in it and their threads share."""

    PERIOD_US = 100_000

    def __init__(self, name: str, cpus: float) -> None:
        quota = int(cpus * self.PERIOD_US)
        if (V2 / "cgroup.controllers").exists():
            (V2 / "cgroup.subtree_control").write_text("+cpu")
            self.path = V2 / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
        elif (V1_CPU / "cpu.cfs_quota_us").exists():
            self.path = V1_CPU / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            raise SystemExit("--machine-cpus needs a cgroup cpu controller (v2 at /sys/fs/cgroup or v1 at "
                             f"{V1_CPU}) and root")

    def hold(self, pid: int) -> None:
        # a worker is moved in right after its start, before it harvests (the clock starts at its first run)
        (self.path / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        self.path.rmdir()  # its processes have exited: the group is empty


def measure(base: str, domains: list[str], workers: int, threads: int | None, tmp: Path,
            machine_cpus: float | None = None) -> float:
    """Seconds from the first run started to the last run finished, `workers` worker processes (each in a
    `Machine` of `machine_cpus` cores when given), into a fresh PostgreSQL database."""
    with fresh_database(PG_ADMIN_URL, "fleet_workers") as url:
        return _measure(url, base, domains, workers, threads, tmp, machine_cpus)


def _split(tmp: Path, name: str, workers: int, runs: int, wait_s: float = 10.0) -> list[int]:
    """Portals harvested per worker, from their logs. A worker logs a portal after its run is committed, so the
    last lines may come a moment after the database shows every run: read until they add up (at most `wait_s`)."""
    end = time.monotonic() + wait_s
    while True:
        split = [(tmp / f"{name}-{w}.log").read_text().count("event=harvested") for w in range(workers)]
        if sum(split) >= runs or time.monotonic() > end:
            return split
        time.sleep(0.1)


def _measure(url: str, base: str, domains: list[str], workers: int, threads: int | None, tmp: Path,
             machine_cpus: float | None) -> float:
    import storage

    name = url.rsplit("/", 1)[1]
    procs: list[subprocess.Popen] = []
    machines: list[Machine] = []
    try:
        config = tmp / f"config-{name}.toml"
        config.write_text(config_text(base, domains, datetime.now(UTC) - timedelta(minutes=2)))
        storage.upgrade(url)
        env = {**os.environ, "MATURITY_CONFIG": str(config), "DATABASE_URL": url}
        extra = ["--threads", str(threads)] if threads else []
        for w in range(workers):
            with (tmp / f"{name}-{w}.log").open("w") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "maturity", "worker", "--sweep-every", "1",
                                               *extra], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
            if machine_cpus:
                machines.append(Machine(f"{name}-{w}", machine_cpus))
                machines[-1].hold(procs[-1].pid)
        engine = storage.open_db(url)
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            runs = storage.runs(engine)
            if len(runs) >= len(domains) and not (runs["status"] == "running").any():
                break
            for w, p in enumerate(procs):
                if p.poll() is not None:
                    raise SystemExit(f"worker {w} exited with status {p.returncode}: see {tmp / f'{name}-{w}.log'}")
            time.sleep(0.2)
        else:
            raise SystemExit(f"not all portals harvested within {WAIT_S} s: see {tmp}")
        harvests = runs[runs["source"] == "harvest"]
        if sorted(harvests["portal_key"]) != sorted(f"p{i}" for i in range(len(domains))):
            raise SystemExit("a portal was harvested twice, or not at all")
        if set(harvests["status"]) != {"ok"}:
            raise SystemExit(f"runs not ok: {harvests.loc[harvests['status'] != 'ok', ['portal_key', 'error']]}")
        split = _split(tmp, name, workers, len(harvests))
        took = (harvests["finished_at"].max() - harvests["started_at"].min()).total_seconds()
        print(f"  {workers} worker(s): {took:.2f} s, portals per worker {split}", flush=True)
        return took
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        for m in machines:
            m.close()
        storage.dispose(url)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--portals", type=int, default=200)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--threads", type=int, help="portals each worker harvests at once (default: the worker's)")
    ap.add_argument("--machine-cpus", type=float,
                    help="give each worker a machine of its own with this many cores (a cgroup CPU quota)")
    args = ap.parse_args(argv)
    files = sorted(str(f) for f in FIXTURES.glob("*.jsonl.gz") if not f.name.endswith(".stats.jsonl.gz"))
    files = files[: args.portals]
    if len(files) < args.portals:
        raise SystemExit(f"need {args.portals} recorded catalogs in {FIXTURES}, found {len(files)}")
    domains = [Path(f).name.removesuffix(".jsonl.gz") for f in files]
    queue: mp.Queue = mp.Queue()
    child = mp.Process(target=serve, args=(files, queue, args.latency_ms / 1000), daemon=True)
    child.start()
    base = queue.get(timeout=300)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-workers-"))
    machines = (f"each worker on {args.machine_cpus:g} cores of its own" if args.machine_cpus
                else "the workers share the cores")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {len(domains)} portals at {args.latency_ms} ms; {machines}; "
          f"{os.cpu_count()} cores; logs in {tmp}")
    try:
        took = {}
        for n in [int(x) for x in args.workers.split(",")]:
            took[n] = [measure(base, domains, n, args.threads, tmp, args.machine_cpus) for _ in range(args.repeat)]
            t = took[n]
            print(f"{n} worker(s): {min(t):.2f} / {statistics.median(t):.2f} / {max(t):.2f} s (min / median / max)",
                  flush=True)
        if 1 in took and 2 in took:
            print(f"2 workers / 1 worker: {statistics.median(took[2]) / statistics.median(took[1]):.2f}x "
                  "(target <= 0.6x, medians)")
    finally:
        child.terminate()


if __name__ == "__main__":
    main()
