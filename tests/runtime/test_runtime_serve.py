"""Smoke test of the README quick start: `maturity serve` on a free port and an empty database loads the
demo history, serves the dashboard (/, a city page, /health), and stops cleanly on SIGTERM.

The config is the shipped config.toml with every schedule moved to 1 January 00:00, so no harvest of a
real portal can fire while the test runs (tests never touch the internet).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 300  # first start imports and scores the whole demo bundle
STOP_TIMEOUT_S = 30
RENDER_TIMEOUT_MS = 60_000  # generous: the suite may share the machine with other heavy tests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # 127.0.0.1 only
        return r.status, r.read().decode("utf-8")



def test_serve_loads_the_demo_serves_pages_and_stops_cleanly(quiet_config, tmp_path, page):
    port = _free_port()
    env = {**os.environ, "MATURITY_CONFIG": str(quiet_config),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'maturity.db'}", "PYTHONUNBUFFERED": "1"}
    env.pop("MATURITY_DEMO_DIR", None)
    log = (tmp_path / "serve.log").open("w+")
    cmd = [sys.executable, "-m", "maturity", "-v", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = _get(f"{base}/health", timeout=5)
                health = json.loads(body)
                break
            except OSError:
                time.sleep(0.5)
        assert health is not None, _tail(log)
        status, index = _get(f"{base}/")
        assert status == 200 and "_dash-config" in index
        status, city = _get(f"{base}/city/chicago")
        assert status == 200 and "_dash-config" in city
        # pytest-playwright's `page` (its session event loop is shared with the e2e tests)
        _check_rendered(page, base)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    out = _full(log)
    assert code == 0, out[-6000:]
    assert "event=demo-loading" in out and "event=stopped" in out
    assert "Traceback" not in out, out[-6000:]


def _check_rendered(page, base: str) -> None:
    """The pages as a person sees them: rendered by the browser from the demo data."""
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base) else None)
    page.goto(f"{base}/")
    page.get_by_text("Chicago", exact=False).first.wait_for(timeout=RENDER_TIMEOUT_MS)
    for name in ("New York City", "San Francisco", "Austin", "Cincinnati", "Indianapolis"):
        page.get_by_text(name, exact=False).first.wait_for(timeout=RENDER_TIMEOUT_MS)
    page.goto(f"{base}/city/chicago")
    page.get_by_text("Chicago", exact=False).first.wait_for(timeout=RENDER_TIMEOUT_MS)
    page.wait_for_selector(".js-plotly-plot", timeout=RENDER_TIMEOUT_MS)
    assert outside == []


def _full(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def _tail(log) -> str:
    return _full(log)[-6000:]
