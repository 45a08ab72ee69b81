"""The city page and the Datasets page of a 300,000-dataset city, in headless Chromium (issue 13, target 6).

    flock /work/bench.lock .venv/bin/python benchmarks/pages_scale.py [--n 300000] [--db /tmp/pages-300k.db]
        [--repeat 3]

1. Database: `--db` (SQLite) holding one city "big" whose one Socrata portal of `--n` replicated real items
   (benchmarks/scale_portal.py) was harvested (pipeline.harvest) and scored (pipeline.score). Built once and
   reused when it already has scores (building the 300k one takes ~10 GB and a few minutes: run it alone).
2. For each of `--repeat` rounds the dashboard is started in its own process (`maturity serve`'s app: Flask's
   threaded server with the background cache warm-up), and as soon as it answers:
   - cold: the Datasets page of that city, at once (during the warm-up: the first visitor after a start), then
     the city page (each visit waits until its page is quiet, and the Datasets page's filter menus wait for the
     city's explorer table: so the city page's cold visit comes after the warm-up built the large tables; its
     header and cards come from stored scores either way);
   - warm: the same two again, each in a fresh context, once the warm-up has finished.
   Per visit: ms from navigation start until the main content is visible (tests/e2e/speed.py: the first
   criterion card; the first grid row), and the longest main-thread task until the page is quiet (the city
   page's drill-down grid included). The server process's peak RSS (VmHWM) is read after each round.
3. Prints min / median / max of each figure over the rounds, and the targets: main content <= 2,000 ms, no task
   > 200 ms, the web process < 1 GB.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.browser import launch_args  # noqa: E402 - the same Chromium flags as the page benchmark
from tests.e2e.speed import OBSERVER_JS, measure_page  # noqa: E402 - the e2e speed test measures the same way

CITY = "big"
MAIN_CONTENT_MS = 2000
LONG_TASK_MS = 200
RSS_LIMIT_MB = 1024


def pages(city: str) -> dict[str, str]:
    """The two pages measured -> the selector of their main content (as tests/e2e/speed.py's PAGES)."""
    return {f"/datasets?cities={city}": "#ds-grid .ag-row", f"/city/{city}": "#city-cards .criterion-card"}


def settings_for(url: str, portal_url: str = "http://127.0.0.1:9/", city: str = CITY):
    """One city with one Socrata portal `<city>-socrata` (the scale portal's address only matters while
    harvesting)."""
    from benchmarks.scale_portal import DOMAIN
    from maturity.settings import CityConfig, PortalConfig, Settings

    portal = PortalConfig(key=f"{city}-socrata", city_key=city, kind="socrata", url=portal_url, domain=DOMAIN)
    return Settings(path=Path("pages_scale.toml"), storage_url=url, cities=(CityConfig(city, "Big City", (portal,)),))


def ensure_db(db: Path, n: int, city: str = CITY) -> str:
    """The database URL, harvested and scored at `n` items unless `db` already has scores of `city`."""
    import storage
    from benchmarks.scale_portal import ScalePortal
    from maturity import pipeline

    url = f"sqlite:///{db}"
    if db.exists():
        engine = storage.open_db(url)
        if not storage.latest_scores(engine, city).empty:
            return url
        raise SystemExit(f"{db} exists without scores of {city!r}: remove it to build it again")
    storage.upgrade(url)
    with ScalePortal("socrata", n) as portal:
        cfg = settings_for(url, portal.url)
        engine = storage.open_db(url)
        storage.sync_config(engine, cfg)
        t = time.perf_counter()
        summary = pipeline.harvest(cfg, engine, cfg.portals[0], now=datetime.now(UTC))
        print(f"harvest: {summary.status}, {summary.items:,} items in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
        if summary.status != "ok":
            raise SystemExit(f"harvest failed: {summary.error or summary.suspect_reason}")
    t = time.perf_counter()
    pipeline.score(cfg, engine, CITY)
    print(f"score: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    storage.dispose(url)
    return url


SERVER = """
import logging, sys
sys.path.insert(0, {root!r})
from benchmarks.pages_scale import settings_for
from maturity import app
from werkzeug.serving import make_server
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")  # the warm-up's line tells when it is done
logging.getLogger("werkzeug").setLevel(logging.WARNING)
srv = make_server("127.0.0.1", 0, app.create_app(settings_for({url!r}, city={city!r})).server, threaded=True)
print(srv.server_port, flush=True)
srv.serve_forever()
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def watch_warmup(server: subprocess.Popen) -> threading.Event:
    """An event set when the server's warm-up logs that the caches are warm (its one INFO line on stderr); the
    thread reads stderr to its end, so the server never blocks on a full pipe."""
    done = threading.Event()

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            if "cache warm" in line or "warm-up stopped" in line:
                print(f"  server: {line.strip()}", file=sys.stderr)
                done.set()

    threading.Thread(target=read, daemon=True).start()
    return done


def round_(url: str, city: str, browser, rows: list[tuple[str, str, dict]], rss: list[float]) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(ROOT), url=url, city=city)],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert server.stdout is not None
        warmed = watch_warmup(server)
        base = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        urllib.request.urlopen(base + "/health", timeout=60).read()
        for visit in ("cold", "warm"):
            if visit == "warm" and not warmed.wait(1800):
                raise RuntimeError("the warm-up did not finish within 30 minutes")
            for path, ready in pages(city).items():
                ctx = browser.new_context(viewport={"width": 1440, "height": 900})
                ctx.add_init_script(OBSERVER_JS)
                rows.append((path, visit, measure_page(ctx.new_page(), base + path, ready, timeout_ms=1_800_000)))
                ctx.close()
        rss.append(peak_rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--db", type=Path, default=None, help="default /tmp/pages-<n/1000>k.db")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--city", default=CITY, help="the scored city to show (a database built elsewhere may name it "
                    "otherwise; its portal is <city>-socrata)")
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args(argv)
    url = ensure_db(args.db or Path(f"/tmp/pages-{args.n // 1000}k.db"), args.n, args.city)
    if args.build_only:
        return 0
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str, dict]] = []
    rss: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_args())
        for i in range(args.repeat):
            round_(url, args.city, browser, rows, rss)
            for path, visit, r in rows[-4:]:  # as it goes: a long run stopped early still says what it saw
                print(f"round {i + 1}: {path} {visit}: main {r['main_ms']:.0f} ms, longest task "
                      f"{r['longest_ms']:.0f} ms, {r['long_tasks']} tasks > 50 ms", file=sys.stderr, flush=True)
            print(f"round {i + 1}: peak RSS {rss[-1]:.0f} MB", file=sys.stderr, flush=True)
        browser.close()
    report(rows, rss, args.city)
    return 0


def _mmm(values: list[float]) -> str:
    return f"{min(values):>7.0f} {statistics.median(values):>7.0f} {max(values):>7.0f}"


def report(rows: list[tuple[str, str, dict]], rss: list[float], city: str = CITY) -> None:
    print(f"{'page':<24} {'visit':<5} {'main content ms min/med/max':>27} {'longest task ms min/med/max':>27} "
          f"{'tasks>50ms max':>14}")
    met = True
    for path in pages(city):
        for visit in ("cold", "warm"):
            runs = [r for p, v, r in rows if p == path and v == visit]
            mains, longs = [r["main_ms"] for r in runs], [r["longest_ms"] for r in runs]
            met &= max(mains) <= MAIN_CONTENT_MS and max(longs) <= LONG_TASK_MS
            print(f"{path:<24} {visit:<5} {_mmm(mains):>27} {_mmm(longs):>27} "
                  f"{max(r['long_tasks'] for r in runs):>14}")
    print(f"web process peak RSS MB min/med/max: {_mmm(rss)}")
    met &= max(rss) < RSS_LIMIT_MB
    print(f"targets (main content <= {MAIN_CONTENT_MS} ms, longest task <= {LONG_TASK_MS} ms, peak RSS < "
          f"{RSS_LIMIT_MB} MB): {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    raise SystemExit(main())
