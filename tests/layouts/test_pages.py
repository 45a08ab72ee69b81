"""Pages and callbacks against a database filled from real recorded catalogs (tests/layouts/filler.py).

Callbacks are called the way the browser calls them: a POST to /_dash-update-component with the
dependency the app itself publishes, so the wiring (ids, outputs) is tested with the code.
"""
from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pandas as pd
import pytest

import storage
from layouts import _cache as cache_mod  # the caches' own state, read by the cache tests
from tests.layouts import filler


def dependency(client, output_id: str) -> dict:
    deps = client.get("/_dash-dependencies").json
    found = [d for d in deps if f"{output_id}." in d["output"] and not d.get("clientside_function")]
    assert found, f"no server callback writes {output_id}"
    return found[0]


def call(client, output_id: str, values: dict, *, changed: list[str] | None = None):
    """Fire the callback writing `output_id`; `values` maps "id.prop" to the input/state values."""
    dep = dependency(client, output_id)
    outs = [o for o in dep["output"].strip(".").split("...")]
    outputs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in outs]
    payload = {
        "output": dep["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in dep["inputs"]],
        "state": [{**s, "value": values.get(f"{s['id']}.{s['property']}")} for s in dep["state"]],
        "changedPropIds": changed or [],
    }
    r = client.post("/_dash-update-component", json=payload)
    return r


def text_of(component) -> str:
    """All text in a serialized Dash component tree (what a reader would see)."""
    import plotly.utils

    component = json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))
    out = []

    def walk(x):
        if isinstance(x, dict):
            if "props" in x:
                walk(x["props"].get("children"))
                if x.get("type") == "AgGrid":
                    out.append(json.dumps(x["props"].get("rowData")))
            else:
                for v in x.values():
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif x is not None and not isinstance(x, bool):
            out.append(str(x))

    walk(component)
    return " ".join(out)


@pytest.fixture
def client(dash_app):
    return dash_app.server.test_client()


def marker(layout_db):
    """The marker as the browser's store holds it (JSON: tuples become lists)."""
    url, _ = layout_db
    return json.loads(json.dumps(storage.latest_run_marker(storage.open_db(url))))


def test_every_page_answers_and_serves_no_external_resource(client):
    for path in ("/", "/city/chicago", "/compare?cities=chicago,minneapolis", "/datasets", "/harvests",
                 "/methodology", "/evidence"):
        r = client.get(path)
        assert r.status_code == 200, path
        html = r.get_data(as_text=True)
        # every script and stylesheet comes from this server (no CDN: CI has no internet)
        assert "https://" not in html.split("<body>")[0].replace('"https://', "") or "cdn" not in html.lower()
        assert "cdn.jsdelivr" not in html and "unpkg.com" not in html and "cdn.plot.ly" not in html
    css = client.get("/assets/00-bootstrap.min.css")
    assert css.status_code == 200 and b"Bootstrap  v5.3.6" in css.data


def test_the_grid_stylesheets_are_those_of_the_grid_version_installed(client):
    """The grids are styled by AG Grid's CSS (layouts/_grid.py THEME_CLASS), served from assets: after a dash-ag-grid
    upgrade, the files of its AG Grid version must be fetched (assets/README.md), or the grids lose their look."""
    from dash_ag_grid._version import grid_version

    from layouts import _grid

    names = [f.format(version=grid_version) for f in _grid.THEME_FILES]
    index = client.get("/").get_data(as_text=True)
    for name in names:
        assert f"/assets/{name}" in index, name
        answer = client.get(f"/assets/{name}")
        assert answer.status_code == 200, name
        assert b".ag-root" in answer.data or b".ag-theme-quartz" in answer.data, name  # the grid's or the theme's
    assert _grid.grid("g", None, [_grid.col("a")]).dashGridOptions["theme"] == "legacy"


def test_health_reports_db_and_latest_run(client, layout_db):
    url, _ = layout_db
    h = client.get("/health").json
    runs = storage.runs(storage.open_db(url))
    newest = runs.iloc[0]
    assert h["status"] == "ok" and h["db"] is True
    assert h["latest_run"] == newest["finished_at"].isoformat()
    assert h["latest_status"] == "ok"


def test_health_when_database_unreachable(tmp_path, layout_db):
    from maturity import app

    _, cfg = layout_db
    broken = app.create_app(cfg, url=f"sqlite:///{tmp_path}/missing/dir/x.db")
    h = broken.server.test_client().get("/health").json
    assert h["status"] == "degraded" and h["db"] is False and h["latest_run"] is None


def test_server_is_built_lazily_from_the_environment(tmp_path, monkeypatch):
    from maturity import app

    # A database of its own: the app built here starts its background refresher, which outlives the test and
    # would otherwise race the later tests that change the shared layouts database.
    url = f"sqlite:///{tmp_path / 'lazy.db'}"
    storage.upgrade(url)
    assert "server" not in vars(app)  # plain import builds nothing
    conf = tmp_path / "config.toml"
    conf.write_text('[[cities]]\nkey = "chicago"\nname = "Chicago, IL"\n[[cities.portals]]\nkind = "dcat"\n'
                    'url = "https://chicago.example.org"\n', encoding="utf-8")
    monkeypatch.setenv("MATURITY_CONFIG", str(conf))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr(app, "_lazy_app", None)
    server = app.server
    assert server is app.server  # built once
    assert server.test_client().get("/health").json["db"] is True
    assert server.config["MATURITY_DASHBOARD"].url == url


def test_overview_lists_every_city_with_stage_and_last_harvest(client, layout_db):
    r = call(client, "ov-body", {"live-marker.data": marker(layout_db)})
    assert r.status_code == 200
    body = r.json["response"]["ov-body"]["children"]
    text = text_of(body)
    for _key, name, _ in filler.CITIES:
        assert name in text
    # Chicago's newest run: the third weekly replay after the 2020-07-22 snapshot. The filler stores it as an
    # import, and an imported snapshot is dated by what it records (as_of 06:00), not by when it was loaded.
    assert "2020-08-12 06:00 UTC" in text and "06:03" not in text
    assert "Criteria × cities" in text


