"""The CLI, the exports and the dashboard show the same numbers (issue 9: "the dashboard, exports and CLI agree
with each other on every number").

Three weeks of Chicago's real recorded history are imported: 06-08 (313 ids) and 06-15 (466) are complete
crawls, 06-29 (95 < 0.9 x 466) a partial one whose scores are stored flagged. Each reader must show the
scores of 06-15 — the last complete crawl — and agree value for value with the others: `maturity scores`
(CSV), the scheduled export (scores.csv and evidence.json) and the city page's criterion cards and overall
score (the same builders the page calls, on the same stored rows).
"""
from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest

import storage
from indicators import criteria
from layouts import _figures as fig
from maturity import cli, exports, pipeline
from tests.conftest import FIXTURES
from tests.test_pipeline import emu, write_config  # noqa: F401 - module-scoped emulator fixture

WEEKS = ("2022-06-08", "2022-06-15", "2022-06-29")
COMPLETE = datetime(2022, 6, 15, 23, 59, 59, tzinfo=UTC)  # imports are dated at the end of their day


@pytest.fixture
def scored(tmp_path, emu, capsys):  # noqa: F811
    cfg = write_config(tmp_path, emu, f"sqlite:///{tmp_path / 'agree.db'}")
    storage.upgrade(cfg.storage_url)
    engine = storage.open_db(cfg.storage_url)
    for week in WEEKS:
        pipeline.import_files(cfg, engine, "chicago", date.fromisoformat(week),  # a day: its end
                              [FIXTURES / f"socrata/history/data.cityofchicago.org/{week}.jsonl.gz"],
                              portal_key="chicago-socrata")
    pipeline.score_all(cfg, engine, "chicago")
    yield cfg, engine
    storage.dispose(cfg.storage_url)


def test_cli_exports_and_dashboard_agree_on_every_criterion(scored, tmp_path, capsys):
    cfg, engine = scored
    # the partial crawl's scores exist, flagged: so agreeing on 06-15 is a real choice every reader makes
    flagged = storage.scores(engine, "chicago", flagged=True)
    assert set(flagged.loc[flagged["flag"].notna(), "flag"]) == {"partial"}

    # CLI
    assert cli.main(["--config", str(cfg.path), "scores", "--city", "chicago", "--format", "csv"]) == 0
    cli_rows = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    cli_rows = cli_rows[cli_rows["indicator"] == ""]
    assert set(pd.to_datetime(cli_rows["as_of"], utc=True)) <= {pd.Timestamp("2022-06-08 23:59:59", tz="UTC"),
                                                                  pd.Timestamp(COMPLETE)}
    cli_latest = cli_rows[pd.to_datetime(cli_rows["as_of"], utc=True) == pd.Timestamp(COMPLETE)]
    cli_values = {r["criterion"]: _num(r["value"]) for r in cli_latest.to_dict("records")}

    # exports
    exports.export(cfg, engine, city_key="chicago", out_dir=tmp_path / "out", formats=("csv", "json"))
    (day,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    with (day / "chicago" / "scores.csv").open(newline="", encoding="utf-8") as f:
        exp_rows = [r for r in csv.DictReader(f) if r["indicator"] == ""]
    assert {r["as_of"] for r in exp_rows} == {"2022-06-15T23:59:59Z"}
    exp_values = {r["criterion"]: _num(r["value"]) for r in exp_rows}
    packet = json.loads((day / "chicago" / "evidence.json").read_text(encoding="utf-8"))
    json_values = {c["criterion"]: _num(c["value"]) for c in packet["criteria"] if c["criterion"] in cli_values}

    # the city page: its criterion cards and overall score, built from the same stored rows the page reads
    cards = fig.criterion_cards(storage.scores(engine, "chicago"))
    assert set(pd.to_datetime(cards["as_of"], utc=True)) == {pd.Timestamp(COMPLETE)}
    card_values = {r["criterion"]: _num(r["value"]) for r in cards.to_dict("records")}

    assert len(cli_values) >= 8  # the criteria that carry an indicator, at least
    for c, v in cli_values.items():
        # exports write one decimal (SCORE_DECIMALS); the CLI and the page keep full precision
        assert exp_values[c] == pytest.approx(v, abs=0.05, nan_ok=True), c
        assert json_values[c] == pytest.approx(v, abs=0.05, nan_ok=True), c
        assert card_values[c] == pytest.approx(v, abs=1e-9, nan_ok=True), c

    # one overall score: the page's trend line ends where criteria.overall puts the CLI's criterion rows
    overall, stage = criteria.overall(cli_latest.assign(value=[cli_values[c] for c in cli_latest["criterion"]]))
    page_total = fig.city_score_history(storage.criterion_scores(engine, "chicago"))
    assert page_total.iloc[-1]["value"] == pytest.approx(overall) and page_total.iloc[-1]["stage"] == stage


def _num(v: object) -> float:
    return float("nan") if v is None or v == "" else float(v)  # type: ignore[arg-type]
