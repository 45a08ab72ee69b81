"""benchmarks/alternate.py: rounds alternate between the trees, each run's number read by the metric, medians
compared with the first tree's; a run without its number stops the comparison."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks import alternate


def _tree(root: Path, name: str, value: str) -> Path:
    """A work tree whose `.venv/bin/python` is this interpreter and whose bench.py prints `value` and the runs so
    far (a shared log shows the order the rounds ran in)."""
    tree = root / name
    (tree / ".venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, tree / ".venv" / "bin" / "python")
    (tree / "bench.py").write_text(
        "import sys\n"
        f"open(sys.argv[1], 'a').write('{name} ')\n"
        f"print('noise 9.9 then time: {value} s')\n")
    return tree


def test_rounds_alternate_and_medians_are_compared(tmp_path, capsys):
    log = tmp_path / "order.log"
    a, b = _tree(tmp_path, "a", "2.0"), _tree(tmp_path, "b", "3.0")
    code = alternate.main(["--rounds", "3", "--tree", str(a), "--tree", str(b), "--metric", r"time: ([0-9.]+) s",
                           "--", "bench.py", str(log)])
    assert code == 0
    assert log.read_text().split() == ["a", "b", "a", "b", "a", "b"]  # round by round, not tree by tree
    out = capsys.readouterr().out
    assert f"{a}: min / median / max 2.000 / 2.000 / 2.000 (+0.0% against a), n=3" in out
    assert f"{b}: min / median / max 3.000 / 3.000 / 3.000 (+50.0% against a), n=3" in out


def test_a_run_without_its_number_stops_the_comparison(tmp_path, capsys):
    log = tmp_path / "order.log"
    a, b = _tree(tmp_path, "a", "2.0"), _tree(tmp_path, "b", "n/a")
    code = alternate.main(["--rounds", "3", "--tree", str(a), "--tree", str(b), "--metric", r"time: ([0-9.]+) s",
                           "--", "bench.py", str(log)])
    assert code == 1 and log.read_text().split() == ["a", "b"]
    assert "no match for" in capsys.readouterr().err
