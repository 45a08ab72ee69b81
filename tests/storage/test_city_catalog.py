"""city_catalog: the city's portals in one table, and the portal facts the indicators read from attrs."""
from __future__ import annotations

from functools import cache

import storage
from connectors import make_connector
from connectors.archive import read_items
from connectors.base import FetchStats
from tests.storage.conftest import CHICAGO, CHICAGO_DCAT, FIXTURES, OTHER, chicago_snapshot, day, save

CHICAGO_DATA_JSON = FIXTURES / "dcat_us" / "chicago_data_json_socrata_2019-04-26.json.gz"


@cache
def chicago_data_json() -> tuple[tuple, tuple]:
    """The real Chicago data.json of 2019-04-26 (749 datasets: `jq '.dataset | length'`), as `import` reads it."""
    connector = make_connector(CHICAGO_DCAT)
    raws, _ = read_items(CHICAGO_DATA_JSON, "dcat")
    return tuple(connector.normalize(r) for r in raws), tuple(connector.raw_bytes(r) for r in raws)


def dcat_run(engine, date: str, *, notes=(), fail: str | None = None, empty: bool = False) -> int:
    """A data.json run of the real file (or one that listed nothing); `notes` as the DCAT connector writes them."""
    run_id = storage.start_run(engine, CHICAGO_DCAT.key, as_of=day(date))
    if fail:
        storage.fail_run(engine, run_id, fail, finished_at=day(date))
    else:
        records, raws = ((), ()) if empty else chicago_data_json()
        storage.save_harvest(engine, run_id, list(records), list(raws), FetchStats(notes=tuple(notes)),
                             finished_at=day(date))
    return run_id


def test_city_catalog_concatenates_portals_and_reports_them(engine):
    for d in ("2022-06-08", "2022-06-15", "2022-06-29"):
        save(engine, chicago_snapshot(d))
    dcat_run(engine, "2022-06-10", notes=("schema_errors=3", "validated against POD v1.1"))
    dcat_run(engine, "2022-06-20", fail="PortalUnavailable: HTTP 503 after 3 tries")

    cat = storage.city_catalog(engine, "chicago", day("2022-06-15"))
    assert len(cat) == 466 + 749  # the Socrata catalog of 06-15 plus the data.json's
    assert set(cat["portal_key"]) == {CHICAGO.key, CHICAGO_DCAT.key}
    p = cat.attrs["portal"]
    assert p["reachable"] is True
    assert p["kinds"] == ["dcat", "socrata"]
    assert p["datajson"] == {"present": True, "schema_errors": 3}
    assert p["history_start"] == day("2022-06-08")
    # runs: the city's run history up to as_of, oldest first; catalog_runs: where each part comes from.
    assert [(r["portal_key"], r["as_of"], r["status"]) for r in p["runs"]] == [
        (CHICAGO.key, day("2022-06-08"), "ok"), (CHICAGO_DCAT.key, day("2022-06-10"), "ok"),
        (CHICAGO.key, day("2022-06-15"), "ok")]
    assert [(r["portal_key"], r["as_of"]) for r in p["catalog_runs"]] == [(CHICAGO_DCAT.key, day("2022-06-10")),
                                                                          (CHICAGO.key, day("2022-06-15"))]
    # Two complete Socrata runs and one data.json run: a removal needs three complete runs of a portal (two
    # in a row lacking a dataset), so none can be known yet - not "none removed".
    assert p["removed"] is None

    # As of 06-29: the Socrata run is suspect (95 of 466) and says so; data.json's newest run failed but the
    # city is still reachable through Socrata, and the ok data.json run of 06-10 still counts as present.
    late = storage.city_catalog(engine, "chicago", day("2022-06-29"))
    assert len(late) == 95 + 749
    runs = {r["portal_key"]: r for r in late.attrs["portal"]["catalog_runs"]}
    assert runs[CHICAGO.key]["status"] == "suspect"
    assert late.attrs["portal"]["runs"][-1]["status"] == "suspect"
    history = late.attrs["portal"]["runs"]
    assert [r["status"] for r in history if r["portal_key"] == CHICAGO_DCAT.key] == ["ok", "failed"]
    assert late.attrs["portal"]["reachable"] is True
    assert late.attrs["portal"]["datajson"]["present"] is True


def test_an_empty_data_json_is_not_a_present_data_json(engine):
    """A data.json listing nothing is an *empty* run: not a catalog of 0 datasets, not a present data.json."""
    dcat_run(engine, "2022-06-10", empty=True, notes=("schema_errors=0",))
    cat = storage.city_catalog(engine, "chicago", day("2022-06-15"))
    assert cat.empty
    assert [r["status"] for r in cat.attrs["portal"]["runs"]] == ["empty"]
    assert cat.attrs["portal"]["datajson"] == {"present": False, "schema_errors": 0}


def test_city_with_only_failed_runs_is_unreachable(engine):
    run_id = storage.start_run(engine, OTHER.key, as_of=day("2022-06-08"))
    storage.fail_run(engine, run_id, "PortalUnavailable: connection refused", finished_at=day("2022-06-08"))
    cat = storage.city_catalog(engine, "cincinnati")
    assert cat.empty and "title" in cat.columns and "first_seen" in cat.columns
    assert cat.attrs["portal"]["reachable"] is False
    assert cat.attrs["portal"]["datajson"] == {"present": False, "schema_errors": 0}
    assert cat.attrs["portal"]["history_start"] is None
    r = storage.runs(engine, city_key="cincinnati").iloc[0]
    assert (r["status"], r["error"]) == ("failed", "PortalUnavailable: connection refused")
