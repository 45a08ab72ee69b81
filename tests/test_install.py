"""Installed as a city's IT team installs it: the wheel built from this checkout, installed into a fresh venv
outside the checkout, runs `maturity demo`, `harvest` (against the local emulator) and `serve` from there.

Tests run from the checkout with an editable install, so a file left out of the wheel (the data.json schema
folder once was) or a path computed relative to the source tree goes unseen everywhere else. No network: the
wheel is built without build isolation, and the fresh venv borrows the third-party dependencies of the test
venv through a .pth line (only the product's own code comes from the wheel, which the test checks).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.test_pipeline import emu, write_config  # noqa: F401 - module-scoped emulator fixture

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("maturity", "connectors", "indicators", "layouts", "storage")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv holding the wheel built from this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy, so the build leaves nothing (build/, *.egg-info) in the checkout.
    src = tmp / "src"
    skip = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache", ".hypothesis")
    local = {".venv", ".git", "data", "test-results", "build"}  # the checkout's own state, at its top only

    def ignore(folder: str, names: list[str]) -> set[str]:
        return set(skip(folder, names)) | (local & set(names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, src, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = (tmp / "dist").glob("city_maturity-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # Third-party packages from the test venv, after the venv's own site-packages (a .pth line appends).
    (site / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True)
    return env_dir / "bin"


def run(bin_dir: Path, cwd: Path, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MATURITY_CONFIG", "DATABASE_URL", "PYTHONPATH")}
    return subprocess.run([str(bin_dir / "maturity"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def test_the_product_comes_from_the_wheel_not_the_checkout(installed, tmp_path):
    code = "import importlib, sys; print('\\n'.join(importlib.import_module(m).__file__ for m in sys.argv[1:]))"
    out = subprocess.run([str(installed / "python"), "-c", code, *PRODUCT], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.split()
    venv_dir = installed.parent.resolve()
    assert all(Path(p).resolve().is_relative_to(venv_dir) for p in out), out
    # no generic top-level modules beside them
    site = Path(out[0]).resolve().parents[1]
    assert not [n for n in ("app.py", "cli.py", "settings.py", "pipeline.py") if (site / n).exists()]


def test_demo_from_the_wheel_with_config_in_the_working_directory(installed, tmp_path):
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")  # found without --config, as --help says
    (tmp_path / "data").mkdir()
    done = run(installed, tmp_path, "demo")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "data" / "maturity.db").is_file()  # the config's relative SQLite URL, in the cwd
    # The DCAT cities need the data.json schema folder from the wheel's package data.
    scores = run(installed, tmp_path, "scores", "--city", "indianapolis", "--format", "csv")
    assert scores.returncode == 0, scores.stderr[-2000:]
    assert scores.stdout.count("\n") > 10


def test_without_a_config_file_the_message_says_what_to_do(installed, tmp_path):
    done = run(installed, tmp_path, "status")
    assert done.returncode == 2
    assert "config.toml: file not found (pass --config FILE or set MATURITY_CONFIG)" in done.stderr


def test_harvest_and_serve_from_the_wheel(installed, tmp_path, emu):  # noqa: F811
    cfg = write_config(tmp_path, emu, f"sqlite:///{tmp_path / 'w.db'}")
    assert run(installed, tmp_path, "--config", str(cfg.path), "db", "upgrade").returncode == 0
    done = run(installed, tmp_path, "--config", str(cfg.path), "harvest", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    # counts as in tests/test_pipeline.py: 260 Chicago datasets (35 repeats), the Cincinnati data.json
    assert "chicago-socrata: 260 datasets" in done.stderr
    assert "cincinnati-dcat:" in done.stderr and "FAILED" not in done.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("MATURITY_CONFIG", "DATABASE_URL")}
    proc = subprocess.Popen([str(installed / "maturity"), "--config", str(cfg.path), "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        body = _get_when_up(f"http://127.0.0.1:{port}/city/chicago", proc, timeout_s=120)
        assert "_dash-renderer" in body or "dash" in body.lower()
        health = _get_when_up(f"http://127.0.0.1:{port}/health", proc, timeout_s=30)
        assert '"db":true' in health.replace(" ", "")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _get_when_up(url: str, proc: subprocess.Popen, *, timeout_s: float) -> str:
    """The page's body once the server answers (polls the condition; fails early if the server died)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                assert r.status == 200
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
