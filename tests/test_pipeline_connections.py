"""A harvest's threads each hold a database connection while their run is open: the connection pool must never
be a smaller bound than the threads.

A large portal's run keeps its write transaction (and so its connection) open from its first batch to its last
page. On PostgreSQL, runs of one process are written side by side; SQLAlchemy's default pool (5 kept + 10 more,
then a 30 s wait and an error) let the 16th open run of a `maturity harvest` worker process (16 threads) wait
for a connection, then fail with a database error, which then ended the whole harvest (a
database error now fails its run alone, unless even that failure cannot be written, as with a pool that has no
connection to give). SQLite's writers queue on one lock instead: PostgreSQL's case.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

import storage
from maturity import pipeline, settings
from tests.conftest import FIXTURES
from tests.emulator import Emulator, load_socrata_jsonl

T1 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
PAGE = 5  # items a page, and a batch: each run writes its first page before it asks for the second


@pytest.mark.postgres
def test_a_worker_holds_as_many_runs_open_at_once_as_it_has_threads(tmp_path, pg_url, monkeypatch):
    monkeypatch.setattr("connectors.socrata.SOCRATA_PAGE_LIMIT", PAGE)
    monkeypatch.setattr("connectors.vocab.DISCOVERY_SAMPLE", PAGE)
    threads = pipeline.HARVEST_THREADS + 2  # more than the default thread count, whatever the pool's default
    items = load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")[:2 * PAGE]
    domains = [f"portal{i}.example.org" for i in range(threads)]
    portals = "".join(f'[[cities.portals]]\nkind = "socrata"\nkey = "p{i}"\ndomain = "{d}"\nurl = "{{url}}"\n'
                      for i, d in enumerate(domains))
    # Every portal's second page is answered only once every portal has asked for it: by then each run has
    # written its first page in its open transaction, on a connection of its own.
    meet = threading.Barrier(threads, timeout=25)  # below the client's read timeout (30 s): a clean failure
    with Emulator(socrata={d: items for d in domains}) as emu:
        emu.fault("/api/catalog/v1", with_param="scroll_id", meet=meet)
        path = tmp_path / "config.toml"
        path.write_text(f'[storage]\nurl = "{pg_url}"\n[[cities]]\nkey = "c"\nname = "C"\n'
                        + portals.replace("{url}", emu.url))
        cfg = settings.load(path, environ={})
        storage.upgrade(cfg.storage_url)
        engine = storage.open_db(cfg.storage_url)
        got = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=1, threads=threads, now=T1)

    assert not meet.broken  # all the runs were open at once
    assert [(s.status, s.items) for s in got] == [("ok", 2 * PAGE)] * threads
    assert storage.row_counts(engine)["dataset_versions"] == threads * 2 * PAGE
