"""Migrations, engines and config sync."""
from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC

import pytest

import storage
from storage.migrate import upgrade
from tests.storage.conftest import SETTINGS


def test_upgrade_from_any_cwd_is_idempotent_and_matches_the_models(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the script location must not depend on where the program runs
    upgrade(db_url)
    upgrade(db_url)  # already at head: a no-op
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config
    from storage.models import Base

    with storage.open_db(db_url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        assert compare_metadata(ctx, Base.metadata) == []
        # the one head of the migration scripts (a second head would mean two unchained migrations)
        from alembic.script import ScriptDirectory

        from storage.migrate import alembic_config

        assert [ctx.get_current_revision()] == ScriptDirectory.from_config(alembic_config(db_url)).get_heads()
    storage.dispose(db_url)
    # Nothing written to the working directory but the test's own SQLite files.
    assert set(os.listdir(tmp_path)) <= {"maturity.db", "maturity.db-wal", "maturity.db-shm"}


def test_sqlite_pragmas(sqlite_url):
    storage.upgrade(sqlite_url)
    with storage.open_db(sqlite_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert storage.open_db(sqlite_url) is storage.open_db(sqlite_url)  # cached per URL
    storage.dispose(sqlite_url)


def test_sync_config_upserts_cities_and_portals(engine):
    assert list(storage.cities(engine)["key"]) == ["chicago", "cincinnati"]
    assert list(storage.portals(engine, "chicago")["key"]) == ["chicago-dcat", "chicago-socrata"]
    renamed = replace(SETTINGS, cities=(replace(SETTINGS.cities[0], name="City of Chicago"), SETTINGS.cities[1]))
    storage.sync_config(engine, renamed)
    assert storage.cities(engine).set_index("key").loc["chicago", "name"] == "City of Chicago"
    assert len(storage.portals(engine)) == 3
    assert storage.portals(engine).set_index("key").loc["chicago-dcat", "kind"] == "dcat"


def test_readers_are_not_blocked_by_a_writer_and_see_committed_data_only(engine, db_url):
    """The dashboard reads while a harvest holds its write transaction (SQLite WAL; PostgreSQL MVCC)."""
    from storage.db import create, write_tx

    reader = create(db_url)  # another engine, as the web process would have
    try:
        with write_tx(engine) as conn:
            conn.exec_driver_sql("UPDATE cities SET name = 'uncommitted' WHERE key = 'chicago'")
            assert storage.cities(reader).set_index("key").loc["chicago", "name"] == "Chicago, IL"
        assert storage.cities(reader).set_index("key").loc["chicago", "name"] == "uncommitted"
    finally:
        reader.dispose()


def test_downgrade_to_base_and_back(db_url):
    from alembic import command

    from storage.migrate import alembic_config

    upgrade(db_url)
    cfg = alembic_config(db_url)
    with storage.open_db(db_url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    upgrade(db_url)
    assert storage.cities(storage.open_db(db_url)).empty
    storage.dispose(db_url)


def test_crawl_status_migration_keeps_runs_and_allows_empty_runs_and_flagged_scores(db_url):
    """0001 -> 0002: a run stored before keeps its status; "empty" runs and score flags are accepted after, and
    the status check still rejects a value that is not a status."""
    from datetime import datetime

    import sqlalchemy as sa

    from storage.migrate import upgrade as upgrade_to

    upgrade_to(db_url, "0001")
    engine = storage.open_db(db_url)
    storage.sync_config(engine, SETTINGS)
    t = datetime(2022, 6, 8, tzinfo=UTC)
    old = storage.start_run(engine, "chicago-socrata", as_of=t, started_at=t)
    upgrade_to(db_url, "0002_crawl_status")
    assert storage.runs(engine).set_index("run_id").loc[old, "status"] == "running"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE harvest_runs SET status = 'empty' WHERE id = :id"), {"id": old})
        conn.execute(sa.text("INSERT INTO scores (city_key, as_of, criterion, indicator, flag) "
                             "VALUES ('chicago', :t, 'OD3', '', 'partial')"), {"t": t})
    assert storage.runs(engine).set_index("run_id").loc[old, "status"] == "empty"
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE harvest_runs SET status = 'fine' WHERE id = :id"), {"id": old})
    storage.dispose(db_url)


def test_close_stale_runs(engine):
    from datetime import datetime

    t = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
    old = storage.start_run(engine, "chicago-socrata", as_of=t, started_at=t)
    fresh = storage.start_run(engine, "cincinnati-socrata", as_of=t, started_at=t.replace(hour=6))
    assert storage.close_stale_runs(engine, started_before=t.replace(hour=5), now=t.replace(hour=7)) == 1
    runs = storage.runs(engine).set_index("run_id")
    assert runs.loc[old, "status"] == "failed" and runs.loc[old, "error"].startswith("interrupted")
    assert runs.loc[fresh, "status"] == "running"
