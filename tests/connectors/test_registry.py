"""The registry, make_connector, and the raw_bytes / raw_hash contract of docs/internals.md."""
from __future__ import annotations

import copy
import hashlib

import orjson
import pytest

from connectors import CONNECTORS, make_connector
from connectors.base import USAGE_KEYS
from maturity.settings import Secret
from tests.conftest import FIXTURES
from tests.emulator import load_json, portal_config


def test_make_connector_builds_each_kind_and_refuses_unknown():
    for kind, cls in CONNECTORS.items():
        assert isinstance(make_connector(portal_config(kind, "https://x.example", domain="x.example")), cls)
    with pytest.raises(ValueError, match="unknown kind 'arcgis'"):
        make_connector(portal_config("arcgis", "https://x.example"))


def test_app_token_from_the_environment_reaches_the_session(monkeypatch):
    monkeypatch.setenv("TEST_SOCRATA_TOKEN", "abc")
    conn = make_connector(portal_config("socrata", "https://x.example", domain="x.example",
                                        app_token=Secret("TEST_SOCRATA_TOKEN")))
    assert conn.session.headers["X-App-Token"] == "abc"


def test_raw_hash_ignores_usage_counters_only():
    # Dallas 9fxf-t2tr (2025) carries page_views and download_count inside `resource`
    raw = load_json(FIXTURES / "socrata_catalog/us_catalog_only_dataset_story_2025.json")["results"][0]
    conn = make_connector(portal_config("socrata", "https://x.example", domain="x.example"))
    ticked = copy.deepcopy(raw)
    ticked["resource"]["page_views"]["page_views_total"] += 1
    ticked["resource"]["download_count"] += 5
    assert conn.raw_hash(ticked) == conn.raw_hash(raw)
    renamed = copy.deepcopy(raw)
    renamed["resource"]["name"] = "Dallas Police Active Calls (renamed)"
    assert conn.raw_hash(renamed) != conn.raw_hash(raw)
    # the documented formula: sha1 of orjson with sorted keys, usage keys removed, and for Socrata the
    # columns_* arrays permuted together into field-name order, domain_tags/tags and domain_metadata sorted
    stripped = copy.deepcopy(raw)
    for key in USAGE_KEYS:
        stripped["resource"].pop(key, None)
    res = stripped["resource"]
    arrays = sorted(k for k in res if k.startswith("columns_"))
    rows = sorted(zip(*(res[k] for k in arrays), strict=True), key=lambda row: row[arrays.index("columns_field_name")])
    for i, k in enumerate(arrays):
        res[k] = [row[i] for row in rows]
    cls = stripped["classification"]
    cls["domain_tags"] = sorted(cls["domain_tags"])
    cls["domain_metadata"] = sorted(cls["domain_metadata"], key=lambda p: (p["key"], p["value"]))
    expected = hashlib.sha1(orjson.dumps(stripped, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert conn.raw_hash(raw) == expected == conn.normalize(raw).raw_hash


def test_raw_hash_of_an_item_with_keys_that_are_not_text():
    # Parsed JSON only has text keys, so the hash serializes without orjson's non-text-key path; an item built
    # with an int key still hashes, as its text: sha1 of the sorted-key JSON {"a":{"1":"x","2":"y"}}.
    from connectors.hashing import raw_hash

    assert raw_hash({"a": {2: "y", 1: "x"}}) == hashlib.sha1(b'{"a":{"1":"x","2":"y"}}').hexdigest()


def test_raw_bytes_round_trip():
    raw = load_json(FIXTURES / "ckan/catalog_data_gov_package_show_usda_2019.json")["result"]
    conn = make_connector(portal_config("ckan", "https://catalog.data.gov"))
    assert orjson.loads(conn.raw_bytes(raw)) == raw
    # tracking_summary sits on the package and on each resource: neither changes the hash
    ticked = copy.deepcopy(raw)
    ticked["tracking_summary"]["total"] += 1
    ticked["resources"][0]["tracking_summary"]["total"] += 1
    assert conn.raw_hash(ticked) == conn.raw_hash(raw)
