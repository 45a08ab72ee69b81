"""The README's CLI examples ("Using it") run as written: each line through `cli.main`, in a temporary folder
whose config.toml points Chicago at the portal emulator (the recorded 2022-07-23 scrape: 260 unique ids) and
whose `snap.jsonl.gz` is the recorded 2022-06-08 Chicago scrape (313 unique ids, tests/connectors/test_archive.py).
"""
from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from maturity import cli
from tests.conftest import FIXTURES
from tests.emulator import Emulator, load_socrata_jsonl

ROOT = Path(__file__).resolve().parents[1]
CHICAGO = "data.cityofchicago.org"
LONG_RUNNING = {"worker", "serve"}  # run until stopped: parsed, not run


def readme_commands() -> list[list[str]]:
    """The argument lists of the `maturity` lines in the README's "Using it" code block, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no bash block under 'Using it'"
    out = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0].endswith("maturity"), line
            out.append(words[1:])
    return out


def subcommand(args: list[str]) -> str:
    return cli._parser().parse_args(args).run.__name__.removeprefix("cmd_")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    items = load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")
    with Emulator(socrata={CHICAGO: items}) as emu:
        (tmp_path / "config.toml").write_text(f"""
[storage]
url = "sqlite:///{tmp_path / 'readme.db'}"
[[cities]]
key = "chicago"
name = "Chicago, IL"
[[cities.portals]]
kind = "socrata"
domain = "{CHICAGO}"
url = "{emu.url}"
""")
        shutil.copy(FIXTURES / "socrata/history/data.cityofchicago.org/2022-06-08.jsonl.gz", tmp_path / "snap.jsonl.gz")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("MATURITY_CONFIG", str(tmp_path / "config.toml"))  # lines without --config
        monkeypatch.delenv("DATABASE_URL", raising=False)
        yield tmp_path


def test_readme_examples_run(folder, capsys):
    commands = readme_commands()
    names = [subcommand(args) for args in commands]
    # the documented commands, in order (a line added to the README is run here too)
    assert names == ["harvest", "import", "datasets", "score", "scores", "explain", "status", "export", "worker",
                     "db_upgrade"]
    out: dict[str, str] = {}
    for args, name in zip(commands, names, strict=True):
        if name in LONG_RUNNING:
            continue
        capsys.readouterr()
        code = cli.main(args)
        out[name], err = capsys.readouterr()
        assert code == 0, (args, err)
        if name == "harvest":
            assert "chicago-socrata: 260 datasets" in err
    assert len(list(csv.DictReader(io.StringIO(out["datasets"])))) == 313  # the 2022-06-08 snapshot, --as-of
    scores = list(csv.DictReader(io.StringIO(out["scores"])))
    assert {r["as_of"][:10] for r in scores} >= {"2022-06-08"}  # score --all scored the imported date too
    explained = list(csv.DictReader(io.StringIO(out["explain"])))
    assert explained and {"source_id", "reason"} <= set(explained[0])  # a real catalog has stale datasets
    assert "chicago-socrata" in out["status"]
    written = [(folder / p).resolve() for p in out["export"].split()]  # relative to the working folder
    assert written and all(p.exists() and p.is_relative_to(folder / "snapshots") for p in written)


def test_explain_with_an_unknown_indicator_exits_2_and_lists_the_keys(folder, capsys):
    from indicators.registry import BY_KEY

    code = cli.main(["explain", "--city", "chicago", "--indicator", "dm4_fresh_share"])  # the README's old key
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown indicator 'dm4_fresh_share'" in err
    assert all(key in err for key in BY_KEY) and "dm4_up_to_date" in err
    # a known key with nothing stored is not an error
    assert cli.main(["explain", "--city", "chicago", "--indicator", "dm4_up_to_date", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
