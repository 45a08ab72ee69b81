"""Every run ends: real `maturity` subprocesses killed (-9) or signalled mid-harvest, on SQLite and PostgreSQL.

The harvest is held mid-run by a hostile portal (tests/hostile.py) that drips its first answer one byte at a
time; every later request gets the recorded Cincinnati data.json (145 datasets) at once, as a portal that
recovered. The other portal of the city is the emulator serving the same document. Waits are on conditions
(the run row, the server having the request, a pid gone), never fixed sleeps.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import storage
from tests.conftest import FIXTURES
from tests.emulator import Emulator, load_json
from tests.hostile import HostileServer, drip_body, first_then, json_body

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60  # upper bound of every condition wait (a loaded 2-core CI machine)
CINCINNATI = FIXTURES / "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz"
CINCINNATI_DATASETS = 145
# Schedules that never fire during a test, so a worker's sweep at start (scheduler.harvest_due) finds nothing due
# whatever the time of day; the tests bring a job due through the job store.
NEVER = "0 0 1 1 *"


@pytest.fixture(scope="module")
def doc():
    return load_json(CINCINNATI)


@pytest.fixture
def portals(doc):
    """(hostile server, emulator): the slow portal drips its first answer; later answers are the document."""
    body = json.dumps(doc).encode()
    with HostileServer() as srv, Emulator(dcat={"cincinnati": doc}) as emu:
        srv.route("/data.json", first_then(drip_body(body, every_s=0.5), json_body(body)))
        yield srv, emu


def write_config(tmp_path: Path, srv, emu) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[[cities]]
key = "town"
name = "Town"
[[cities.portals]]
key = "slow-dcat"
kind = "dcat"
url = "{srv.url}"
schedule = "{NEVER}"
[[cities.portals]]
key = "good-dcat"
kind = "dcat"
url = "{emu.dcat_url('cincinnati')}"
schedule = "{NEVER}"
""")
    return path