def test_overview_and_city_header_show_overall_trend_and_dated_change(client, layout_db):
    """Chicago is scored on 2019-04-26, 2020-07-22 and three weekly replays to 2020-08-12 (filler.fill). About 30
    days back (07-13) the nearest scoring is 07-22, 9 days off (NEAR_DAYS[30] = 10): "since 2020-07-22, 21 days".
    About 90 days back (05-14) the nearest is 69 days off: "no run near that date" (before, the 90-day change
    compared with 2019). The values are indicators.criteria.overall of the stored roll-ups (the one rule)."""
    from indicators import criteria

    url, _ = layout_db
    rows = storage.criterion_scores(storage.open_db(url), "chicago")
    rows = rows.assign(as_of=pd.to_datetime(rows["as_of"], utc=True))

    def overall_at(day):
        score, stage = criteria.overall(rows[rows["as_of"] == pd.Timestamp(f"{day} 06:00", tz="UTC")])
        return score, stage

    now, stage_now = overall_at("2020-08-12")
    then, _ = overall_at("2020-07-22")
    change = f"{round(now - then, 1):+.1f} since 2020-07-22, 21 days"
    r = call(client, "ov-body", {"live-marker.data": marker(layout_db)})
    body = json.dumps(r.json["response"]["ov-body"]["children"])
    table = text_of(r.json["response"]["ov-body"]["children"])
    assert change in table and "no run near that date" in table
    assert '"id": "ov-trend-chicago"' in body and '"alt": "overall score over 5 complete runs"' in body
    r = call(client, "city-summary", {"live-marker.data": marker(layout_db), "city-key.data": "chicago"})
    header = by_id(r.json["response"]["city-summary"]["children"], "city-overall")
    parts = header["props"]["children"]
    text = text_of(header)
    assert text_of(parts[1]) == f"{now:.0f}" and text_of(parts[2]) == stage_now
    assert change in text and "no run near that date" in text
    assert by_id(parts, "city-overall-trend")["props"]["alt"] == "overall score over 5 complete runs"


def by_id(children: list, id_: str) -> dict:
    found = [c for c in children if isinstance(c, dict) and c.get("props", {}).get("id") == id_]
    assert len(found) == 1, f"{id_} not found once"
    return found[0]


def test_old_data_banner_after_two_missed_schedule_intervals(client, layout_db, monkeypatch):
    """The test cities are harvested daily (config default "0 4 * * *"); Chicago's latest complete run is the
    2020-08-12 06:00 replay (filler.fill). Today that is years old: banner. On 2020-08-13 12:00 it is 30 hours
    old, under two days: no banner; on 2020-08-14 06:01 it is just over two days: banner."""
    from layouts import _components as ui

    def summary():
        r = call(client, "city-summary", {"live-marker.data": marker(layout_db), "city-key.data": "chicago"})
        return r.json["response"]["city-summary"]["children"]

    banner = by_id(summary(), "city-stale")
    text = text_of(banner)
    assert "Old data" in text and "chicago-dcat: latest complete harvest 2020-08-12" in text
    assert "scheduled every 1 day" in text
    overview = call(client, "ov-body", {"live-marker.data": marker(layout_db)}).json["response"]["ov-body"]
    assert "Chicago, IL: latest complete harvest 2020-08-12" in text_of(by_id(overview["children"], "ov-stale"))
    monkeypatch.setattr(ui, "now", lambda: datetime(2020, 8, 13, 12, tzinfo=UTC))
    assert not [c for c in summary() if isinstance(c, dict) and c["props"].get("id") == "city-stale"]
    monkeypatch.setattr(ui, "now", lambda: datetime(2020, 8, 14, 6, 1, tzinfo=UTC))
    assert "(2 days ago)" in text_of(by_id(summary(), "city-stale"))


def test_the_demo_gets_one_note_instead_of_an_old_data_warning_per_city(client, layout_db, monkeypatch):
    """A portal whose latest complete run is a snapshot of the bundled demo (same portal, same as_of as the
    manifest's) is old because it is the demo: one "Demo data" note names when it was recorded; every other portal
    keeps the old-data warning (a real deployment whose harvests stopped)."""
    from layouts import _components as ui

    with client.application.test_request_context("/"):
        real = ui.demo_snapshots()  # the real bundle's manifest: Chicago's Socrata catalog recorded on 2022-06-08
    assert ("chicago-socrata", pd.Timestamp("2022-06-08 23:59:59", tz="UTC")) in real
    assert all(k.endswith(("-socrata", "-dcat")) for k, _ in real)
    # the test cities' portals are not in the bundle: all four are old data
    overview = call(client, "ov-body", {"live-marker.data": marker(layout_db)}).json["response"]["ov-body"]
    assert not [c for c in overview["children"]
                if isinstance(c, dict) and c["props"].get("id") == "ov-stale-demo"]
    # as if Chicago's and Minneapolis' latest runs (2020-08-12 and 08-25, 06:00) were the demo's recordings
    recorded = {("chicago-dcat", pd.Timestamp("2020-08-12 06:00", tz="UTC")),
                ("minneapolis-dcat", pd.Timestamp("2020-08-25 06:00", tz="UTC"))}
    monkeypatch.setattr(ui, "demo_snapshots", lambda: recorded)
    overview = call(client, "ov-body", {"live-marker.data": marker(layout_db)}).json["response"]["ov-body"]
    note = " ".join(text_of(by_id(overview["children"], "ov-stale-demo")).split())
    assert note.startswith("Demo data: 2 cities show the bundled demo, real catalogs recorded between 2020-08-12 "
                           "and 2020-08-25")
    warning = text_of(by_id(overview["children"], "ov-stale"))
    assert "Indianapolis, IN" in warning and "Philadelphia, PA" in warning
    assert "Chicago" not in warning and "Minneapolis" not in warning
    r = call(client, "city-summary", {"live-marker.data": marker(layout_db), "city-key.data": "chicago"})
    children = r.json["response"]["city-summary"]["children"]
    assert "This city shows the bundled demo, real catalogs recorded on 2020-08-12" in text_of(
        by_id(children, "city-stale-demo"))
    assert not [c for c in children if isinstance(c, dict) and c["props"].get("id") == "city-stale"]


