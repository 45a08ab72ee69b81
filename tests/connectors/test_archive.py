"""archive.read_items on every recorded shape, plain and gzip'd, JSON and JSONL."""
from __future__ import annotations

import gzip
import shutil

import orjson
import pytest

from connectors.archive import read_items
from connectors.base import PortalIncompatible
from tests.conftest import FIXTURES

HISTORY = FIXTURES / "socrata/history/data.cityofchicago.org"


@pytest.mark.parametrize(
    ("date", "unique"),
    # Chicago unique resource.id per snapshot, counted outside the code with zcat + a set of ids (lines:
    # 362, 532, 291, 96, 96, 218, 337, 295). shared PROVENANCE "Incomplete crawls" agrees except for
    # 2022-06-08, which it gives as 357; the file holds 313 unique ids in 362 lines.
    [("2022-06-08", 313), ("2022-06-15", 466), ("2022-06-22", 256), ("2022-06-29", 95), ("2022-07-06", 95),
     ("2022-07-13", 196), ("2022-07-20", 294), ("2022-07-23", 260)],
)
def test_chicago_weekly_history_jsonl_gz(date, unique):
    items, stats = read_items(HISTORY / f"{date}.jsonl.gz", "socrata")
    assert len(items) == stats.items_seen == unique
    lines = sum(1 for line in gzip.open(HISTORY / f"{date}.jsonl.gz") if line.strip())
    assert stats.repeats == lines - unique


def test_latest_jsonl_merges_the_stats_side_file():
    # data.cityofchicago.org.stats.jsonl.gz line 1: xzkq-xp2w page_views_total 1812323, download_count 14108807
    items, stats = read_items(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz", "socrata")
    assert stats.repeats == 35 and len(items) == 260  # PROVENANCE: Chicago 35 repeats of 295
    item = next(it for it in items if it["resource"]["id"] == "xzkq-xp2w")
    assert item["resource"]["page_views"]["page_views_total"] == 1812323
    assert item["resource"]["download_count"] == 14108807


def test_plain_jsonl_and_json_list(tmp_path):
    lines = gzip.decompress((HISTORY / "2022-06-29.jsonl.gz").read_bytes())
    (tmp_path / "snap.jsonl").write_bytes(lines)
    items, _ = read_items(tmp_path / "snap.jsonl", "socrata")
    as_list = [orjson.loads(line) for line in lines.splitlines() if line.strip()]
    (tmp_path / "snap.json").write_bytes(orjson.dumps(as_list))
    again, stats = read_items(tmp_path / "snap.json", "socrata")
    assert len(items) == len(again) == 95 and stats.reported_total is None


def test_discovery_envelope_reports_its_total():
    # resultSetSize 585 (< 10,000 cap) on a 10-item page
    items, stats = read_items(FIXTURES / "socrata_catalog/chicago_catalog_attribution_city_of_chicago_2025.json",
                              "socrata")
    assert len(items) == 10 and stats.reported_total == 585
    # resultSetSize 10000 is the cap: not a total
    _, capped = read_items(FIXTURES / "socrata_catalog/us_catalog_only_dataset_story_2025.json", "socrata")
    assert capped.reported_total is None


def test_view_dumps():
    items, _ = read_items(FIXTURES / "socrata_views/austin_views_datasets_2015.json.gz", "socrata")
    assert len(items) == 255  # {"datasets": [255 views]}
    one, _ = read_items(FIXTURES / "socrata_views/chicago_view_7ray-xvet_2013.json", "socrata")
    assert [v["id"] for v in one] == ["7ray-xvet"]


def test_ckan_shapes():
    items, stats = read_items(FIXTURES / "ckan/birmingham_uk_package_search_purchase_cards_2021.json", "ckan")
    assert len(items) == 10 and stats.reported_total == 38  # package_search page of a 38-package search
    show, _ = read_items(FIXTURES / "ckan/catalog_data_gov_package_show_usda_2019.json", "ckan")
    assert [p["name"] for p in show] == [
        "usda-agricultural-research-service-patented-animal-production-and-protection-technologies"]
    bare, _ = read_items(FIXTURES / "ckan/catalog_data_gov_harvest_sources_datajson_2019.json.gz", "ckan")
    assert len(bare) == 145  # a bare list of harvest-source packages
    toronto, _ = read_items(FIXTURES / "ckan/toronto_package_show_result_ttc-routes-and-schedules_2023-05-04.json",
                            "ckan")
    assert len(toronto) == 1


def test_dcat_document_gz_and_plain(tmp_path):
    items, stats = read_items(FIXTURES / "dcat_us/nyc_data_json_2016-08-03.json.gz", "dcat")
    assert len(items) == 1529 and stats.schema_check is not None and stats.schema_check.entries == 1529
    shutil.copyfileobj(gzip.open(FIXTURES / "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz"),
                       open(tmp_path / "data.json", "wb"))
    plain, _ = read_items(tmp_path / "data.json", "dcat")
    assert len(plain) == 145


def test_dcat_repeated_dataset_counts_once(tmp_path):
    doc = orjson.loads(gzip.decompress(
        (FIXTURES / "dcat_us/indianapolis_data_json_arcgis_hub_2019-01-04.json.gz").read_bytes()))
    doc["dataset"] = doc["dataset"] + doc["dataset"][:3]  # a harvester that wrote three datasets twice
    (tmp_path / "data.json").write_bytes(orjson.dumps(doc))
    items, stats = read_items(tmp_path / "data.json", "dcat")
    assert len(items) == 229 and stats.repeats == 3


def test_wrong_shape_and_bad_lines(tmp_path):
    with pytest.raises(PortalIncompatible, match="not a data.json catalog"):
        read_items(FIXTURES / "ckan/birmingham_uk_package_search_purchase_cards_2021.json", "dcat")
    (tmp_path / "bad.jsonl").write_bytes(b'{"resource": {"id": "abcd-1234"}}\n{"resource": \n')
    with pytest.raises(PortalIncompatible, match="line 2 is not JSON"):
        read_items(tmp_path / "bad.jsonl", "socrata")
    with pytest.raises(ValueError, match="unknown portal kind"):
        read_items(tmp_path / "bad.jsonl", "opendatasoft")
