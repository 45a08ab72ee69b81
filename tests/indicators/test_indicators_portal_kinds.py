"""Hand-worked values on other portal kinds, normalised by the real connectors.

CKAN: tests/fixtures/ckan/birmingham_uk_package_search_purchase_cards_2021.json - 10 Birmingham City Council
packages from a package_search (recorded 2021-09-17), all "Purchase Card Transactions", licence_id "uk-ogl",
resources in XLS (the first package also has two resources with an empty format).
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from connectors import ckan
from connectors.base import records_frame
from indicators import inventory, open_data, topics
from tests.indicators._real import FIXTURES

AS_OF = datetime(2021, 9, 17, tzinfo=UTC)  # the fixture's commit date


@pytest.fixture(scope="module")
def birmingham():
    doc = json.loads((FIXTURES.parent / "ckan" / "birmingham_uk_package_search_purchase_cards_2021.json").read_text())
    portal = SimpleNamespace(key="birmingham-ckan", kind="ckan", url="https://data.birmingham.gov.uk")
    return records_frame([ckan.normalize_package(portal, p) for p in doc["result"]["results"]])


def test_ckan_licence_formats_and_stars(birmingham):
    # uk-ogl -> OGL-UK-3.0, approved by the Open Definition registry: 10/10 open
    assert open_data.open_licence(birmingham, AS_OF).value == pytest.approx(100.0)
    # XLS is machine-readable but proprietary: 2 stars (ckanext-qa), so none reaches 3 stars and none has an
    # open machine-readable format -> od3_five_star 0, od3_bulk_open_formats 0
    five = open_data.five_star(birmingham, AS_OF)
    assert five.value == 0 and five.detail["stars_2"] == 10
    bulk = open_data.bulk_open_formats(birmingham, AS_OF)
    assert bulk.value == 0 and set(bulk.failing.values()) == {"only proprietary machine-readable formats"}


def test_ckan_spending_found_and_current(birmingham):
    # tags "payments" / "purchase card" and titles "... Purchase Card Transactions" match the census "spending"
    # words; the newest (April/March 2021, data modified 2021-05-24) changed within 365 days of 2021-09-17;
    # no budget dataset -> bf1_budget_finance = 25 (spending found) + 25 (spending current) = 50
    s = topics.budget_finance(birmingham, AS_OF)
    assert s.value == pytest.approx(50.0)
    assert s.failing == {"budget": "no budget dataset found"}
    assert s.detail["spending_found"] == 10


def test_ckan_publisher_and_api(birmingham):
    # every package names its organisation (Birmingham City Council) and has a CKAN API URL -> 100 each
    assert inventory.publisher_attribution(birmingham, AS_OF).value == pytest.approx(100.0)
    assert inventory.api_access(birmingham, AS_OF).value == pytest.approx(100.0)


# DCAT-US (ArcGIS Hub): tests/fixtures/dcat_us/minneapolis_data_json_arcgis_hub_2020-08-04.json.gz, the first
# three datasets ("Motorized Foot Scooter Trips September / October / November 2019"): distributions
# Web Page, Esri REST, GeoJSON, CSV; licence = a per-dataset Hub URL ".../license.json" naming no licence.
@pytest.fixture(scope="module")
def minneapolis():
    from connectors import dcat
    from connectors.archive import read_items

    path = FIXTURES.parent / "dcat_us" / "minneapolis_data_json_arcgis_hub_2020-08-04.json.gz"
    items, _stats = read_items(path, "dcat")
    portal = SimpleNamespace(key="minneapolis-dcat", kind="dcat", url="http://opendata.minneapolismn.gov/data.json")
    return records_frame([dcat.normalize_dataset(portal, it) for it in items[:3]])


def test_dcat_hub_formats_api_and_licence(minneapolis):
    months = ("September", "October", "November")
    assert list(minneapolis["title"]) == [f"Motorized Foot Scooter Trips {m} 2019" for m in months]
    # CSV and GeoJSON are open machine-readable (3 stars): od3_bulk_open_formats 3/3 = 100
    assert open_data.bulk_open_formats(minneapolis, AS_OF).value == pytest.approx(100.0)
    # the licence URL names no licence in the registry: od1_open_licence 0, and od3_five_star 0 (not open)
    lic = open_data.open_licence(minneapolis, AS_OF)
    assert lic.value == 0 and set(lic.failing.values()) == {"licence text names no known licence"}
    assert open_data.five_star(minneapolis, AS_OF).detail["stars_0"] == 3
    # no api_url in data.json, but an Esri REST distribution is a query API: dm3_api_access 3/3 = 100
    assert inventory.api_access(minneapolis, AS_OF).value == pytest.approx(100.0)
    # no column metadata in data.json: dm8_disaggregation has nothing to measure
    assert topics.disaggregation(minneapolis, AS_OF).value is None


def test_every_recorded_catalog_scores_within_range():
    # every Socrata, DCAT-US and CKAN catalog in tests/fixtures, normalised by the real connectors, one city each
    import importlib.util

    import indicators
    from indicators import criteria

    spec = importlib.util.spec_from_file_location("bench", FIXTURES.parents[2] / "benchmarks" / "indicators.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    records = bench.real_records()
    assert len(records) > 5000
    frame = records_frame(records)
    for key, part in frame.groupby("portal_key"):
        scores = indicators.compute_all(part, AS_OF)
        for ind_key, s in scores.items():
            assert s.value is None or 0 <= s.value <= 100, (key, ind_key)
        assert len(criteria.statuses(criteria.rollup(scores), None)) == 42