def test_city_page_lists_data_json_schema_errors_per_dataset(tmp_path):
    """Chicago's real 2020 data.json, checked by the real validator (connectors.dcat.validate) and stored with
    its run as a harvest stores it: the city page lists every dataset the check names, with its messages."""
    from connectors import dcat
    from maturity import app

    url = f"sqlite:///{tmp_path}/schema.db"
    cfg = filler.make_settings([("chicago", "Chicago, IL")], tmp_path / "config.toml", url)
    storage.upgrade(url)
    engine = storage.open_db(url)
    storage.sync_config(engine, cfg)
    import gzip

    with gzip.open(filler.FIXTURES / "chicago_data_json_socrata_2020-07-22.json.gz", "rb") as f:
        doc = json.load(f)
    check = dcat.validate(doc)
    assert check.error_count > 0  # the recorded document really has errors (else this proves nothing)
    portal = cfg.city("chicago").portals[0]
    records = [filler.normalize(portal, raw) for raw in doc["dataset"]]
    as_of = datetime(2020, 7, 22, 6, tzinfo=UTC)
    run_id = storage.start_run(engine, portal.key, as_of=as_of, source="import")
    from connectors.base import FetchStats

    stats = FetchStats(items_seen=len(records), repeats=0, reported_total=len(records), pages=1, schema_check=check)
    raws = [json.dumps(raw).encode() for raw in doc["dataset"]]
    storage.save_harvest(engine, run_id, records, raws, stats, finished_at=as_of)
    filler.score(engine, cfg, "chicago", as_of)
    # the page's light query reads what city_harvest reads (without building the catalog)
    light = storage.queries.city_schema_checks(engine, "chicago")
    assert light == storage.city_harvest(engine, "chicago").schema_checks
    c = app.create_app(cfg, url=url, warm=False).server.test_client()
    r = call(c, "city-details", {"live-marker.data": marker((url, cfg)), "city-key.data": "chicago"})
    details = r.json["response"]["city-details"]["children"]
    summary = text_of(by_id(details, "city-schema-summary"))
    named = [sid for sid in check.errors if sid]
    assert f"{check.entries:,} datasets checked" in summary
    assert f"{check.error_count:,} errors in {len(named):,} datasets" in summary
    found = by_id(details, "city-schema-errors")["props"]["rowData"]
    assert {row["source_id"] for row in found} == set(check.errors)
    by_sid = {row["source_id"]: row for row in found}
    for sid, messages in check.errors.items():
        assert by_sid[sid]["messages"] == " | ".join(messages) and by_sid[sid]["errors"] == len(messages)
    # the commonest message, counted by hand from the check: on how many datasets each message appears
    tally: dict[str, int] = {}
    for messages in check.errors.values():
        for m in set(messages):
            tally[m] = tally.get(m, 0) + 1
    top = max(tally.values())
    first = min(m for m, n in tally.items() if n == top)
    assert f"{first} ({top:,} datasets)" in text_of(by_id(details, "city-schema-kinds"))
    titles = {rec.source_id: rec.title for rec in records}
    assert all(by_sid[sid]["title"] == titles[sid] for sid in named if sid in titles)
    storage.dispose(url)


def test_city_page_as_of_a_past_date_shows_it_as_it_stood(client, dash_app, layout_db):
    """?as_of=2020-07-25 on Chicago (scored 2019-04-26, 2020-07-22, then weekly to 08-12): the page stands on the
    2020-07-22 scoring and catalog - header, trend over 2 runs, runs, drill-down - and keeps as_of in its URL."""
    from indicators import criteria
    from layouts import city

    url, _ = layout_db
    engine = storage.open_db(url)
    rows = storage.criterion_scores(engine, "chicago")
    at = pd.Timestamp("2020-07-22 06:00", tz="UTC")
    score, stage = criteria.overall(rows[pd.to_datetime(rows["as_of"], utc=True) == at])
    day = {"live-marker.data": marker(layout_db), "city-key.data": "chicago", "city-as-of.data": "2020-07-25"}
    r = call(client, "city-summary", day).json["response"]
    header = by_id(r["city-summary"]["children"], "city-overall")
    parts = header["props"]["children"]
    assert text_of(parts[1]) == f"{score:.0f}" and text_of(parts[2]) == stage
    # 2019-04-26 and 2020-07-22
    assert by_id(parts, "city-overall-trend")["props"]["alt"] == "overall score over 2 complete runs"
    assert "no run near that date" in text_of(header)  # 30/90 days before 07-22: nothing within 10/21 days
    # old data is judged at the end of that day: the 07-22 06:00 run was 3 days 18 hours old, over two daily
    # schedule intervals
    assert "chicago-dcat: latest complete harvest 2020-07-22 (3 days ago)" in text_of(
        by_id(r["city-summary"]["children"], "city-stale"))
    assert "2020-07-22 06:00 UTC" in text_of(r["city-subtitle"]) and "2020-08" not in text_of(r["city-subtitle"])
    # the drill-down lists the failing datasets recorded by the scoring in force on 07-25 (07-22's)
    with dash_app.server.test_request_context("/"):
        past = storage.scores(engine, "chicago")
        past = past[(pd.to_datetime(past["as_of"], utc=True) == at) & (past["indicator"] != "")]
        ind = past[past["value"] < 100].iloc[0]
        t = datetime(2020, 7, 25, 23, 59, 59, tzinfo=UTC)
        when, evidence = storage.score_evidence(engine, "chicago", ind["indicator"], t)
        assert pd.Timestamp(when) == at
        grid, caption = city.drill("chicago", ind["criterion"], ind["indicator"], "2020-07-25")
        every = city.drill_page("chicago", ind["criterion"], ind["indicator"], "2020-07-25",
                                {"startRow": 0, "endRow": len(evidence["failing"]) + 10})
        assert {row["source_id"] for row in every["rowData"]} == set(evidence["failing"])
        assert "as of 2020-07-25" in caption
        from layouts import _components as ui

        assert "As of 2020-07-25" in text_of(ui.as_of_banner("/city/chicago", "?as_of=2020-07-25").to_plotly_json())
        assert "is not a date" in text_of(ui.as_of_banner("/city/chicago", "?as_of=last+week").to_plotly_json())
    q = call(client, "city-url", {"city-criterion.value": "DM4", "city-indicator.value": "__all__",
                                  "city-as-of.data": "2020-07-25"}).json["response"]["city-url"]["data"]
    assert q == "?criterion=DM4&as_of=2020-07-25"


