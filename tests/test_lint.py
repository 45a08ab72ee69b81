"""The style guide's static checks as part of the suite: `ruff check .` over the project and mypy over
every product module: connectors, indicators, storage, maturity, layouts, app.py (rules and file lists in
pyproject.toml)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600  # a cold mypy run takes ~15 s; generous for a loaded machine


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


def test_ruff_check_passes():
    proc = _run("ruff", "check", ".", "--output-format", "concise", "--no-cache")
    assert proc.returncode == 0, f"ruff check . failed:\n{proc.stdout}\n{proc.stderr}"


def test_mypy_passes():
    proc = _run("mypy")
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}\n{proc.stderr}"
