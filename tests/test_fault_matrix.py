"""The README's fault matrix names tests that exist: each `file::test` cell is a function in that file."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Unattended for years: the fault matrix"


def matrix_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in r] for r in rows if r[0].strip() != "fault"]


def named_tests(cell: str) -> list[tuple[Path, str]]:
    """`tests/x/test_a.py::test_b`, `test_a.py::test_c` (a file named before, or unique in tests/), `::test_d`
    (the file named last)."""
    found, current = [], None
    for ref in re.findall(r"`([^`]*::[^`]+)`", cell):
        file, name = ref.split("::")
        if file:
            matches = [ROOT / file] if "/" in file else list((ROOT / "tests").rglob(file))
            assert len(matches) == 1, f"{file}: not one file in tests/ ({matches})"
            current = matches[0]
        assert current is not None, f"{ref}: no file named before it"
        found.append((current, name))
    return found


def test_every_row_names_at_least_one_existing_test():
    rows = matrix_rows()
    assert len(rows) >= 25
    for fault, _behaviour, tests in rows:
        refs = named_tests(tests)
        assert refs, f"{fault}: names no test"
        for path, name in refs:
            assert path.exists(), f"{fault}: {path} does not exist"
            assert re.search(rf"^\s*def {re.escape(name)}\(", path.read_text(encoding="utf-8"), re.M), \
                f"{fault}: {path.relative_to(ROOT)} has no test {name}"