def test_overview_empty_database_says_what_to_do(tmp_path, layout_db):
    from maturity import app

    _, cfg = layout_db
    url = f"sqlite:///{tmp_path}/empty.db"
    storage.upgrade(url)
    storage.sync_config(storage.open_db(url), cfg)
    empty = app.create_app(cfg, url=url)
    c = empty.server.test_client()
    r = call(c, "ov-body", {"live-marker.data": [0, 0]})
    text = text_of(r.json["response"]["ov-body"]["children"])
    assert "No scores yet" in text and "maturity demo" in text
    storage.dispose(url)


def test_city_page_cards_drill_down_and_statuses(in_app, layout_db):
    from layouts import city

    url, _ = layout_db
    latest = storage.latest_scores(storage.open_db(url), "chicago")
    crit = latest[latest["indicator"] == ""]
    cards = text_of(city.summary("chicago"))
    for c in crit["criterion"]:
        assert c in cards
    # the drill-down of one indicator lists exactly the datasets its latest score recorded as failing
    ind = latest[(latest["indicator"] != "") & (latest["value"] < 100)].iloc[0]
    found = storage.score_evidence(storage.open_db(url), "chicago", ind["indicator"])
    failing = found[1]["failing"]
    grid, caption = city.drill("chicago", ind["criterion"], ind["indicator"])
    assert grid.rowModelType == "infinite" and not getattr(grid, "rowData", None)  # rows come block by block
    every = city.drill_page("chicago", ind["criterion"], ind["indicator"], None,
                            {"startRow": 0, "endRow": len(failing) + 10})
    assert every["rowCount"] == len(failing) == len(every["rowData"])
    assert {r["source_id"] for r in every["rowData"]} == set(failing)
    assert caption.startswith(f"{len(failing):,} datasets fail")
    details = text_of(city.details("chicago"))
    assert "Certification estimate (not a certification)" in details
    assert "Fix first" in details and "Departments" in details


def test_city_criterion_change_redraws_history(client, layout_db):
    url, _ = layout_db
    latest = storage.latest_scores(storage.open_db(url), "chicago")
    crits = sorted(latest.loc[latest["indicator"] == "", "criterion"])
    seen = set()
    for c in crits[:2]:
        r = call(client, "city-history", {"city-criterion.value": c, "live-marker.data": marker(layout_db),
                                          "city-key.data": "chicago", "city-indicator.value": "__all__"},
                 changed=["city-criterion.value"])
        resp = r.json["response"]
        title = resp["city-history"]["figure"]["layout"]["title"]["text"]
        assert title == f"{c} over time"
        assert resp["city-indicator"]["options"][0] == {"label": f"all of {c}", "value": "__all__"}
        seen.add(title)
    assert len(seen) == 2


def test_unknown_city_says_so(in_app):
    from layouts import city

    page = city.layout(key="atlantis")
    assert "No city with key “atlantis”" in text_of(page)


def test_compare_shows_chosen_cities_and_gaps(in_app):
    from layouts import compare

    parts = compare.body(["chicago", "minneapolis"])
    chosen = parts[0]
    names = [b.children[1] for b in chosen.children[1:]]  # each after its colour swatch
    assert names == ["Chicago, IL", "Minneapolis, MN"]
    profile = parts[2].children.figure  # the graph inside its scroll box
    assert [t.name for t in profile.data] == ["Chicago, IL", "Minneapolis, MN"]
    panels = parts[4].children  # one small chart per criterion, the overall score's first
    assert panels[0].children[0].children == "Overall"
    for panel in panels:
        assert {t["name"] for t in panel.children[1].figure["data"]} <= {"Chicago, IL", "Minneapolis, MN"}
    assert {t["name"] for t in panels[0].children[1].figure["data"]} == {"Chicago, IL", "Minneapolis, MN"}
    gaps = parts[-1].rowData
    assert gaps and all("chicago" in r and "minneapolis" in r for r in gaps)
    # the overall row, pinned above the indicators: each city's latest overall score (the one rule)
    from indicators import criteria

    pinned = parts[-1].dashGridOptions["pinnedTopRowData"]
    latest = storage.latest_scores(in_app.server.config["MATURITY_DASHBOARD"].engine)
    for key in ("chicago", "minneapolis"):
        mine = latest[(latest["city_key"] == key) & (latest["indicator"] == "")]
        assert pinned[0][key] == round(criteria.overall(mine)[0], 1)
    assert pinned[0]["title"] == "Overall score"


