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
from pathlib import Path

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