def maturity(config: Path, db_url: str, *args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MATURITY_CONFIG": str(config), "DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"}
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "maturity", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def wait_for(condition, what: str, timeout_s: float = WAIT_S):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def slow_run(db_url: str) -> dict | None:
    """The slow portal's newest run, as a dict (None before it has one)."""
    engine = storage.open_db(db_url)
    runs = storage.runs(engine, portal_key="slow-dcat")
    return None if runs.empty else runs.iloc[0].to_dict()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def gone(pid: int) -> bool:
    """Exited (or a zombie nobody reaped yet: it runs no code and holds no connection)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def start_mid_run(tmp_path, db_url, srv, emu, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    """A `maturity harvest` held mid-run by the dripping portal."""
    storage.upgrade(db_url)
    config, log = write_config(tmp_path, srv, emu), tmp_path / "harvest.log"
    proc = maturity(config, db_url, "harvest", "--no-score", "-q", *args, log=log)
    wait_for(lambda: srv.requests and (slow_run(db_url) or {}).get("status") == "running" or proc.poll() is not None,
             "the slow portal's run to be running")
    assert proc.poll() is None, log.read_text()
    return proc, config, log


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_kill_9_mid_harvest_then_the_next_harvest_closes_the_run_and_proceeds(tmp_path, db_url, portals, jobs):
    srv, emu = portals
    proc, config, log = start_mid_run(tmp_path, db_url, srv, emu, "--jobs", jobs)
    workers = children(proc.pid) if jobs == "2" else []
    killed_run = slow_run(db_url)["run_id"]
    proc.kill()
    proc.wait(WAIT_S)
    # the harvest's worker processes die with it (PR_SET_PDEATHSIG), holding no connection or lock
    for pid in workers:
        wait_for(lambda pid=pid: gone(pid), f"worker {pid} to die with its parent")
    assert slow_run(db_url)["status"] == "running"  # nobody could close it: the process died mid-run

    # The next harvest, at once (no waiting for a lock to expire): closes the dead run and harvests the portal.
    again = maturity(config, db_url, "harvest", "--no-score", "-q", "--jobs", jobs, log=log)
    assert again.wait(WAIT_S) == 0, log.read_text()
    out = log.read_text()
    assert "SKIPPED" not in out and f"closed run {killed_run}: interrupted" in out, out
    runs = storage.runs(storage.open_db(db_url), portal_key="slow-dcat").set_index("run_id")
    assert runs.loc[killed_run, "status"] == "failed"
    assert runs.loc[killed_run, "error"].startswith("interrupted:")
    newest = runs.sort_index().iloc[-1]
    assert (newest["status"], newest["items"]) == ("ok", CINCINNATI_DATASETS)
    storage.dispose(db_url)


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_harvest_closes_the_run_as_interrupted_before_exit(tmp_path, sqlite_url, portals, sig, jobs):
    srv, emu = portals
    proc, _, log = start_mid_run(tmp_path, sqlite_url, srv, emu, "--jobs", jobs)
    workers = children(proc.pid) if jobs == "2" else []
    proc.send_signal(sig)
    assert proc.wait(WAIT_S) == 130, log.read_text()
    run = slow_run(sqlite_url)
    assert run["status"] == "failed" and run["error"].startswith("interrupted"), run
    # the portal's lease is released, and no worker outlives the harvest
    assert storage.take_portal(storage.open_db(sqlite_url), "slow-dcat", "next-harvest", now=datetime.now(UTC))
    for pid in workers:
        assert gone(pid)
    storage.dispose(sqlite_url)


def test_worker_stops_within_seconds_on_sigterm_with_a_harvest_in_flight(tmp_path, sqlite_url, portals):
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from maturity import scheduler
    from maturity import settings as settings_mod

    srv, emu = portals
    config = write_config(tmp_path, srv, emu)
    cfg = settings_mod.load(config, environ={"DATABASE_URL": sqlite_url})
    # The slow portal's job is due now in the job store, so the worker runs it as soon as it starts.
    # (Written through the job store itself once the scheduler is down: a paused scheduler that is shut down
    # runs its due jobs once more.)
    sched = scheduler.build_scheduler(cfg, url=sqlite_url, jitter_s=0)
    sched.start(paused=True)
    sched.shutdown()
    store = SQLAlchemyJobStore(engine=storage.open_db(sqlite_url), tablename=scheduler.JOBS_TABLE)
    store.start(BackgroundScheduler(timezone=UTC), "default")
    job = store.lookup_job("harvest:slow-dcat")
    job.next_run_time = datetime.now(UTC)
    store.update_job(job)
    store.shutdown()
    log = tmp_path / "worker.log"
    proc = maturity(config, sqlite_url, "-v", "worker", log=log)
    try:
        wait_for(lambda: srv.requests and (slow_run(sqlite_url) or {}).get("status") == "running"
                 or proc.poll() is not None, "the scheduled harvest to be running")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(WAIT_S)
        stopped_after_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, log.read_text()
    # Left alone, the drip goes on for its full minute (DRIP_LIMIT_S) and the harvest after it; the worker did not
    # wait for the harvest in flight (it took 3 minutes before). The bound is loose for a loaded CI machine.
    assert stopped_after_s < 30, (stopped_after_s, log.read_text())
    run = slow_run(sqlite_url)
    assert run["status"] == "failed" and "interrupted" in run["error"], run
    assert "event=stopped" in log.read_text()
    storage.dispose(sqlite_url)


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_worker_and_serve_close_runs_left_by_a_dead_process_at_start(tmp_path, sqlite_url, portals, command):
    import socket

    import storage.locks as locks

    srv, emu = portals
    config = write_config(tmp_path, srv, emu)
    storage.upgrade(sqlite_url)
    engine = storage.open_db(sqlite_url)
    from maturity import settings as settings_mod

    storage.sync_config(engine, settings_mod.load(config, environ={"DATABASE_URL": sqlite_url}))
    # What a harvest killed with -9 leaves: its run "running" and its lease held by a pid that is gone.
    gone_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
    owner = f"cli:{locks.node()}:{gone_pid}"
    assert storage.try_lock(engine, "harvest:slow-dcat", owner, ttl_s=3600, now=datetime.now(UTC))
    dead_run = storage.start_run(engine, "slow-dcat", as_of=datetime.now(UTC))
    with socket.socket() as s:  # a free port for serve's dashboard
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    log = tmp_path / f"{command}.log"
    args = ["serve", "--port", port] if command == "serve" else ["worker"]
    proc = maturity(config, sqlite_url, *args, log=log)
    try:
        wait_for(lambda: (slow_run(sqlite_url) or {}).get("status") == "failed" or proc.poll() is not None,
                 f"{command} to close the dead run")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"{command} still running {WAIT_S} s after SIGTERM:\n{log.read_text()}") from None
    run = slow_run(sqlite_url)
    assert (run["run_id"], run["status"]) == (dead_run, "failed") and run["error"].startswith("interrupted"), run
    assert f"event=closed-interrupted-runs runs={dead_run}" in log.read_text()
    storage.dispose(sqlite_url)


def test_a_process_that_swallows_the_interrupt_still_ends_after_sigterm(tmp_path):
    """The stop is bounded: an interrupt caught by code that goes on (a library retrying, say) does not keep the
    process alive; it ends STOP_GRACE_S after SIGTERM, with a log line saying so."""
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import logging, sys, time\n"
        "from maturity import scheduler\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.INFO)\n"
        "scheduler.STOP_GRACE_S = 1\n"
        "with scheduler.interrupt_on_sigterm():\n"
        "    print('ready', flush=True)\n"
        "    while True:\n"
        "        try:\n"
        "            time.sleep(0.05)\n"
        "        except KeyboardInterrupt:\n"
        "            print('swallowed', flush=True)\n")
    log = tmp_path / "stubborn.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "ready" in log.read_text() or proc.poll() is not None, "the script to start")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 1 and "swallowed" in text and "event=stop-forced" in text, text
