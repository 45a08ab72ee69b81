"""Scores at scale (issue 13, target 4): `maturity score` of a 300,000-dataset portal, `score --all` of a 2-year
weekly history of 50 cities. Each timed command runs in a fresh child process (wall clock, CPU time, the peak RSS
of its largest process and the peak PSS of all its processes: `maturity score` forks a reader for a large catalog).

    flock /work/bench.lock .venv/bin/python benchmarks/score_scale.py portal  [--n 300000] [--repeat 3]
    flock /work/bench.lock .venv/bin/python benchmarks/score_scale.py history [--repeat 3]

portal: the Socrata portal of `benchmarks/scale_portal.py` (`ScalePortal("socrata", n)`: Chicago's 2022 items
replicated with fresh ids), harvested once with `maturity harvest --no-score` into /tmp/scores-<n>.db (reused
when present: the harvest is not what is measured), then `maturity score --city scale` timed `--repeat` times.

history: 50 cities x 104 weekly runs (Mondays from 2021-01-04 to 2022-12-26), imported once with
`pipeline.import_files` into /tmp/scores-history.db (reused when present), then `maturity score --all` timed.
The cities and their weekly catalogs, all recorded files of ../shared/fixtures/socrata_scrape_2022:
- cities 0-9 are the 10 domains of `history/` (8 recorded weekly snapshots each, 2022-06-08 .. 2022-07-23):
  week w imports snapshot w mod 8, so the catalog moves every week and jumps back every 8th week (datasets
  changed back, some gone and back).
- cities 10-49 are the 40 largest other domains of `latest/` (one recorded snapshot each): week w imports that
  snapshot, except every 4th week (w mod 4 == 3) which imports it without its last tenth of items (a partial
  crawl, or removals once confirmed) -- so some weeks change and many do not, as real portals do.
Counts are printed: runs, dated scorings, datasets.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.scale_portal import FIXTURES  # noqa: E402 - after the path is set

SCRAPE = FIXTURES / "socrata_scrape_2022"
WEEKS = 104
CITIES = 50
FIRST_MONDAY = datetime(2021, 1, 4, 6, 0, tzinfo=UTC)
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def _tree_pss_kb(pid: int) -> int:
    """Proportional set size of a process and its descendants (KB): what they hold together, pages shared after a
    fork counted once (ru_maxrss is the largest single process, which understates forked readers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone between two reads
    return total


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds, peak PSS MB of the process tree) of one child process and its
    workers; fails loudly when the command fails. CPU time is reported beside wall time: on a shared machine wall
    time also measures the neighbours. The tree's PSS is sampled every 50 ms (a peak between samples is missed)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_pss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, peak[0] / 1024  # ru_maxrss: KB on Linux


def maturity(config: Path, *args: str) -> list[str]:
    return [PYTHON, "-m", "maturity", "--config", str(config), *args]


def report(what: str, runs: list[tuple[float, float, float, float]]) -> None:
    if not runs:  # --repeat 0: the database was only built
        return
    for name, unit, values in (("wall", "s", [r[0] for r in runs]), ("CPU", "s", [r[2] for r in runs]),
                               ("peak RSS (largest process)", "MB", [r[1] for r in runs]),
                               ("peak PSS (all its processes)", "MB", [r[3] for r in runs])):
        print(f"{what}: {name} min/median/max {min(values):,.2f} / {statistics.median(values):,.2f} / "
              f"{max(values):,.2f} {unit}")


# ---------------------------------------------------------------- the 300k portal

def portal_config(path: Path, db: Path, url: str) -> Path:
    path.write_text(f'[storage]\nurl = "sqlite:///{db}"\n\n[[cities]]\nkey = "scale"\nname = "Scale"\n'
                    f'[[cities.portals]]\nkey = "scale-socrata"\nkind = "socrata"\ndomain = "data.scale.example"\n'
                    f'url = "{url}"\n')
    return path


def build_portal(n: int, db: Path, config: Path) -> None:
    from benchmarks.scale_portal import ScalePortal

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    with ScalePortal("socrata", n) as portal:
        portal_config(config, db, portal.config().url)
        subprocess.run(maturity(config, "db", "upgrade"), env=env, check=True)
        wall, rss, _, _ = timed(maturity(config, "harvest", "--no-score", "-q"), env)
    print(f"harvested {n:,} datasets into {db} ({db.stat().st_size / 1e6:,.0f} MB) in {wall:.0f} s, "
          f"peak RSS {rss:,.0f} MB")


