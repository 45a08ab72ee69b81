"""`maturity worker` (the scheduler alone, BlockingScheduler) as a deployment runs it: on SQLite and on the
real PostgreSQL server, it stores one job per portal in the database and stops cleanly on SIGTERM.

Every schedule in the test config is moved to 1 January 00:00, so no real portal is harvested.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import storage
from maturity import scheduler
from maturity import settings as settings_mod

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30



def test_worker_stores_its_jobs_and_stops_on_sigterm(db_url, quiet_config, tmp_path):
    env = {**os.environ, "MATURITY_CONFIG": str(quiet_config), "DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "maturity", "-v", "worker"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    cfg = settings_mod.load(quiet_config, environ={"DATABASE_URL": db_url})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        table = None
        while time.monotonic() < deadline and proc.poll() is None:
            if "event=worker-started" in log_path.read_text():
                table = scheduler.status(cfg)
                if (table["next_run_source"] == "job store").all():
                    break
            time.sleep(0.3)
        assert table is not None and (table["next_run_source"] == "job store").all(), log_path.read_text()
        # 1 January 00:00 UTC of the coming year: what the cron line "0 0 1 1 *" gives
        year = time.gmtime().tm_year + 1
        assert {ts.strftime("%Y-%m-%dT%H:%M") for ts in table["next_run"]} == {f"{year}-01-01T00:00"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(STOP_TIMEOUT_S)
        storage.dispose(db_url)
    out = log_path.read_text()
    assert code == 0, out[-4000:]
    assert "event=stopped" in out and "Traceback" not in out, out[-4000:]


def test_a_worker_whose_scheduler_fails_logs_why_and_exits_failing(sqlite_url, quiet_config, monkeypatch, caplog):
    """A worker whose scheduler raises (here: its job store unreachable) logs the error with its traceback before
    stopping, and stops with a failing status. With a harvest in flight `_stop` ends the process at once
    (os._exit), so an error left to propagate would never print: seen in benchmarks/workers.py, a worker that
    ended mid-run with "event=stopped" as its last line and status 0."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    def unreachable(self, *args, **kwargs):
        raise RuntimeError("job store unreachable")

    exits: list[int] = []
    monkeypatch.setattr(BlockingScheduler, "start", unreachable)
    monkeypatch.setattr(storage, "held_leases", lambda: [(None, "harvest:chicago-socrata", "this-worker")])
    monkeypatch.setattr(storage, "close_runs_of", lambda *args, **kwargs: None)
    monkeypatch.setattr(storage, "drop_lease", lambda *args: None)
    monkeypatch.setattr(scheduler.os, "_exit", exits.append)  # the in-flight harvest's immediate exit, recorded
    storage.upgrade(sqlite_url)
    cfg = settings_mod.load(quiet_config, environ={"DATABASE_URL": sqlite_url})
    with caplog.at_level("INFO", logger="maturity.scheduler"), pytest.raises(RuntimeError):
        scheduler.work(cfg, url=sqlite_url)
    crashed = [r for r in caplog.records if r.getMessage() == "event=crashed"]
    assert len(crashed) == 1 and "job store unreachable" in str(crashed[0].exc_info[1])
    assert exits == [1]


# --- several workers share the portals ----------------------------------------------------------------------

SOCRATA = ROOT / "tests" / "fixtures" / "socrata" / "latest"
CHICAGO_UNIQUE = 260  # data.cityofchicago.org.jsonl.gz: 295 lines, 260 unique ids (tests/fixtures/PROVENANCE.md)


