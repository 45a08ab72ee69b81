"""One hostile portal fails its own run with a clear reason; the other portals of the harvest go on.

The well-behaved portal is the emulator serving the recorded Cincinnati data.json (145 datasets, see
tests/fixtures/PROVENANCE.md); the hostile ones are tests/hostile.py scripts on loopback. Bounds are set small
per portal in the config (`request_deadline_s`, `max_response_mb`), as an operator would.
"""
from __future__ import annotations

import json

import pytest

import storage
from maturity import pipeline, settings
from tests.conftest import FIXTURES
from tests.emulator import Emulator, load_json
from tests.hostile import HostileServer, drip_body, endless_body

CINCINNATI_DATASETS = 145  # len(dataset) of the recorded document


@pytest.fixture(scope="module")
def emu():
    with Emulator(dcat={"cincinnati": load_json(FIXTURES / "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz")}
                  ) as e:
        yield e


def config(tmp_path, db_url: str, portals: str):
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "{db_url}"\n[[cities]]\nkey = "town"\nname = "Town"\n{portals}')
    cfg = settings.load(path, environ={})
    storage.upgrade(cfg.storage_url)
    return cfg, storage.open_db(cfg.storage_url)


@pytest.mark.parametrize("jobs", [1, 2], ids=["one-by-one", "workers"])
def test_a_dripping_portal_fails_at_its_deadline_and_the_others_go_on(tmp_path, sqlite_url, emu, jobs):
    body = json.dumps({"dataset": [{"title": "t" * 100}]}).encode()  # ~5 s of drip at 50 ms a byte
    with HostileServer() as srv:
        srv.route("/data.json", drip_body(body, every_s=0.05))
        cfg, engine = config(tmp_path, sqlite_url, f"""
[[cities.portals]]
key = "slow-dcat"
kind = "dcat"
url = "{srv.url}"
request_deadline_s = 1
[[cities.portals]]
key = "good-dcat"
kind = "dcat"
url = "{emu.dcat_url('cincinnati')}"
""")
        summaries = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=jobs)
    got = {s.portal_key: s for s in summaries}
    assert got["slow-dcat"].status == "failed"
    assert "DeadlineExceeded" in got["slow-dcat"].error and "within the 1 s deadline" in got["slow-dcat"].error
    assert (got["good-dcat"].status, got["good-dcat"].items) == ("ok", CINCINNATI_DATASETS)
    runs = storage.runs(engine).set_index("portal_key")
    assert runs.loc["slow-dcat", "status"] == "failed" and "deadline" in runs.loc["slow-dcat", "error"]


def test_an_endless_portal_fails_at_its_size_cap(tmp_path, sqlite_url, emu):
    with HostileServer() as srv:
        srv.route("/data.json", endless_body())
        cfg, engine = config(tmp_path, sqlite_url, f"""
[[cities.portals]]
key = "huge-dcat"
kind = "dcat"
url = "{srv.url}"
max_response_mb = 0.5
[[cities.portals]]
key = "good-dcat"
kind = "dcat"
url = "{emu.dcat_url('cincinnati')}"
""")
        assert cfg.portals[0].max_response_bytes == 2**19
        summaries = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=1)
    assert summaries[0].status == "failed"
    assert "larger than the 524288 bytes cap (after decompression)" in summaries[0].error
    assert (summaries[1].status, summaries[1].items) == ("ok", CINCINNATI_DATASETS)


