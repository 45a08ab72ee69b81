"""Every real fixture file normalizes without error, and every record keeps the DatasetRecord rules."""
from __future__ import annotations

import re
from datetime import datetime

import pytest

from connectors import make_connector
from connectors.archive import read_items
from connectors.base import RECORD_FIELDS
from tests.conftest import FIXTURES
from tests.emulator import portal_config

FILES = sorted(
    [(p, "socrata") for p in (FIXTURES / "socrata").rglob("*.jsonl.gz") if ".stats." not in p.name]
    + [(p, "socrata") for p in (FIXTURES / "socrata_catalog").glob("*.json*")]
    + [(p, "socrata") for p in (FIXTURES / "socrata_views").glob("*.json*")]
    + [(p, "ckan") for p in (FIXTURES / "ckan").glob("*.json*")
       if "package_list" not in p.name and "datastore" not in p.name]  # names only / row data: not catalogs
    + [(p, "dcat") for p in (FIXTURES / "dcat_us").glob("*.json*")]
)


def test_fixture_list_is_complete():
    assert len(FILES) == 8 + 16 + 1 + 4 + 4 + 5 + 8  # history, latest, issue-9 records, catalog, views, ckan, dcat


@pytest.mark.parametrize(("path", "kind"), FILES, ids=[p.name for p, _ in FILES])
def test_every_record_normalizes(path, kind):
    items, stats = read_items(path, kind)
    assert items, path
    conn = make_connector(portal_config(kind, "https://portal.example", domain="portal.example"))
    profile = conn.discover(items)
    for raw in items:
        rec = conn.normalize(raw, profile)
        assert rec.source_id and rec.asset_type and rec.portal_key == "test-" + kind
        assert re.fullmatch(r"[0-9a-f]{40}", rec.raw_hash or "")
        for name in RECORD_FIELDS:
            value = getattr(rec, name)
            assert value != "", f"{name} is '' (missing must be None)"
            if isinstance(value, datetime):
                assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0
        assert isinstance(rec.keywords, tuple) and isinstance(rec.formats, tuple)