def test_datasets_filters_and_csv(in_app, layout_db):
    from layouts import datasets

    url, _ = layout_db
    n_minneapolis = len(storage.city_catalog(storage.open_db(url), "minneapolis"))
    grid, count = datasets.body(["minneapolis"], None, None, [0, 100], None, None)
    assert grid.rowModelType == "infinite" and not hasattr(grid, "rowData")  # rows come block by block
    assert count.startswith(f"{n_minneapolis:,} of ")
    rows = datasets.filtered(["chicago"], None, None, [0, 100], None, None)
    assert filler.XSS_TITLE in set(rows["title"])
    # the menus list licence ids with their counts (by hand: value_counts of the normalized column)
    lic = datasets.menu_options("license_id", ["minneapolis"], None, None)
    by_hand = datasets.datasets_for(["minneapolis"])["license_id"].value_counts()
    assert {o["value"]: o["label"] for o in lic} == {k: f"{k} ({n:,})" for k, n in by_hand.items()}
    csv = datasets.csv_frame(pd.DataFrame({"title": ["=HYPERLINK(\"x\")", "ok"]}))
    assert csv["title"].tolist() == ["'=HYPERLINK(\"x\")", "ok"]


def test_dataset_download_sends_filtered_rows(client, layout_db):
    r = call(client, "ds-download", {"ds-download-btn.n_clicks": 1, "ds-cities.value": ["philadelphia"],
                                     "ds-doc.value": [0, 100]}, changed=["ds-download-btn.n_clicks"])
    data = r.json["response"]["ds-download"]["data"]
    assert data["filename"] == "datasets.csv"
    lines = data["content"].strip().splitlines()
    url, _ = layout_db
    assert len(lines) - 1 == len(storage.city_catalog(storage.open_db(url), "philadelphia"))
    assert lines[0].startswith("city_key,city,source_id,title")
    # a CDO reads the city's name beside its key (the name as configured, synced into the database)
    names = storage.cities(storage.open_db(url)).set_index("key")["name"]
    assert names["philadelphia"] != "philadelphia"
    got = pd.read_csv(io.StringIO(data["content"]))
    assert set(zip(got["city_key"], got["city"], strict=True)) == {("philadelphia", names["philadelphia"])}


def test_harvests_log_counts_every_run(in_app, layout_db):
    from layouts import harvests

    url, _ = layout_db
    runs = storage.runs(storage.open_db(url))
    kpis, _timeline, _note, box = harvests.body(None)
    assert box.className == "shows-first"  # the log is the page's main content: drawn before the timeline
    grid = box.children[0]
    assert len(grid.rowData) == len(runs)
    assert text_of(kpis).startswith(f"{(runs['status'] == 'ok').sum()}")
    *_, box2 = harvests.body("indianapolis")
    rows = box2.children[0].rowData
    assert {(r["city_key"], r["city"]) for r in rows} == {("indianapolis", storage.cities(storage.open_db(url))
                                                           .set_index("key")["name"]["indianapolis"])}
    assert [c["field"] for c in box2.children[0].columnDefs][1] == "city"  # the name is what the log shows


def test_methodology_renders_registry(in_app):
    import indicators
    from layouts import methodology

    text = text_of(methodology.body())
    assert all(i.title in text for i in indicators.REGISTRY)
    assert "None" not in text  # Python's None is said in words
    assert "Methodology" not in text  # the page heading is the page's, once
    crits = {i.criterion for i in indicators.REGISTRY}
    titles = ui_titles()
    assert all(f"{c} · {titles[c]}" in text for c in crits if c in titles)  # criterion names beside ids


def ui_titles():
    from layouts import _components as ui

    return ui.criterion_titles()


def test_evidence_disabled_without_token(in_app, monkeypatch):
    from layouts import evidence

    monkeypatch.delenv("MATURITY_ADMIN_TOKEN", raising=False)
    page = evidence.layout()
    assert "Editing is disabled" in text_of(page) and "MATURITY_ADMIN_TOKEN" in text_of(page)
    msg, changed = evidence.submit("save", city="chicago", criterion="DM1", url="https://x.org", actor="Ana",
                                   token="anything", now=datetime(2026, 1, 1, tzinfo=UTC))
    assert "disabled" in text_of(msg)


def test_evidence_token_validation_and_audit(in_app, monkeypatch, layout_db):
    from layouts import evidence

    url, _ = layout_db
    engine = storage.open_db(url)
    monkeypatch.setenv("MATURITY_ADMIN_TOKEN", "s3cret-token")
    now = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    before = len(storage.evidence(engine))
    msg, changed = evidence.submit("save", city="chicago", criterion="DM1", url="https://x.org/policy",
                                   actor="Ana", token="wrong", now=now)
    assert "Wrong admin token" in text_of(msg) and len(storage.evidence(engine)) == before
    msg, _ = evidence.submit("save", city="chicago", criterion="DM1", url="javascript:alert(1)", actor="Ana",
                             token="s3cret-token", now=now)
    assert "must start with http" in text_of(msg)
    msg, changed = evidence.submit("save", city="chicago", criterion="DM1", url="https://x.org/policy",
                                   when="2025-11-04", note="Data governance committee meets quarterly",
                                   actor="Ana", token="s3cret-token", now=now)
    ev = storage.evidence(engine)
    assert len(ev) == before + 1 and changed == now.isoformat()
    new = ev.iloc[-1]
    assert ((new["city_key"], new["criterion"], new["url"], new["actor"])
            == ("chicago", "DM1", "https://x.org/policy", "Ana"))
    audit = storage.audit_log(engine, limit=1).iloc[0]
    assert (audit["actor"], audit["action"]) == ("Ana", "evidence.add")
    # the recorded evidence grid names the city as the config does, its key kept for the record
    grid = next(c for c in evidence.tables() if getattr(c, "id", None) == "ev-grid")
    mine = [r for r in grid.rowData if r["id"] == int(new["id"])]
    assert [(r["city_key"], r["city"]) for r in mine] == [("chicago", "Chicago, IL")]
    assert [c["field"] for c in grid.columnDefs][:2] == ["id", "city"]
    msg, _ = evidence.submit("delete", delete_id=int(new["id"]), actor="Ben", token="s3cret-token", now=now)
    assert len(storage.evidence(engine)) == before
    audit = storage.audit_log(engine, limit=1).iloc[0]
    assert (audit["actor"], audit["action"]) == ("Ben", "evidence.delete")