def test_a_truncated_gz_import_fails_its_run_and_leaves_none_running(tmp_path, sqlite_url):
    from datetime import UTC, datetime

    whole = (FIXTURES / "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz").read_bytes()
    cut = tmp_path / "data.json.gz"
    cut.write_bytes(whole[: len(whole) // 2])  # a download cut off half way
    cfg, engine = config(tmp_path, sqlite_url, """
[[cities.portals]]
key = "town-dcat"
kind = "dcat"
url = "https://town.example/data.json"
""")
    with pytest.raises(pipeline.ImportFailed, match="EOFError"):
        pipeline.import_files(cfg, engine, "town", datetime(2021, 3, 1, tzinfo=UTC), [cut])
    run = storage.runs(engine).iloc[0]
    assert run["status"] == "failed" and run["error"].startswith("data.json.gz: EOFError")


# --- per-item isolation ------------------------------------------------------------------------------------

CHICAGO = "data.cityofchicago.org"
CHICAGO_UNIQUE = 260  # 295 recorded lines, 260 unique ids (tests/fixtures/PROVENANCE.md)


def chicago_with(mutate) -> list[dict]:
    """The recorded Chicago scrape with `mutate(item, n)` applied to the n-th distinct id (every copy of it)."""
    import copy

    from tests.emulator import load_socrata_jsonl

    items = copy.deepcopy(load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz"))
    order = list(dict.fromkeys(i["resource"]["id"] for i in items))
    for item in items:
        mutate(item, order.index(item["resource"]["id"]))
    return items


def socrata_config(tmp_path, sqlite_url, emu):
    return config(tmp_path, sqlite_url, f"""
[[cities.portals]]
key = "chicago-socrata"
kind = "socrata"
domain = "{CHICAGO}"
url = "{emu.url}"
""")


def test_odd_items_are_set_aside_with_their_error_and_the_run_succeeds(tmp_path, sqlite_url):
    def mutate(item, n):
        if n == 0:
            item["owner"] = "x"  # an object in every real item; a string here
        elif n == 1:
            item["resource"]["page_views"] = "lots"

    with Emulator(socrata={CHICAGO: chicago_with(mutate)}) as emu:
        cfg, engine = socrata_config(tmp_path, sqlite_url, emu)
        summary = pipeline.harvest(cfg, engine, cfg.portals[0])
    assert (summary.status, summary.items) == ("ok", CHICAGO_UNIQUE - 2)
    run = storage.runs(engine).iloc[0]
    assert "item_errors=2" in run["notes"]
    kept = storage.item_errors(engine, summary.run_id)
    assert len(kept) == 2 and all(kept["error"].str.startswith("AttributeError"))
    assert sorted([r.get("owner") == "x" for r in kept["raw"]]) == [False, True]  # kept raw, as received
    assert "lots" in [r["resource"].get("page_views") for r in kept["raw"]]


def test_too_many_odd_items_fail_the_run_with_the_first_errors(tmp_path, sqlite_url):
    bad = 20  # of 260: 7.7%, over the 5% ITEM_FAILURE_SHARE

    def mutate(item, n):
        if n < bad:
            item["owner"] = "x"

    with Emulator(socrata={CHICAGO: chicago_with(mutate)}) as emu:
        cfg, engine = socrata_config(tmp_path, sqlite_url, emu)
        summary = pipeline.harvest(cfg, engine, cfg.portals[0])
    assert summary.status == "failed"
    assert summary.error.startswith(f"ItemError: {bad} of {CHICAGO_UNIQUE} items could not be normalized (more "
                                    "than 5%), e.g. AttributeError")
    assert len(storage.item_errors(engine, summary.run_id)) == bad


def test_disk_full_rolls_the_run_back_and_keeps_earlier_history(tmp_path, emu):
    # SQLite's own "disk full" (SQLITE_FULL), reached for real: the database file may not grow past its size
    # after the first harvest, so the second portal's 260 new datasets cannot be written.
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'full.db'}"
    with Emulator(socrata={CHICAGO: chicago_with(lambda item, n: None)}) as chicago:
        cfg, engine = config(tmp_path, url, f"""
[[cities.portals]]
key = "good-dcat"
kind = "dcat"
url = "{emu.dcat_url('cincinnati')}"
[[cities.portals]]
key = "chicago-socrata"
kind = "socrata"
domain = "{CHICAGO}"
url = "{chicago.url}"
""")
        assert pipeline.harvest(cfg, engine, cfg.portals[0]).items == CINCINNATI_DATASETS
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute(f"PRAGMA max_page_count={pages + 2}"))
        engine.dispose()  # new connections, each with the limit
        failed = pipeline.harvest(cfg, engine, cfg.portals[1])  # this run alone fails (the disk may free up)
        # The next run needs no new page (nothing changed): a full disk does not stop it.
        unchanged = pipeline.harvest(cfg, engine, cfg.portals[0])
    assert (failed.status, failed.items) == ("failed", 0)
    assert failed.error == "OperationalError: database or disk is full"  # the driver's words, no statement
    runs = storage.runs(engine).set_index("run_id")
    assert runs.loc[failed.run_id, ["status", "error"]].tolist() == ["failed", failed.error]  # recorded
    assert (unchanged.status, unchanged.new_versions) == ("ok", 0)
    assert runs.loc[unchanged.run_id, "status"] == "ok"
    assert len(storage.catalog(engine, "good-dcat")) == CINCINNATI_DATASETS  # earlier history intact
    assert len(storage.catalog(engine, "chicago-socrata")) == 0  # nothing half-written
