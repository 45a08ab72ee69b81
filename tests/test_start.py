"""`bin/start` on a new config: one line per step on stderr, the URL as its only stdout line once the dashboard
answers, Ctrl-C (SIGTERM here) stops the server (issue 12, item 11)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 300  # first start on a loaded CI machine may (re)install the project into .venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_prints_the_url_last_once_the_dashboard_answers(tmp_path):
    cfg = tmp_path / "config.toml"
    # a city whose portal is not in the bundled demo: the start imports nothing and serves at once
    cfg.write_text('[storage]\nurl = "sqlite:///maturity.db"\n'
                   '[[cities]]\nkey = "testville"\nname = "Testville"\n'
                   '[[cities.portals]]\nkind = "dcat"\nurl = "https://data.testville.example"\n'
                   'schedule = "0 6 1 1 *"\n', encoding="utf-8")
    port = free_port()
    env = {**os.environ, "MATURITY_CONFIG": str(cfg)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([str(ROOT / "bin" / "start"), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # blocks until the script prints it
        assert url == f"http://127.0.0.1:{port}/"
        # printed only once the dashboard answers: it answers now, without waiting
        with urllib.request.urlopen(url + "health", timeout=10) as r:
            assert r.status == 200
        with urllib.request.urlopen(url, timeout=10) as r:
            assert b"City data maturity" in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT_S)
    assert out == ""  # nothing after the URL on stdout
    steps = [line for line in err.splitlines() if line.strip()]
    assert steps and len(steps) <= 4, err  # one line per step: install (if needed), start
    assert "WARNING" not in err and steps[-1].startswith("starting the dashboard") and "done (" in steps[-1]
    assert proc.returncode == 0
