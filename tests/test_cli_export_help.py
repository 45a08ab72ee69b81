"""`maturity export --help` says what each option does (issue 12, item 11)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_export_help_describes_every_option():
    out = subprocess.run([sys.executable, "-m", "maturity", "export", "--help"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    text = " ".join(out.split())  # argparse wraps lines
    assert "--city KEY only this city" in text
    assert "--out DIR where the dated folders go" in text
    assert "json = evidence.json" in text and "csv = scores.csv + datasets.csv" in text
    for name in ("scores.csv", "datasets.csv", "evidence.json", "report.html"):  # what the command writes
        assert name in text
