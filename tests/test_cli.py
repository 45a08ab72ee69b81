"""The `maturity` command line, in process, against the local emulator (counts as in tests/test_pipeline.py)."""
from __future__ import annotations

import csv
import io
import json

import pytest

from connectors.base import RECORD_FIELDS
from maturity import cli
from tests.conftest import FIXTURES
from tests.test_pipeline import (  # noqa: F401 - shared emulator config
    CHICAGO,
    emu,  # noqa: F401 - module-scoped emulator fixture
    write_config,
)


@pytest.fixture
def run(tmp_path, emu, capsys):  # noqa: F811
    emu.clear_faults()
    cfg = write_config(tmp_path, emu, f"sqlite:///{tmp_path / 'cli.db'}")

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["--config", str(cfg.path), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_harvest_then_datasets_csv_has_record_columns(run):
    code, _, err = run("harvest", "-q")
    assert code == 0, err
    assert "chicago-socrata: 260 datasets, 260 new versions, 35 repeats" in err
    code, out, _ = run("datasets", "--city", "chicago", "--format", "csv")
    table = rows(out)
    assert code == 0 and len(table) == 260
    assert list(table[0].keys()) == list(RECORD_FIELDS)
    code, out, _ = run("datasets", "--city", "cincinnati", "--format", "json")
    assert len(json.loads(out)) == 145


def test_harvest_exits_nonzero_and_prints_each_failure(run, emu):  # noqa: F811
    emu.fault("/dcat/cincinnati/data.json", truncate=True)
    code, _, err = run("harvest", "-q")
    assert code == 1
    assert "FAILED cincinnati-dcat: PortalIncompatible:" in err
    assert "chicago-socrata: 260 datasets" in err  # the other portals still ran


def test_import_as_of_and_scores_and_explain(run):
    snap = FIXTURES / "socrata/history/data.cityofchicago.org/2022-06-29.jsonl.gz"
    first = FIXTURES / "socrata/history/data.cityofchicago.org/2022-06-22.jsonl.gz"
    assert run("import", "--city", "chicago", "--as-of", "2022-06-22", str(first))[0] == 0
    code, _, err = run("import", "--city", "chicago", "--as-of", "2022-06-29", str(snap))
    assert code == 0 and "SUSPECT" in err  # 95 unique against 256 the week before
    code, out, err = run("datasets", "--city", "chicago", "--as-of", "2022-06-29")
    assert len(rows(out)) == 95 and "SUSPECT" in err
    assert len(rows(run("datasets", "--city", "chicago", "--as-of", "2022-06-22")[1])) == 256

    assert run("score", "--all")[0] == 0
    table = rows(run("scores", "--city", "chicago")[1])
    assert {"criterion", "indicator", "value", "numerator", "denominator", "stage"} <= set(table[0])
    assert {r["as_of"] for r in table} == {"2022-06-22T23:59:59Z"}  # the partial crawl's scores are no line
    flagged = rows(run("scores", "--city", "chicago", "--flagged")[1])
    assert {(r["as_of"][:10], r["flag"]) for r in flagged} == {("2022-06-22", ""), ("2022-06-29", "partial")}

    failing = [r for r in table if r["indicator"] and r["value"] and float(r["value"]) < 100]
    assert failing, "some indicator has failing datasets in a real catalog"
    key = failing[0]["indicator"]
    code, out, _ = run("explain", "--city", "chicago", "--indicator", key)
    explained = rows(out)
    assert code == 0 and explained and {"source_id", "reason"} <= set(explained[0])


def test_datasets_warns_only_about_the_run_it_shows_and_names_it(run):
    """06-22 (256 ids), the short crawl of 06-29 (95: partial), 07-23 (260 >= 0.9 x 256: complete)."""
    history = FIXTURES / "socrata/history/data.cityofchicago.org"
    for d in ("2022-06-22", "2022-06-29", "2022-07-23"):
        assert run("import", "--city", "chicago", "--as-of", d, str(history / f"{d}.jsonl.gz"))[0] == 0
    code, out, err = run("datasets", "--city", "chicago", "--as-of", "2022-07-23")
    assert code == 0 and len(rows(out)) == 260 and "SUSPECT" not in err and "note:" not in err
    code, out, err = run("datasets", "--city", "chicago")  # the latest: the complete 07-23 crawl
    assert "note:" not in err
    code, out, err = run("datasets", "--city", "chicago", "--as-of", "2022-06-29")
    assert len(rows(out)) == 95
    assert "note: chicago-socrata run #2 of 2022-06-29 23:59 UTC is a PARTIAL crawl, SUSPECT (95 unique items" in err


def test_an_empty_import_file_is_reported_empty_and_not_scored(run, tmp_path):
    history = FIXTURES / "socrata/history/data.cityofchicago.org"
    assert run("import", "--city", "chicago", "--as-of", "2022-06-08", str(history / "2022-06-08.jsonl.gz"))[0] == 0
    empty = tmp_path / "2022-06-15.jsonl"
    empty.write_text("")
    code, _, err = run("import", "--city", "chicago", "--as-of", "2022-06-15", str(empty))
    assert code == 0 and "chicago-socrata as of 2022-06-15: 0 datasets" in err and "(EMPTY: 0 datasets" in err
    code, out, err = run("datasets", "--city", "chicago")
    assert len(rows(out)) == 313  # the last crawl before the empty one, said so on stderr
    assert "note: chicago-socrata run #2 of 2022-06-15 23:59 UTC came back EMPTY" in err
    assert run("score", "--all")[0] == 0
    assert {r["as_of"] for r in rows(run("scores", "--city", "chicago", "--flagged")[1])} == {"2022-06-08T23:59:59Z"}


def test_unknown_city_and_bad_date_are_usage_errors(run):
    code, _, err = run("datasets", "--city", "atlantis")
    assert code == 2 and "no city with key 'atlantis'" in err
    code, _, err = run("import", "--city", "chicago", "--as-of", "last tuesday", "x.json")
    assert code == 2 and "expected YYYY-MM-DD" in err


def test_bad_config_is_reported_with_its_location(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[cities]]\nkey = "x"\nname = "X"\n[[cities.portals]]\nkind = "arcgis"\nurl = "https://x"\n')
    assert cli.main(["--config", str(bad), "harvest"]) == 2
    assert f"{bad}:5: cities[0].portals[0].kind: 'arcgis' is not one of" in capsys.readouterr().err


def test_export_and_status(run, tmp_path):
    assert run("harvest", "-q", "--city", "cincinnati")[0] == 0
    code, out, _ = run("export", "--city", "cincinnati", "--out", str(tmp_path / "snap"), "--format", "csv")
    written = sorted(out.split())
    assert code == 0 and [p.rsplit("/", 1)[1] for p in written] == ["datasets.csv", "scores.csv"]
    assert len(rows(open(written[0]).read())) == 145  # one row per dataset of the data.json
    code, out, _ = run("status", "--format", "json")
    status = {r["portal_key"]: r for r in json.loads(out)}
    assert status["cincinnati-dcat"]["last_status"] == "ok"
    assert status["chicago-socrata"]["last_status"] is None  # never harvested in this database


def test_harvest_skips_a_portal_another_process_is_harvesting(run, tmp_path):
    """The scheduler's per-portal lock rows keep `maturity harvest` and a running worker off the same portal."""
    from datetime import UTC, datetime

    import storage

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run("db", "upgrade")[0] == 0
    engine = storage.open_db(url)
    assert storage.try_lock(engine, "harvest:chicago-socrata", "worker-elsewhere", ttl_s=600, now=datetime.now(UTC))
    code, _, err = run("harvest", "-q")
    assert code == 0, err  # a portal being harvested elsewhere is not a failure
    assert "SKIPPED chicago-socrata: another process is harvesting it" in err
    assert "cincinnati-dcat: 145 datasets" in err and "birmingham-ckan: 10 datasets" in err
    runs = storage.runs(engine)
    assert set(runs["portal_key"]) == {"cincinnati-dcat", "birmingham-ckan"}  # no run of the locked portal
    # the command released its own locks; the other holder keeps its own
    assert storage.try_lock(engine, "harvest:cincinnati-dcat", "next", ttl_s=600, now=datetime.now(UTC))
    assert not storage.try_lock(engine, "harvest:chicago-socrata", "next", ttl_s=600, now=datetime.now(UTC))
