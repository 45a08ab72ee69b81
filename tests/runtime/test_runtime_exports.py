"""Export files checked against the database after a fixture-filled run, and the HTML report opened in
headless Chromium with every request recorded (none may leave file://)."""
from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from runtime_helpers import load_settings

import storage
from connectors.base import RECORD_FIELDS
from maturity import csv_writer, exports, pipeline

UTC = UTC
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHICAGO_WEEKS = [  # real weekly Discovery API scrapes (tests/fixtures/PROVENANCE.md)
    (FIXTURES / "socrata/history/data.cityofchicago.org/2022-06-08.jsonl.gz", datetime(2022, 6, 8, tzinfo=UTC)),
    (FIXTURES / "socrata/history/data.cityofchicago.org/2022-06-15.jsonl.gz", datetime(2022, 6, 15, tzinfo=UTC)),
]
MINNEAPOLIS = (FIXTURES / "dcat_us/minneapolis_data_json_arcgis_hub_2020-08-04.json.gz",
               datetime(2020, 8, 4, tzinfo=UTC))
# Hand count: unique `resource.id` values in the 2022-06-15 file (532 lines, 66 of them repeats) = 466. It is a
# complete crawl (>= 0.9 x 06-08's 313), so its scores are the latest; test_a_partial_crawl_is_not_exported
# covers a partial one.
CHICAGO_LATEST_DATASETS = 466
# Hand count: entries of `dataset` in the Minneapolis data.json = 152.
MINNEAPOLIS_DATASETS = 152
HOSTILE = "<script>alert('x')</script><img src=https://evil.example/x.png>"


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """(settings, engine, out_dir, paths): Chicago (2 runs) and Minneapolis (1 run) imported and scored
    through the real pipeline, a manual evidence record with hostile text, then exported."""
    tmp = tmp_path_factory.mktemp("exports")
    url = f"sqlite:///{tmp / 'maturity.db'}"
    cfg = load_settings(url)
    storage.upgrade(url)
    engine = storage.open_db(url)
    for path, as_of in CHICAGO_WEEKS:
        pipeline.import_files(cfg, engine, "chicago", as_of, [path], portal_key="chicago-socrata")
    pipeline.import_files(cfg, engine, "minneapolis", MINNEAPOLIS[1], [MINNEAPOLIS[0]],
                          portal_key="minneapolis-dcat")
    for city in ("chicago", "minneapolis"):
        pipeline.score_all(cfg, engine, city)
    storage.add_evidence(engine, "chicago", "OD1", url="https://example.org/policy?a=1&b=<2>", date="2024-03-01",
                         note=HOSTILE, actor="test", at=datetime(2026, 11, 20, tzinfo=UTC))
    out = tmp / "out"
    paths = exports.export(cfg, engine, out_dir=out)
    yield cfg, engine, out, paths
    storage.dispose(url)


def _csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _same_number(cell: str, value) -> None:
    """A CSV cell against the stored number: an empty cell exactly when the database has none."""
    if _missing(value):
        assert cell == ""
    else:
        assert float(cell) == pytest.approx(value)


def _day(out: Path) -> Path:
    (day,) = [p for p in out.iterdir() if p.is_dir()]
    assert day.name == datetime.now(UTC).date().isoformat()  # dated by the export day (UTC)
    return day


def test_layout_one_folder_per_city_and_all(filled):
    cfg, _, out, paths = filled
    day = _day(out)
    expected = {day / c.key / f for c in cfg.cities for f in ("scores.csv", "datasets.csv", "evidence.json",
                                                              "report.html")}
    expected |= {day / "all" / f for f in ("scores.csv", "datasets.csv", "evidence.json", "report.html")}
    assert set(paths) == expected and all(p.is_file() for p in paths)


def test_scores_csv_matches_the_database(filled):
    _, engine, out, _ = filled
    header, rows = _csv(_day(out) / "chicago" / "scores.csv")
    assert header == ["city_key", "as_of", "criterion", "indicator", "value", "numerator", "denominator", "stage"]
    db = storage.latest_scores(engine, "chicago")
    assert len(rows) == len(db) > 0
    # the latest scoring is the 2022-06-15 run
    assert {r["as_of"] for r in rows} == {"2022-06-15T00:00:00Z"}
    by_key = {(r["criterion"], r["indicator"]): r for r in rows}
    for d in db.to_dict("records"):
        r = by_key[(d["criterion"], d["indicator"])]
        # by hand: the stored score to a tenth of a point, counts to two decimals (exports.SCORE_DECIMALS)
        _same_number(r["value"], None if _missing(d["value"]) else round(d["value"], 1))
        assert r["value"] == "" or len(r["value"].partition(".")[2]) <= 1
        for col in ("numerator", "denominator"):
            _same_number(r[col], None if _missing(d[col]) else round(d[col], 2))
        assert r["stage"] == ("" if _missing(d["stage"]) else d["stage"])
    # The all-cities file holds both scored cities' rows and nothing else.
    _, all_rows = _csv(_day(out) / "all" / "scores.csv")
    assert {r["city_key"] for r in all_rows} == {"chicago", "minneapolis"}
    assert len(all_rows) == len(db) + len(storage.latest_scores(engine, "minneapolis"))


