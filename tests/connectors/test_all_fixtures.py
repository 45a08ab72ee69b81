"""Every real fixture file normalizes without error, and every record keeps the DatasetRecord rules."""
from __future__ import annotations

import re
from datetime import datetime

import pytest

from connectors import KINDS, make_connector
from connectors.archive import read_items
from connectors.base import RECORD_FIELDS
from tests.connectors.conftest import fixture_dirs
from tests.emulator import portal_config

# Every recorded file of every registry kind (tests/fixtures/<kind>[_<what>]/), but usage side files and the
# CKAN files that are not catalogs (a package_list of names, datastore row data).
NOT_CATALOGS = (".stats.", "package_list", "datastore")
FILES = sorted((f, kind) for kind in KINDS for d in fixture_dirs(kind) for f in d.rglob("*.json*")
               if not any(part in f.name for part in NOT_CATALOGS))


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