def _worker(config: Path, db_url: str, log_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MATURITY_CONFIG": str(config), "DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log:
        return subprocess.Popen([sys.executable, "-m", "maturity", "worker", "--sweep-every", "1", *args], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.postgres
def test_two_workers_on_postgres_split_the_due_portals_and_harvest_each_once(pg_url, tmp_path):
    """Two real `maturity worker` processes on one PostgreSQL database: every due portal is harvested, each once
    for its schedule slot, and the second worker takes what the first, busy, has not reached.

    Each recorded Socrata catalog of tests/fixtures/socrata/latest is one portal (one city each), all served by
    the emulator; every schedule fired two minutes ago, so at start both workers find them all due. Worker A
    harvests one portal at a time (--threads 1), and the emulator holds the first request it gets (A's) until
    worker B, started then, has harvested every other portal.
    """
    import threading

    from tests.emulator import Emulator, load_socrata_jsonl

    catalogs = {f.name.removesuffix(".jsonl.gz"): load_socrata_jsonl(f)
                for f in sorted(SOCRATA.glob("*.jsonl.gz")) if not f.name.endswith(".stats.jsonl.gz")}
    fired = datetime.now(UTC) - timedelta(minutes=2)
    with Emulator(socrata=catalogs) as emu:
        held, release = threading.Event(), threading.Event()
        answer = emu._handle

        def hold_the_first(handler) -> None:
            if not held.is_set():
                held.set()
                release.wait(START_TIMEOUT_S * 2)
            answer(handler)

        emu._handle = hold_the_first  # the handler threads call emu._handle
        config = tmp_path / "config.toml"
        config.write_text("".join(f"""
[[cities]]
key = "c{i}"
name = "{domain}"
[[cities.portals]]
key = "p{i}"
kind = "socrata"
url = "{emu.url}"
domain = "{domain}"
schedule = "{fired.minute} {fired.hour} * * *"
""" for i, domain in enumerate(catalogs)))
        cfg = settings_mod.load(config, environ={"DATABASE_URL": pg_url})
        keys = {p.key: p.domain for p in cfg.portals}
        storage.upgrade(pg_url)  # `maturity db upgrade`, once, before the workers start (docs/deploy.md)
        a = _worker(config, pg_url, tmp_path / "a.log", "--threads", "1")
        b = None
        logs = lambda: ((tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text())  # noqa: E731
        try:
            assert _wait(lambda: held.is_set() or a.poll() is not None) and a.poll() is None, logs()
            b = _worker(config, pg_url, tmp_path / "b.log")
            assert _wait(lambda: len(_finished(pg_url)) == len(keys) - 1 or b.poll() is not None), logs()
            release.set()
            assert _wait(lambda: len(_finished(pg_url)) == len(keys) or a.poll() is not None), logs()
        finally:
            release.set()
            for proc in (a, b):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in (a, b):
                if proc is not None:
                    proc.wait(STOP_TIMEOUT_S)
    runs = storage.runs(storage.open_db(pg_url))
    storage.dispose(pg_url)
    harvests = runs[runs["source"] == "harvest"]
    # one run per portal for its schedule slot, every one complete, each with its catalog's unique items
    assert sorted(harvests["portal_key"]) == sorted(keys)
    assert set(harvests["status"]) == {"ok"}
    items = dict(zip(harvests["portal_key"], harvests["items"], strict=True))
    for key, domain in keys.items():
        assert items[key] == len({it["resource"]["id"] for it in catalogs[domain]}), key
    assert items[next(k for k, d in keys.items() if d == "data.cityofchicago.org")] == CHICAGO_UNIQUE
    # the split: A harvested the portal it was held on (and then found the others done), B all the others
    out = dict(zip("ab", logs(), strict=True))
    assert {w: out[w].count("event=harvested") for w in out} == {"a": 1, "b": len(keys) - 1}, out
    assert "Traceback" not in out["a"] + out["b"]


def _runs(url: str) -> dict:
    runs = storage.runs(storage.open_db(url))
    return runs.set_index("portal_key").to_dict() if len(runs) else {}


def _finished(url: str) -> list[str]:
    runs = storage.runs(storage.open_db(url))
    return sorted(runs.loc[runs["status"] != "running", "portal_key"]) if len(runs) else []


def _wait(condition, timeout_s: float = START_TIMEOUT_S) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False
