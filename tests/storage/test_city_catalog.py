"""city_catalog: the city's portals in one table, and the portal facts the indicators read from attrs."""
from __future__ import annotations

import storage
from connectors.base import FetchStats
from tests.storage.conftest import CHICAGO, CHICAGO_DCAT, OTHER, chicago_snapshot, day, save


def dcat_run(engine, date: str, *, notes=(), fail: str | None = None) -> int:
    """A data.json run that listed nothing: enough to exercise the attrs (the DCAT connector writes the note)."""
    run_id = storage.start_run(engine, CHICAGO_DCAT.key, as_of=day(date))
    if fail:
        storage.fail_run(engine, run_id, fail, finished_at=day(date))
    else:
        storage.save_harvest(engine, run_id, [], [], FetchStats(notes=tuple(notes)), finished_at=day(date))
    return run_id


def test_city_catalog_concatenates_portals_and_reports_them(engine):
    for d in ("2022-06-08", "2022-06-15", "2022-06-29"):
        save(engine, chicago_snapshot(d))
    dcat_run(engine, "2022-06-10", notes=("schema_errors=3", "validated against POD v1.1"))
    dcat_run(engine, "2022-06-20", fail="PortalUnavailable: HTTP 503 after 3 tries")

    cat = storage.city_catalog(engine, "chicago", day("2022-06-15"))
    assert len(cat) == 466 + 0  # the Socrata catalog of 06-15 plus an empty data.json
    assert set(cat["portal_key"]) == {CHICAGO.key}
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
    assert p["removed"] == []

    # As of 06-29: the Socrata run is suspect (95 of 466) and says so; data.json's newest run failed but the
    # city is still reachable through Socrata, and the ok data.json run of 06-10 still counts as present.
    late = storage.city_catalog(engine, "chicago", day("2022-06-29"))
    assert len(late) == 95
    runs = {r["portal_key"]: r for r in late.attrs["portal"]["catalog_runs"]}
    assert runs[CHICAGO.key]["status"] == "suspect"
    assert late.attrs["portal"]["runs"][-1]["status"] == "suspect"
    history = late.attrs["portal"]["runs"]
    assert [r["status"] for r in history if r["portal_key"] == CHICAGO_DCAT.key] == ["ok", "failed"]
    assert late.attrs["portal"]["reachable"] is True
    assert late.attrs["portal"]["datajson"]["present"] is True


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
