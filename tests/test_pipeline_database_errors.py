"""The database failing one run fails that run alone; the database gone stops the harvest.

A run holds its write transaction from its first batch to its last page, so on PostgreSQL a dropped connection
(a server restart, a network blip, an idle-in-transaction timeout), a deadlock or a full disk can end one run
in the middle. Storage rolls the run back and records it failed with the driver's reason; the harvest goes on
with the next portal, which may find the database well again. Only when not even the run's failure can be
written is the database taken as gone and the whole harvest stopped.

Real PostgreSQL: the run's own server process is ended (`pg_terminate_backend`) while its harvest waits for
the second page of its portal, from the emulator serving that page.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import storage
from maturity import pipeline, settings
from tests.conftest import FIXTURES, PG_ADMIN_URL
from tests.emulator import Emulator, load_socrata_jsonl

T1 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
PAGE = 5  # items a page and a batch: the big portal writes its first page before it asks for the second
SMALL = 3  # the small portals' items: one page each, one short transaction


def _config(tmp_path, pg_url, emu, domains):
    portals = "".join(f'[[cities.portals]]\nkind = "socrata"\nkey = "{key}"\ndomain = "{d}"\nurl = "{emu.url}"\n'
                      for key, d in domains.items())
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "{pg_url}"\n[[cities]]\nkey = "c"\nname = "C"\n' + portals)
    cfg = settings.load(path, environ={})
    storage.upgrade(cfg.storage_url)
    return cfg, storage.open_db(cfg.storage_url)


def _end_backends(admin, db, state=None, timeout_s=20.0):
    """End the server processes of database `db` (only those in `state`, waiting up to `timeout_s` for one);
    return once they are gone. Their pids."""
    where = "datname = :db AND pid <> pg_backend_pid()" + (" AND state = :state" if state else "")
    find = sa.text(f"SELECT pid FROM pg_stat_activity WHERE {where}")
    deadline = time.monotonic() + timeout_s
    with admin.connect() as conn:
        while not (pids := conn.execute(find, {"db": db, "state": state}).scalars().all()):
            assert time.monotonic() < deadline, f"no server process of {db} in state {state!r}"
            time.sleep(0.01)
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        alive = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")
        while conn.execute(alive, {"pids": pids}).scalar():
            assert time.monotonic() < deadline, f"server processes {pids} still alive"
            time.sleep(0.01)
    return pids


@pytest.fixture
def chicago():
    return load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")


@pytest.fixture
def admin():
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_a_dropped_connection_fails_that_run_alone(tmp_path, pg_url, monkeypatch, chicago, admin):
    monkeypatch.setattr("connectors.socrata.SOCRATA_PAGE_LIMIT", PAGE)
    monkeypatch.setattr("connectors.vocab.DISCOVERY_SAMPLE", PAGE)
    db = pg_url.rsplit("/", 1)[1]
    domains = {"big": "big.example.org", "small1": "small1.example.org", "small2": "small2.example.org"}
    served = {domains["big"]: chicago[:2 * PAGE], domains["small1"]: chicago[:SMALL],
              domains["small2"]: chicago[SMALL:2 * SMALL]}
    ended: list[int] = []
    with Emulator(socrata=served) as emu:
        cfg, engine = _config(tmp_path, pg_url, emu, domains)
        # Only the big portal has a second page; while its harvest waits for it, its run's transaction (with
        # the first page written) is the one idle in a transaction: that server process is ended.
        emu.fault("/api/catalog/v1", with_param="scroll_id", times=1,
                           call=lambda: ended.extend(_end_backends(admin, db, state="idle in transaction")))
        # One portal after another, in this order (one lane): the small ones are harvested after the failure.
        got = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=1, threads=1, now=T1)

        assert len(ended) == 1  # the fault ran once: one server process ended
        by_key = {s.portal_key: s for s in got}
        assert [(k, by_key[k].status, by_key[k].items) for k in domains] == [
            ("big", "failed", 0), ("small1", "ok", SMALL), ("small2", "ok", SMALL)]
        reason = by_key["big"].error
        assert reason.endswith("terminating connection due to administrator command")  # the server's own words
        runs = storage.runs(engine).set_index("run_id")
        assert runs.loc[by_key["big"].run_id, ["status", "error"]].tolist() == ["failed", reason]  # recorded
        assert [len(storage.catalog(engine, k)) for k in domains] == [0, SMALL, SMALL]  # the big run rolled back
        # The next harvest of the big portal, on a new connection, stores it whole.
        again = pipeline.harvest(cfg, engine, cfg.portals[0], now=T1)
        assert (again.status, again.items) == ("ok", 2 * PAGE)


@pytest.mark.postgres
def test_the_database_gone_stops_the_harvest(tmp_path, pg_url, monkeypatch, chicago, admin):
    monkeypatch.setattr("connectors.socrata.SOCRATA_PAGE_LIMIT", PAGE)
    monkeypatch.setattr("connectors.vocab.DISCOVERY_SAMPLE", PAGE)
    db = pg_url.rsplit("/", 1)[1]
    domains = {"big": "big.example.org", "small1": "small1.example.org"}
    served = {domains["big"]: chicago[:2 * PAGE], domains["small1"]: chicago[:SMALL]}

    def take_the_database_away() -> None:  # no new connection to it, and every open one ended
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false'))
        _end_backends(admin, db)

    try:
        with Emulator(socrata=served) as emu:
            cfg, engine = _config(tmp_path, pg_url, emu, domains)
            emu.fault("/api/catalog/v1", with_param="scroll_id", times=1, call=take_the_database_away)
            done: list[storage.RunSummary] = []
            with pytest.raises(sa.exc.OperationalError) as raised:
                pipeline.harvest_many(cfg, engine, cfg.portals, jobs=1, threads=1, now=T1, done=done.append)
            requested = {p.get("domains") for _path, p, _h in emu.requests}
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true'))
    # Raised: the run's own connection lost (the driver's words vary with what it read first), not what closing
    # the harvest's runs met after (no new connection), nor a report of a failure that was not recorded.
    assert "not currently accepting connections" not in str(raised.value)
    assert done == []
    assert domains["small1"] not in requested  # stopped: the next portal was not harvested
    engine.dispose()
    runs = storage.runs(engine).set_index("portal_key")
    assert list(runs.index) == ["big"] and runs.loc["big", "status"] == "running"  # nothing could be written


@pytest.mark.postgres
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_maturity_harvest_says_the_database_is_gone_in_one_line(tmp_path, pg_url, monkeypatch, chicago, admin,
                                                                capsys, jobs):
    from maturity import cli

    monkeypatch.setattr("connectors.socrata.SOCRATA_PAGE_LIMIT", PAGE)
    monkeypatch.setattr("connectors.vocab.DISCOVERY_SAMPLE", PAGE)
    db = pg_url.rsplit("/", 1)[1]
    domains = {"big": "big.example.org", "small1": "small1.example.org"}
    served = {domains["big"]: chicago[:2 * PAGE], domains["small1"]: chicago[:SMALL]}
    if jobs == "2":
        # With one worker the second portal would start only after the first (--threads 1), so it never starts.
        # With two it is harvested in the other worker at the same time, and a loaded machine can start it after
        # the database is gone: its failed connection is then the right line, and the test a race. One portal: the
        # error still crosses the worker's pipe to the command's one line.
        del domains["small1"]

    def take_the_database_away() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false'))
        _end_backends(admin, db)

    try:
        with Emulator(socrata=served) as emu:
            _config(tmp_path, pg_url, emu, domains)
            emu.fault("/api/catalog/v1", with_param="scroll_id", times=1, call=take_the_database_away)
            # --threads 1: a process's second portal starts only after its first (by default it may start while
            # the first waits on its page, and then meet the database gone first: that would be the right line)
            code = cli.main(["--config", str(tmp_path / "config.toml"), "harvest", "-q", "--no-score",
                             "--jobs", jobs, "--threads", "1"])
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true'))
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_NO_DATABASE, err
    # One line, saying why the harvest stopped: the run's own connection lost (not what the cleanup met after)
    said = f"error: cannot reach the database postgresql+psycopg://postgres@127.0.0.1:5432/{db}: "
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.splitlines()[-1]]
    assert err.splitlines()[-1].startswith(said) and "not currently accepting connections" not in err, err
    assert "Traceback" not in err


@pytest.mark.postgres
def test_a_run_closed_by_another_process_while_it_is_written_stays_closed(tmp_path, pg_url, monkeypatch, chicago):
    """A harvest whose run another process closed meanwhile (the orphan sweep, storage/orphans.py: its lease
    lapsed, say the machine slept, and another worker may be harvesting the portal now) does not overwrite that
    ending with its own: its versions are rolled back, the run keeps the closer's reason, the harvest goes on.
    PostgreSQL: the closer's UPDATE of the run row does not wait for the run's transaction (SQLite's one writer
    would make it wait until the run ended, and then there is no race)."""
    monkeypatch.setattr("connectors.socrata.SOCRATA_PAGE_LIMIT", PAGE)
    monkeypatch.setattr("connectors.vocab.DISCOVERY_SAMPLE", PAGE)
    domains = {"big": "big.example.org", "small1": "small1.example.org"}
    served = {domains["big"]: chicago[:2 * PAGE], domains["small1"]: chicago[:SMALL]}
    closed: list[int] = []
    with Emulator(socrata=served) as emu:
        cfg, engine = _config(tmp_path, pg_url, emu, domains)
        later = datetime.now(UTC) + timedelta(seconds=storage.LEASE_TTL_S + 60)  # no lease taken: as if lapsed
        # While the big portal's harvest waits for its second page (its first page written in its transaction),
        # the sweep closes its run.
        emu.fault("/api/catalog/v1", with_param="scroll_id", times=1,
                  call=lambda: closed.extend(storage.close_orphaned_runs(engine, now=later, portal_key="big")))
        got = pipeline.harvest_many(cfg, engine, cfg.portals, jobs=1, threads=1, now=T1)

    assert len(closed) == 1  # the sweep closed the big run, mid-run
    by_key = {s.portal_key: s for s in got}
    assert [(k, by_key[k].status) for k in domains] == [("big", "failed"), ("small1", "ok")]
    assert by_key["big"].run_id == closed[0]
    assert by_key["big"].error == (f"RunClosed: run {closed[0]} was closed by another process while it was "
                                   "written (failed); its versions are not stored")
    runs = storage.runs(engine).set_index("run_id")
    # the row says what the sweep said, not "ok" with 10 items
    assert runs.loc[closed[0], ["status", "error"]].tolist() == [
        "failed", f"interrupted: still running at {later:%Y-%m-%d %H:%M} UTC (the harvesting process stopped)"]
    assert [len(storage.catalog(engine, k)) for k in domains] == [0, SMALL]  # its first page rolled back
