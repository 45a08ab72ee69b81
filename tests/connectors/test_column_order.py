"""Socrata reorders a dataset's columns (and tags) from crawl to crawl: order must not make a new version.

Real weekly Chicago crawls, tests/fixtures/socrata/history/data.cityofchicago.org/2022-06-08 and 06-15.
"""
from __future__ import annotations

import copy

import orjson

from connectors.base import USAGE_KEYS
from connectors.hashing import raw_hash as plain_raw_hash
from connectors.socrata import SocrataConnector
from tests.conftest import FIXTURES
from tests.emulator import load_socrata_jsonl
from tests.emulator import portal_config as portal

HISTORY = FIXTURES / "socrata" / "history" / "data.cityofchicago.org"
CHICAGO = portal("socrata", "https://data.cityofchicago.org", domain="data.cityofchicago.org")


def _by_id(date: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in load_socrata_jsonl(HISTORY / f"{date}.jsonl.gz"):
        out.setdefault(item["resource"]["id"], item)  # repeated lines are identical; the first counts
    return out


def _order_free(item: dict) -> bytes:
    """The item compared the slow, obvious way: usage counters dropped, columns as a {field_name: column}
    mapping, tags as sorted lists, domain_metadata as a sorted list of pairs."""
    resource = {k: v for k, v in item["resource"].items() if k not in USAGE_KEYS}
    arrays = {k: resource.pop(k) for k in list(resource) if k.startswith("columns_")}
    columns = {name: {k: arrays[k][i] for k in arrays}
               for i, name in enumerate(arrays.get("columns_field_name", []))}
    cls = dict(item.get("classification") or {})
    for k in ("domain_tags", "tags"):
        if k in cls:
            cls[k] = sorted(cls[k])
    if "domain_metadata" in cls:
        cls["domain_metadata"] = sorted(orjson.dumps(p, option=orjson.OPT_SORT_KEYS).decode()
                                        for p in cls["domain_metadata"])
    rest = {k: v for k, v in item.items() if k not in ("resource", "classification")}
    return orjson.dumps([resource, columns, cls, rest], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def test_column_order_churn_is_not_a_change_on_real_weekly_crawls():
    a, b = _by_id("2022-06-08"), _by_id("2022-06-15")
    conn = SocrataConnector(CHICAGO)
    common = set(a) & set(b)
    assert len(common) == 313  # every one of the 313 unique ids of 06-08 is in 06-15 (466 unique)
    # Before: the plain hash (hashing.raw_hash, order as received) changed for 297 of them.
    assert sum(plain_raw_hash(a[i]) != plain_raw_hash(b[i]) for i in common) == 297
    changed = {i for i in common if conn.normalize(a[i]).raw_hash != conn.normalize(b[i]).raw_hash}
    # After: 62. Checked by hand with a throwaway script comparing the items field by field: the 62 are
    # exactly the datasets whose resource.data_updated_at moved (some also have new metadata_updated_at,
    # publication_date, one a new description, one a new attribution_link); the other 235 differ in the
    # order of their parallel columns_* arrays only (plus page_views, which never counted).
    assert len(changed) == 62
    assert changed == {i for i in common if a[i]["resource"]["data_updated_at"] != b[i]["resource"]["data_updated_at"]}
    # and the same set by the obvious, slow comparison
    assert changed == {i for i in common if _order_free(a[i]) != _order_free(b[i])}
    # raw_hash through the connector is the hash normalize() stores
    assert all(conn.raw_hash(a[i]) == conn.normalize(a[i]).raw_hash for i in common)


def test_normalized_columns_are_in_field_name_order():
    # tw3a-q9j2 "Libraries - 2019 Wi Fi Usage": 06-08 lists ytd, number_of_sessions, month (Number, Number,
    # Text); 06-15 lists month, ytd, number_of_sessions (Text, Number, Number).
    a, b = _by_id("2022-06-08")["tw3a-q9j2"], _by_id("2022-06-15")["tw3a-q9j2"]
    assert a["resource"]["columns_field_name"] != b["resource"]["columns_field_name"]
    conn = SocrataConnector(CHICAGO)
    expected = (("month", "Text"), ("number_of_sessions", "Number"), ("ytd", "Number"))
    assert conn.normalize(a).columns == expected == conn.normalize(b).columns
    assert conn.normalize(a).raw_hash == conn.normalize(b).raw_hash
    # the raw bytes stored with the version keep the order as received
    assert orjson.loads(conn.raw_bytes(a))["resource"]["columns_field_name"] == ["ytd", "number_of_sessions", "month"]


def test_a_real_column_change_still_changes_the_hash():
    item = _by_id("2022-06-08")["tw3a-q9j2"]
    conn = SocrataConnector(CHICAGO)
    # the datatypes of two columns swapped, names kept: the columns pair differently, so it is a change
    swapped = copy.deepcopy(item)
    types = swapped["resource"]["columns_datatype"]
    types[0], types[2] = types[2], types[0]
    assert conn.raw_hash(swapped) != conn.raw_hash(item)
    # a column renamed
    renamed = copy.deepcopy(item)
    renamed["resource"]["columns_name"][0] = "Year to date"
    assert conn.raw_hash(renamed) != conn.raw_hash(item)
    # the input item is never modified by hashing or normalizing
    before = orjson.dumps(item)
    conn.normalize(item)
    conn.raw_hash(item)
    assert orjson.dumps(item) == before


def test_custom_field_priority_portal_fields_first_then_the_table():
    from connectors.socrata import custom_value

    # "Metadata_Frequency" is first in the Socrata frequency table, "Update_Update-Frequency" second.
    pairs = {"Update_Update-Frequency": "Weekly", "Metadata_Frequency": "Daily"}
    assert custom_value(pairs, (), "frequency") == "Daily"
    # a portal field comes first, even when it repeats a table key further down
    assert custom_value(pairs, ("Update_Update-Frequency",), "frequency") == "Weekly"
    assert custom_value({"Update_Update-Frequency": "Weekly"}, ("Metadata_Frequency",), "frequency") == "Weekly"
    # blank values are skipped; an unknown key matching the pattern is the last resort
    item = {"Metadata_Frequency": "  ", "Other_Refresh-Frequency": "Monthly"}
    assert custom_value(item, (), "frequency") == "Monthly"