def test_live_poll_only_updates_on_a_new_marker(client, layout_db):
    m = marker(layout_db)
    same = call(client, "live-marker", {"live-interval.n_intervals": 1, "live-marker.data": m})
    assert same.status_code == 204  # PreventUpdate: nothing redraws
    new = call(client, "live-marker", {"live-interval.n_intervals": 2, "live-marker.data": [0, 0]})
    assert new.json["response"]["live-marker"]["data"] == m


@pytest.fixture
def own_app(layout_db, tmp_path):
    """An app on a copy of the shared database, in a request context: for a test that adds runs (on the shared
    one they changed the counts other tests computed by hand, depending on the order tests ran in)."""
    import sqlite3

    from maturity import app

    url, cfg = layout_db
    own = tmp_path / "own.db"
    # SQLite's backup copies what the write-ahead log holds too (a file copy would not)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as src, sqlite3.connect(own) as dst:
        src.backup(dst)
    own_url = f"sqlite:///{own}"
    dash_app = app.create_app(cfg, url=own_url, warm=False)
    with dash_app.server.test_request_context("/"):
        yield dash_app, own_url
    storage.dispose(own_url)


def test_city_cache_reloads_only_the_city_with_a_new_run(own_app):
    """After a run of one city, the others' cached history objects are reused as they are."""
    from datetime import timedelta

    from layouts import _components as ui

    in_app, url = own_app
    engine = storage.open_db(url)
    before = {k: ui.city_criterion_history(k) for k, _n, _s in filler.CITIES}
    last = storage.runs(engine, city_key="philadelphia").iloc[0]
    records = [filler.normalize(in_app.server.config["MATURITY_DASHBOARD"].settings.city("philadelphia").portals[0], r)
               for r in filler.load_catalog(filler.FIXTURES / "philadelphia_data_json_arcgis_hub_2020-08-04.json.gz")]
    as_of = last["as_of"].to_pydatetime() + timedelta(days=7)
    filler.save_run(engine, last["portal_key"], records, as_of)
    settings = in_app.server.config["MATURITY_DASHBOARD"].settings
    filler.score(engine, settings, "philadelphia", as_of)
    import flask

    flask.g.pop("maturity_marker", None)  # a new request would read the new marker
    after = {k: ui.city_criterion_history(k) for k, _n, _s in filler.CITIES}
    markers = {k[1] for k in list(cache_mod._cache) if k[0] == url}
    assert markers == {ui.marker()}  # entries of the old marker were dropped, not left to crowd the LRU
    stamps = {k[4] for k in list(cache_mod._cache) if k[0] == "city" and k[1] == url and k[3] == "philadelphia"}
    assert stamps == {ui.city_stamps()["philadelphia"]}  # and so were the city's entries of its old stamp
    assert after["philadelphia"] is not before["philadelphia"]
    assert after["philadelphia"]["as_of"].max() == as_of
    for k in ("chicago", "indianapolis", "minneapolis"):
        assert after[k] is before[k]
    # a re-score of a past date (no new latest as_of anywhere) reloads every city
    first = storage.run_dates(engine, "chicago")[0]
    filler.score(engine, settings, "chicago", first)
    flask.g.pop("maturity_marker", None)
    again = {k: ui.city_criterion_history(k) for k, _n, _s in filler.CITIES}
    assert all(again[k] is not after[k] for k in again)


def test_department_link_with_a_comma_selects_that_department(in_app, monkeypatch):
    from layouts import datasets

    name = "Parks, Recreation and Cultural Affairs"  # a department name holding a comma
    table = datasets.all_datasets()
    monkeypatch.setattr(datasets, "datasets_for", lambda cities, day=None: table.assign(department=name))
    page = datasets.layout(cities="indianapolis", department=name)
    assert find(page, "ds-department").value == [name]
    # an unknown value is a comma-separated list (several departments chosen in the explorer)
    assert find(datasets.layout(department="A,B"), "ds-department").value == ["A", "B"]


def find(component, id_):
    """The component with id `id_` in a layout tree."""
    if getattr(component, "id", None) == id_:
        return component
    kids = getattr(component, "children", None)
    for kid in kids if isinstance(kids, (list, tuple)) else [kids] if kids is not None else []:
        if hasattr(kid, "to_plotly_json"):
            hit = find(kid, id_)
            if hit is not None:
                return hit
    return None


def test_warm_up_fills_every_city_cache(layout_db):
    from layouts import _components as ui
    from layouts import _warmup
    from maturity import app

    url, cfg = layout_db
    a = app.create_app(cfg, url=url, warm=False)
    ui.clear_cache()
    _warmup.warm(a.server)
    cached = {(k[2], k[3]) for k in list(cache_mod._cache) if k[0] == "city" and k[1] == url}
    # The header's overall score and rank weigh every city: cached per run marker, not per city.
    overall = {k[3] for k in list(cache_mod._cache) if k[0] == url and k[2] == "city_overall_view"}
    for key, _name, _snaps in filler.CITIES:
        # what a city page shows first (header, cards), then its large tables and the drill-down it opens on
        assert {("criterion_history", key), ("runs", key), ("cards_view", key),
                ("datasets", key), ("failing", key), ("details_view", key)} <= cached
        assert (key, None) in overall
        assert any(name.startswith("drill:") and k == key for name, k in cached)
    # the answers the Overview, Compare (its default cities) and Harvests (all cities) open with, today's
    keys = tuple(sorted(key for key, _n, _s in filler.CITIES))
    views = {(k[2], k[3]) for k in list(cache_mod._cache) if k[0] == url}
    assert {("overview_view", (keys, None)), ("harvests_view", (None, None))} <= views
    assert any(name == "compare_view" and args[1] is None and len(args[0]) >= 2 for name, args in views)