def test_datasets_csv_is_the_catalog_behind_the_scores(filled):
    _, engine, out, _ = filled
    header, rows = _csv(_day(out) / "chicago" / "datasets.csv")
    assert header[:len(RECORD_FIELDS)] == list(RECORD_FIELDS)
    assert header[len(RECORD_FIELDS):] == ["city_key", "first_seen", "failing_indicators"]
    catalog = storage.city_catalog(engine, "chicago")
    assert len(rows) == len(catalog) == CHICAGO_LATEST_DATASETS
    assert {r["source_id"] for r in rows} == set(catalog["source_id"])
    assert {r["city_key"] for r in rows} == {"chicago"}
    # failing_indicators agrees with storage.explain for every indicator
    latest = storage.latest_scores(engine, "chicago")
    for indicator in sorted(i for i in latest["indicator"] if i):
        # explain also lists non-dataset evidence (e.g. "department:Aviation" for a department with no
        # dataset); datasets.csv marks the datasets among them
        failing = set(storage.explain(engine, "chicago", indicator)["source_id"]) & set(catalog["source_id"])
        listed = {r["source_id"] for r in rows if indicator in r["failing_indicators"].split("; ")}
        assert listed == failing, indicator
    # tuples are '; '-joined: the keywords cell of a dataset is its keywords tuple
    first = catalog.iloc[0]
    row = next(r for r in rows if r["source_id"] == first["source_id"])
    assert row["keywords"] == "; ".join(first["keywords"] or ())
    _, mpls = _csv(_day(out) / "minneapolis" / "datasets.csv")
    assert len(mpls) == MINNEAPOLIS_DATASETS


def test_evidence_packet_covers_every_criterion_with_its_evidence(filled):
    from indicators import criteria

    _, engine, out, _ = filled
    packet = json.loads((_day(out) / "chicago" / "evidence.json").read_text(encoding="utf-8"))
    assert packet["city_key"] == "chicago" and packet["date"] == "2022-06-15T00:00:00Z"
    assert packet["catalog"] == {"datasets": CHICAGO_LATEST_DATASETS,
                                 "by_portal": {"chicago-socrata": CHICAGO_LATEST_DATASETS}}
    assert [c["criterion"] for c in packet["criteria"]] == list(criteria.wwc_criteria()["criterion"])
    db = storage.latest_scores(engine, "chicago")
    crit_rows = db[db["indicator"] == ""].set_index("criterion")
    for c in packet["criteria"]:
        assert c["date"] == "2022-06-15T00:00:00Z" and c["status"] in ("metadata", "manual", "supported", "open")
        if c["criterion"] in crit_rows.index:
            v = crit_rows.loc[c["criterion"], "value"]
            assert (c["value"] is None) if _missing(v) else c["value"] == pytest.approx(v)
        for ind in c["indicators"]:
            explained = storage.explain(engine, "chicago", ind["indicator"])
            assert ind["failing_count"] == len(explained) == len(ind["failing"])
            assert {f["source_id"] for f in ind["failing"]} == set(explained["source_id"])
    od1 = next(c for c in packet["criteria"] if c["criterion"] == "OD1")
    assert od1["manual"] == [{"url": "https://example.org/policy?a=1&b=<2>", "date": "2024-03-01", "note": HOSTILE,
                              "source": "dashboard"}]
    assert packet["portals"][0]["portal_key"] == "chicago-socrata" and packet["portals"][0]["runs"] == 2
    est = criteria.certification_estimate(criteria.statuses(
        exports._rollup(storage.latest_scores(engine, "chicago")), pipeline.manual_evidence(
            filled[0], engine, "chicago")))
    assert packet["certification_estimate"]["met"] == est["met"]
    # both estimates, labelled: proven and if the supported criteria are confirmed
    assert packet["certification_estimate"]["if_confirmed"]["met"] == est["if_confirmed"]["met"] >= est["met"]
    assert packet["certification_estimate"]["proven_label"].startswith("Proven: ")
    everyone = json.loads((_day(out) / "all" / "evidence.json").read_text(encoding="utf-8"))
    assert [c["city_key"] for c in everyone["cities"]] == [c.key for c in filled[0].cities]


