"""The README's deployment recipe, run for real: PostgreSQL + `maturity db upgrade` + `maturity import` +
gunicorn web workers (`maturity.app:server`) + one `maturity worker`, each a separate process, configured only
through the environment (DATABASE_URL, MATURITY_CONFIG) as a deployment would be."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

BIN = Path(sys.executable).parent
SNAPSHOT = FIXTURES / "socrata/history/data.cityofchicago.org/2022-07-23.jsonl.gz"  # 260 unique datasets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout_s: float = 30) -> tuple[int, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.mark.postgres
def test_postgres_gunicorn_workers_and_one_scheduler_worker(tmp_path, pg_url):
    config = tmp_path / "config.toml"
    # The portal URL is never contacted: the worker's job fires on 1 January only, so neither it nor the worker's
    # sweep of due portals at start (scheduler.harvest_due) runs now, whatever the time of day.
    config.write_text("""
[storage]
url = "sqlite:///ignored-because-DATABASE_URL-wins.db"
[[cities]]
key = "chicago"
name = "Chicago, IL"
[[cities.portals]]
kind = "socrata"
domain = "data.cityofchicago.org"
url = "http://127.0.0.1:9"
schedule = "0 0 1 1 *"
""")
    env = {**os.environ, "DATABASE_URL": pg_url, "MATURITY_CONFIG": str(config)}
    run = lambda *a: subprocess.run([str(BIN / "maturity"), *a], env=env, capture_output=True, text=True,  # noqa: E731
                                    timeout=300)

    assert run("db", "upgrade").returncode == 0
    imported = run("import", "--city", "chicago", "--as-of", "2022-07-23", str(SNAPSHOT))
    assert imported.returncode == 0, imported.stderr
    assert "260 datasets" in imported.stderr

    port = free_port()
    web = subprocess.Popen([str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "maturity.app:server"],
                           env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    worker = subprocess.Popen([str(BIN / "maturity"), "worker"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        status, body = get(f"http://127.0.0.1:{port}/health")
        health = json.loads(body)
        assert status == 200 and health["db"] is True
        # several requests so both gunicorn workers serve pages from the shared PostgreSQL database
        for _ in range(4):
            status, body = get(f"http://127.0.0.1:{port}/city/chicago")
            assert status == 200
        status, body = get(f"http://127.0.0.1:{port}/_dash-layout")
        assert status == 200
        # the worker registered its job in the database's job store
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = run("status", "--format", "json")
            rows = json.loads(out.stdout or "[]")
            if rows and rows[0].get("next_run_source") == "job store":
                break
            time.sleep(0.5)
        assert rows[0]["portal_key"] == "chicago-socrata"
        assert rows[0]["next_run_source"] == "job store"
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
    finally:
        for proc in (web, worker):
            proc.send_signal(signal.SIGTERM)
        for proc in (web, worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert worker.returncode == 0
    assert shutil.which(str(BIN / "gunicorn"))