def bench_portal(n: int, repeat: int) -> None:
    db, config = Path(f"/tmp/scores-{n}.db"), Path(f"/tmp/scores-{n}.toml")
    if not db.exists():
        build_portal(n, db, config)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    runs = []
    for _ in range(repeat):
        runs.append(timed(maturity(config, "score", "--city", "scale"), env))
        print(f"  maturity score: {runs[-1][0]:.2f} s wall, {runs[-1][2]:.2f} s CPU, {runs[-1][1]:,.0f} MB RSS, "
              f"{runs[-1][3]:,.0f} MB PSS", flush=True)
    report(f"maturity score, {n:,}-dataset portal", runs)


# ---------------------------------------------------------------- the 50-city history

def history_cities() -> list[tuple[str, list[Path]]]:
    """(domain, the files its weeks cycle through) of the 50 cities, as the docstring says."""
    recorded = sorted(p for p in (SCRAPE / "history").iterdir() if p.is_dir())
    cities = [(d.name, sorted(d.glob("*.jsonl.gz"))) for d in recorded]
    taken = {name for name, _ in cities}
    latest = [p for p in (SCRAPE / "latest").glob("*.jsonl.gz") if p.name.removesuffix(".jsonl.gz") not in taken]
    latest.sort(key=lambda p: (-p.stat().st_size, p.name))
    cities += [(p.name.removesuffix(".jsonl.gz"), [p]) for p in latest[:CITIES - len(cities)]]
    return cities


def _shortened(path: Path, out: Path) -> Path:
    """The recorded file without its last tenth of items (lines), written once under /tmp."""
    if not out.exists():
        with gzip.open(path, "rb") as f:
            lines = [line for line in f if line.strip()]
        with gzip.open(out, "wb") as f:
            f.writelines(lines[:len(lines) - len(lines) // 10])
    return out


def history_config(path: Path, db: Path, cities: list[tuple[str, list[Path]]]) -> Path:
    parts = [f'[storage]\nurl = "sqlite:///{db}"\n']
    for i, (domain, _) in enumerate(cities):
        parts.append(f'\n[[cities]]\nkey = "c{i:02d}"\nname = "{domain}"\n[[cities.portals]]\nkind = "socrata"\n'
                     f'domain = "{domain}"\nurl = "https://{domain}"\n')
    path.write_text("".join(parts))
    return path


def build_history(db: Path, config: Path, work: Path) -> None:
    import storage
    from maturity import pipeline, settings

    cities = history_cities()
    history_config(config, db, cities)
    cfg = settings.load(config)
    storage.upgrade(f"sqlite:///{db}")
    engine = storage.open_db(f"sqlite:///{db}")
    work.mkdir(exist_ok=True)
    t = time.perf_counter()
    for w in range(WEEKS):
        when = FIRST_MONDAY + timedelta(weeks=w)
        for i, (domain, files) in enumerate(cities):
            if len(files) > 1:
                path = files[w % len(files)]
            elif w % 4 == 3:
                path = _shortened(files[0], work / f"{domain}.short.jsonl.gz")
            else:
                path = files[0]
            pipeline.import_files(cfg, engine, f"c{i:02d}", when, [path])
        print(f"  imported week {w + 1}/{WEEKS} ({time.perf_counter() - t:.0f} s)", flush=True)
    counts = storage.row_counts(engine)
    print(f"imported {counts['harvest_runs'] if 'harvest_runs' in counts else counts} in "
          f"{time.perf_counter() - t:.0f} s into {db} ({db.stat().st_size / 1e6:,.0f} MB)")


def bench_history(repeat: int) -> None:
    db, config, work = Path("/tmp/scores-history.db"), Path("/tmp/scores-history.toml"), Path("/tmp/scores-history")
    if not db.exists():
        build_history(db, config, work)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    runs = []
    for _ in range(repeat):
        runs.append(timed(maturity(config, "score", "--all"), env))
        print(f"  maturity score --all: {runs[-1][0]:.2f} s wall, {runs[-1][2]:.2f} s CPU, {runs[-1][1]:,.0f} MB RSS, "
              f"{runs[-1][3]:,.0f} MB PSS", flush=True)
    report(f"maturity score --all, {CITIES} cities x {WEEKS} weeks", runs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("portal", "history"))
    ap.add_argument("--n", type=int, default=300_000, help="datasets of the portal (default 300,000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (0: only build the database)")
    args = ap.parse_args(argv)
    if args.what == "portal":
        bench_portal(args.n, args.repeat)
    else:
        bench_history(args.repeat)


if __name__ == "__main__":
    main()
