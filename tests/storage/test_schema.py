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
        assert ScriptDirectory.from_config(alembic_config(db_url)).get_heads() == [storage.migrate.HEAD]
    storage.dispose(db_url)
    # Nothing written to the working directory but the test's own SQLite files.
    assert set(os.listdir(tmp_path)) <= {"maturity.db", "maturity.db-wal", "maturity.db-shm"}


def test_upgrade_of_a_database_at_head_does_not_load_alembic(sqlite_url, tmp_path):
    """Every CLI command upgrades first: at head it reads the revision and leaves (Alembic's import and run were
    ~0.3 s of a command's start); a database behind is migrated, and its revision read back."""
    import subprocess
    import sys

    storage.upgrade(sqlite_url, "0007_catalog_snapshots")
    assert storage.migrate.revisions(sqlite_url) == ["0007_catalog_snapshots"]
    storage.dispose(sqlite_url)
    check = ("import sys, storage; storage.upgrade(sys.argv[1]); print('alembic' in sys.modules,"
             " storage.migrate.revisions(sys.argv[1]))")
    behind = subprocess.run([sys.executable, "-c", check, sqlite_url], capture_output=True, text=True, check=True)
    assert behind.stdout.split() == ["True", f"['{storage.migrate.HEAD}']"]
    at_head = subprocess.run([sys.executable, "-c", check, sqlite_url], capture_output=True, text=True, check=True)
    assert at_head.stdout.split() == ["False", f"['{storage.migrate.HEAD}']"]
    assert storage.migrate.revisions(f"sqlite:///{tmp_path / 'new.db'}") == []  # before any migration


def test_versions_pass_reads_its_covering_index_alone(db_url):
    """0007 -> 0008: the versions index gains id and data_modified (the catalog's versions pass reads the index,
    not the rows beside their record blobs); the writer's "newest version at a date" keeps its index order."""
    import sqlalchemy as sa

    from storage.queries import versions_query
    from storage.writes import _VERSIONS_OF

    storage.upgrade(db_url, "0007_catalog_snapshots")
    engine = storage.open_db(db_url)
    indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("dataset_versions")}
    assert indexes["ix_dataset_versions_dataset_as_of"] == ["dataset_id", "as_of"]
    storage.upgrade(db_url)
    indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("dataset_versions")}
    assert "ix_dataset_versions_dataset_as_of" not in indexes
    assert indexes["ix_dataset_versions_dataset_as_of_modified"] == ["dataset_id", "as_of", "id", "data_modified"]
    if engine.dialect.name == "sqlite":  # PostgreSQL plans by table sizes: an empty table is scanned whatever
        from datetime import datetime

        t = datetime(2022, 6, 8, tzinfo=UTC)
        with engine.connect() as conn:
            def plan(q: sa.Select) -> str:
                sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
                return " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))

            assert "USING COVERING INDEX ix_dataset_versions_dataset_as_of_modified" in plan(versions_query("p", t))
            writer = plan(_VERSIONS_OF.params(portal_key="p", as_of=t, source_ids=["a"]))
            assert "ix_dataset_versions_dataset_as_of_modified" in writer and "TEMP B-TREE" not in writer, writer
    storage.dispose(db_url)


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
