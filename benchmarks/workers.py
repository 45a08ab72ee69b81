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
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from latency import FIXTURES, serve  # noqa: E402 - the same recorded catalogs and emulator child

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


def measure(base: str, domains: list[str], workers: int, threads: int | None, tmp: Path) -> float:
    """Seconds from the first run started to the last run finished, `workers` worker processes."""
    import sqlalchemy as sa

    import storage

    name = f"fleet_workers_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    procs: list[subprocess.Popen] = []
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
        engine = storage.open_db(url)
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            runs = storage.runs(engine)
            if len(runs) >= len(domains) and not (runs["status"] == "running").any():
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a worker exited: see {tmp}")
            time.sleep(0.2)
        else:
            raise SystemExit(f"not all portals harvested within {WAIT_S} s: see {tmp}")
        harvests = runs[runs["source"] == "harvest"]
        if sorted(harvests["portal_key"]) != sorted(f"p{i}" for i in range(len(domains))):
            raise SystemExit("a portal was harvested twice, or not at all")
        if set(harvests["status"]) != {"ok"}:
            raise SystemExit(f"runs not ok: {harvests.loc[harvests['status'] != 'ok', ['portal_key', 'error']]}")
        split = [(tmp / f"{name}-{w}.log").read_text().count("event=harvested") for w in range(workers)]
        took = (harvests["finished_at"].max() - harvests["started_at"].min()).total_seconds()
        print(f"  {workers} worker(s): {took:.2f} s, portals per worker {split}", flush=True)
        return took
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        storage.dispose(url)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--portals", type=int, default=200)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--threads", type=int, help="portals each worker harvests at once (default: the worker's)")
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
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {len(domains)} portals at {args.latency_ms} ms; logs in {tmp}")
    try:
        took = {}
        for n in [int(x) for x in args.workers.split(",")]:
            took[n] = [measure(base, domains, n, args.threads, tmp) for _ in range(args.repeat)]
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