def test_report_escapes_text_and_inlines_plotly(filled):
    _, _, out, _ = filled
    page = (_day(out) / "chicago" / "report.html").read_text(encoding="utf-8")
    assert HOSTILE not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page  # Jinja2 autoescape
    # no external script, stylesheet or image: the one <script> blocks are inline (plotly.js itself
    # mentions CDN URLs in strings it never fetches here; the browser test below records requests)
    assert "<script src=" not in page.lower() and "<link" not in page.lower() and "<img" not in page.lower()
    assert page.count("Plotly.newPlot") >= 3


def test_export_one_city_one_format_and_a_past_date(filled, tmp_path):
    cfg, engine, _, _ = filled
    paths = exports.export(cfg, engine, city_key="chicago", out_dir=tmp_path, formats=("csv",),
                           as_of=datetime(2022, 6, 10, tzinfo=UTC))
    assert sorted(p.name for p in paths) == ["datasets.csv", "scores.csv"]
    assert all(p.parent == tmp_path / "2022-06-10" / "chicago" for p in paths)
    _, rows = _csv(tmp_path / "2022-06-10" / "chicago" / "scores.csv")
    assert {r["as_of"] for r in rows} == {"2022-06-08T00:00:00Z"}  # the scoring in force on 2022-06-10
    _, ds = _csv(tmp_path / "2022-06-10" / "chicago" / "datasets.csv")
    assert len(ds) == 313  # hand count: unique resource.id in the 2022-06-08 file


def test_report_opens_offline_in_chromium_without_network_requests(filled, page):
    _, _, out, _ = filled
    report = (_day(out) / "all" / "report.html").resolve()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.as_uri())
    page.wait_for_selector(".plotly-graph-div .main-svg", timeout=15000)
    charts = page.locator(".plotly-graph-div").count()
    # what the browser actually drew: an SVG per chart
    drawn = page.locator(".plotly-graph-div .main-svg").count()
    assert requests and all(u.startswith("file://") for u in requests), requests
    assert errors == []
    assert charts >= 5 and drawn >= charts  # comparison + (criteria, history, runs) per city with data


def test_csv_cells_a_spreadsheet_would_run_are_kept_as_text():
    assert csv_writer.formula_guard("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_writer.formula_guard("@SUM(A1)") == "'@SUM(A1)"
    assert csv_writer.formula_guard("Building Violations") == "Building Violations"
    assert csv_writer.formula_guard(-3.5) == -3.5  # numbers stay numbers
    assert csv_writer.cell(("a", "b")) == "a; b"
    assert csv_writer.cell(({"name": "id", "type": "text"},)) == '[{"name": "id", "type": "text"}]'


def test_a_partial_crawl_is_not_exported(tmp_path):
    """06-08 (313 ids) then the short crawl of 06-29 (95 < 0.9 x 313: partial). Its scores are stored flagged:
    the export's scores, evidence date and datasets are those of 06-08, the city's last complete crawl."""
    url = f"sqlite:///{tmp_path / 'maturity.db'}"
    cfg = load_settings(url)
    storage.upgrade(url)
    engine = storage.open_db(url)
    for day in ("2022-06-08", "2022-06-29"):
        pipeline.import_files(cfg, engine, "chicago", datetime.fromisoformat(day).replace(tzinfo=UTC),
                              [FIXTURES / f"socrata/history/data.cityofchicago.org/{day}.jsonl.gz"],
                              portal_key="chicago-socrata")
    pipeline.score_all(cfg, engine, "chicago")
    assert set(storage.scores(engine, "chicago", flagged=True)["flag"].dropna()) == {"partial"}
    exports.export(cfg, engine, city_key="chicago", out_dir=tmp_path / "out", formats=("csv", "json"))
    day = _day(tmp_path / "out")
    _, rows = _csv(day / "chicago" / "scores.csv")
    assert {r["as_of"] for r in rows} == {"2022-06-08T00:00:00Z"}
    _, datasets = _csv(day / "chicago" / "datasets.csv")
    assert len(datasets) == 313  # hand count: unique resource.id in the 2022-06-08 file
    packet = json.loads((day / "chicago" / "evidence.json").read_text(encoding="utf-8"))
    assert packet["date"] == "2022-06-08T00:00:00Z" and packet["catalog"]["datasets"] == 313
    storage.dispose(url)