def test_warm_up_freezes_the_caches_and_dropped_entries_are_still_freed(layout_db):
    import gc
    import weakref

    from layouts import _components as ui
    from layouts import _warmup
    from maturity import app

    url, cfg = layout_db
    a = app.create_app(cfg, url=url, warm=False)
    ui.clear_cache()
    try:
        _warmup.warm(a.server)
        assert gc.get_freeze_count() > 0  # the caches are out of the collector's walks
        key = filler.CITIES[0][0]
        entry = next(v for k, v in cache_mod._cache.items() if k[0] == "city" and k[2] == "datasets" and k[3] == key)
        ref = weakref.ref(entry)
        del entry
        ui.clear_cache()  # a cache dropping a frozen frame frees it at once (reference counting), no collection
        assert ref() is None
    finally:
        gc.unfreeze()


def test_keep_warm_fills_the_caches_in_the_background(layout_db):
    import threading
    import time

    from layouts import _components as ui
    from layouts import _warmup
    from maturity import app

    url, cfg = layout_db
    a = app.create_app(cfg, url=url, warm=False)
    ui.clear_cache()
    stop = threading.Event()
    t = threading.Thread(target=_warmup.keep_warm, args=(a.server, 0.05, stop), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cached = {(k[2], k[3]) for k in list(cache_mod._cache) if k[0] == "city" and k[1] == url}
            if all(("datasets", key) in cached for key, _n, _s in filler.CITIES):
                break
            time.sleep(0.05)
        assert all(("datasets", key) in cached for key, _n, _s in filler.CITIES)
    finally:
        stop.set()
        t.join(timeout=30)
    assert not t.is_alive()


def test_matrix_click_opens_the_city_on_that_criterion(client, layout_db):
    r = call(client, "ov-nav", {"ov-matrix.clickData": {"points": [{"customdata": "chicago", "y": "DM4",
                                                                          "x": "Chicago, IL"}]}})
    assert r.json["response"]["ov-nav"]["href"] == "/city/chicago?criterion=DM4"
    assert call(client, "ov-nav", {"ov-matrix.clickData": {"points": [{}]}}).status_code == 204


def test_dataset_grid_blocks_cover_every_filtered_row(client, layout_db):
    """The grid's blocks, asked for as the browser does: every matching row reaches it, the last block short."""
    url, _ = layout_db
    n = len(storage.city_catalog(storage.open_db(url), "chicago"))
    state = {"ds-cities.value": ["chicago"], "ds-doc.value": [0, 100]}
    got = []
    for start in range(0, n, 100):
        request = {"startRow": start, "endRow": start + 100, "sortModel": [], "filterModel": {}}
        r = call(client, "ds-grid", {**state, "ds-grid.getRowsRequest": request}, changed=["ds-grid.getRowsRequest"])
        block = r.json["response"]["ds-grid"]["getRowsResponse"]
        assert block["rowCount"] == n
        got += block["rowData"]
    assert len(got) == n and len({r["source_id"] for r in got}) == n and {r["city_key"] for r in got} == {"chicago"}


def test_grid_page_applies_the_grid_filter_and_sort_models():
    from layouts import _components as ui

    frame = pd.DataFrame({
        "title": ["Crimes 2021", "crime map", "Budget", None, "Street Crimes"],
        "doc_score": [80.0, 40.0, 95.0, 10.0, None],
        "data_modified": pd.to_datetime(["2022-07-01", "2021-01-05", "2022-07-20", None, "2020-03-03"], utc=True),
    })
    text = {"title": {"filterType": "text", "type": "contains", "filter": "CRIME"}}
    page = ui.grid_page(frame, {"startRow": 0, "endRow": 2, "filterModel": text,
                                "sortModel": [{"colId": "doc_score", "sort": "desc"}]})
    # three titles contain "crime" (case-insensitively); by doc score, highest first, missing last: 80, 40, None
    assert page["rowCount"] == 3
    assert [r["title"] for r in page["rowData"]] == ["Crimes 2021", "crime map"]  # the first block of two
    both = {"filterType": "number", "operator": "OR", "conditions": [
        {"filterType": "number", "type": "greaterThan", "filter": 90},
        {"filterType": "number", "type": "lessThan", "filter": 20}]}
    extremes = ui.grid_page(frame, {"filterModel": {"doc_score": both}})["rowData"]
    assert [r["title"] for r in extremes] == ["Budget", None]  # 95 and 10
    assert ui.grid_page(frame, {"filterModel": {"title": {"filterType": "text", "type": "blank"}}})["rowCount"] == 1
    # a time filter sees the text the grid shows; sorting by title ignores case, missing last
    when = {"data_modified": {"filterType": "text", "type": "startsWith", "filter": "2022-07"}}
    assert [r["data_modified"] for r in ui.grid_page(frame, {"filterModel": when})["rowData"]] == [
        "2022-07-01 00:00", "2022-07-20 00:00"]
    by_title = ui.grid_page(frame, {"sortModel": [{"colId": "title", "sort": "asc"}]})["rowData"]
    assert [r["title"] for r in by_title] == ["Budget", "crime map", "Crimes 2021", "Street Crimes", None]


def test_a_result_computed_under_a_superseded_marker_is_not_cached(in_app, layout_db):
    """The background refresher and requests share the cache: a value computed while a newer run landed
    (another thread already moved the marker on) is returned, but not filed under the dead marker."""
    from layouts import _components as ui

    url, _ = layout_db
    ui.clear_cache()
    newer = ((10**9, 10**9), 10**9)

    def slow(_engine):
        with cache_mod._lock:
            cache_mod._markers[url] = newer  # what a request that read the new marker meanwhile leaves behind
        return "computed under the old marker"

    assert ui.query("probe", slow) == "computed under the old marker"
    assert [k for k in cache_mod._cache if k[0] == url and k[2] == "probe"] == []
    ui.clear_cache()


def test_city_drill_down_sends_one_block_of_the_failing_datasets(client, layout_db):
    """The drill-down of a whole criterion is paged on the server: a block request is answered with one block
    (100 rows), `rowCount` = the datasets failing any of the criterion's indicators, counted here from the stored
    evidence (the union of each latest indicator score's failing ids), and the blocks together hold each of them
    once, with the titles of the indicators it fails and their reasons."""
    import indicators
    from layouts import city

    url, _ = layout_db
    engine = storage.open_db(url)
    latest = storage.latest_scores(engine, "chicago")
    inds = latest[latest["indicator"] != ""]
    failing: dict[str, dict[str, dict]] = {}  # criterion -> indicator -> {source_id: reason}
    for r in inds.itertuples(index=False):
        found = storage.score_evidence(engine, "chicago", r.indicator)
        failing.setdefault(r.criterion, {})[r.indicator] = (found[1].get("failing") or {}) if found else {}
    # the criterion with the most failing datasets (Chicago's catalog: several hundred, more than a block)
    crit = max(failing, key=lambda c: len(set().union(*failing[c].values())))
    expected = set().union(*failing[crit].values())
    assert len(expected) > city.DRILL_BLOCK
    state = {"city-key.data": "chicago", "city-criterion.value": crit, "city-indicator.value": city.ALL}

    def block(start: int) -> dict:
        request = {"startRow": start, "endRow": start + city.DRILL_BLOCK, "sortModel": [], "filterModel": {}}
        r = call(client, "city-drill-grid", {**state, "city-drill-grid.getRowsRequest": request},
                 changed=["city-drill-grid.getRowsRequest"])
        return r.json["response"]["city-drill-grid"]["getRowsResponse"]

    first = block(0)
    assert len(first["rowData"]) == city.DRILL_BLOCK and first["rowCount"] == len(expected)
    rows = [row for start in range(0, len(expected), city.DRILL_BLOCK) for row in block(start)["rowData"]]
    assert [row["source_id"] for row in rows] == sorted(expected)  # each once, in source_id order
    titles = {i.key: i.title for i in indicators.REGISTRY}
    for row in rows:
        fails = {k: f[row["source_id"]] for k, f in failing[crit].items() if row["source_id"] in f}
        assert row["indicators"] == ", ".join(sorted({titles.get(k, k) for k in fails}, key=str.lower))
        why = list(dict.fromkeys(str(x) for x in fails.values() if x))  # distinct, "; "-joined in score order
        assert len(row["reasons"]) == len("; ".join(why)) and all(x in row["reasons"] for x in why)


def test_datasets_unfiltered_view_pages_through_storage_until_the_table_is_built(in_app, layout_db):
    """Before a city's explorer table is built, the unfiltered Datasets view reads its blocks straight from storage:
    the same rows, in the same order, with the same values as the built table's blocks, and the same count."""
    from layouts import _components as ui
    from layouts import datasets

    url, _ = layout_db
    ui.clear_cache()
    assert not datasets.built(["chicago"])
    for start in (0, 100):
        request = {"startRow": start, "endRow": start + datasets.GRID_BLOCK, "sortModel": [], "filterModel": {}}
        stored, label, _ = datasets.grid_rows(request, ["chicago"], None, None, [0, 100], None, None)
        assert not datasets.built(["chicago"])  # served without building the table
        table = ui.city_datasets(storage.open_db(url), "chicago")
        assert stored == ui.grid_page(table, request) and stored["rowData"]
        assert label == f"{len(table):,} of {len(table):,} datasets match in the chosen cities"
    ui.city_datasets_cached("chicago")
    assert datasets.built(["chicago"])


def test_city_query_computes_an_entry_once_while_others_wait_for_it(dash_app):
    """Two requests for the same city entry at once (a visitor and the warm-up, say): the second waits for the
    first one's result instead of computing it again."""
    import threading

    calls: list[str] = []
    started, release = threading.Event(), threading.Event()
    results: list[object] = []

    def build(_engine, key):
        calls.append(key)
        started.set()
        assert release.wait(60)
        return pd.DataFrame({"n": [1, 2, 3]})

    def ask():
        with dash_app.server.test_request_context("/"):
            results.append(cache_mod.city_query("single-flight", build, "chicago"))

    first = threading.Thread(target=ask)
    first.start()
    assert started.wait(60)
    second = threading.Thread(target=ask)
    second.start()
    stamp = None
    with dash_app.server.test_request_context("/"):
        stamp = cache_mod.city_stamps().get("chicago")
    gate = cache_mod._inflight[("city", dash_app.server.config[cache_mod.CONTEXT_KEY].url, "single-flight",
                                "chicago", stamp)]
    assert gate.locked()  # the first is computing; the second finds the gate held and waits on it
    release.set()
    first.join(60)
    second.join(60)
    assert calls == ["chicago"] and len(results) == 2 and results[0] is results[1]


def test_a_sorted_drill_down_is_cut_from_one_kept_view(in_app, layout_db):
    """Sorted by title, the drill-down's blocks are consecutive slices of one sorted view, kept in the city cache
    (the next block is not a new sort of every failing dataset)."""
    from layouts import city

    url, _ = layout_db
    latest = storage.latest_scores(storage.open_db(url), "chicago")
    crit = latest.loc[(latest["indicator"] != "") & (latest["value"] < 100), "criterion"].iloc[0]
    every = city.drill_rows("chicago", crit, city.ALL)
    by_title = sorted(every["title"], key=str.lower)
    sort = [{"colId": "title", "sort": "asc"}]
    blocks = [city.drill_page("chicago", crit, city.ALL, None, {"startRow": s, "endRow": s + 50, "sortModel": sort})
              for s in (0, 50)]
    assert [r["title"] for b in blocks for r in b["rowData"]] == by_title[:100]
    kept = [k[2] for k in cache_mod._cache if k[0] == "city" and k[3] == "chicago"]
    assert sum(1 for name in kept if name.startswith(f"drill:{crit}:") and '"sortModel"' in name) == 1
