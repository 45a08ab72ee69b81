"""Schema migrations, run programmatically: `upgrade(url)` works from any cwd and after `pip install -e .`."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from storage.db import is_sqlite, open_db

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest migration (tests/storage/test_schema.py checks it is the scripts' one head). A database at it is
# left alone without importing Alembic: every CLI command upgrades first, and Alembic's import and run were
# ~0.3 s of each command's start.
HEAD = "0008_versions_covering_index"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not a main option: configparser would choke on '%' in a password.
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to the newest schema (Alembic `upgrade head`)."""
    if revision == "head" and revisions(url) == [HEAD]:
        return
    from alembic import command

    _migrate(url, command.upgrade, revision)


def revisions(url: str) -> list[str]:
    """The revisions the database at `url` is at ([] before any migration)."""
    with open_db(url).connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return []
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` back to `revision` (Alembic `downgrade`; the migrations convert data back)."""
    from alembic import command

    _migrate(url, command.downgrade, revision)


def _migrate(url: str, step: Callable[[Config, str], None], revision: str) -> None:
    cfg = alembic_config(url)
    with open_db(url).connect() as conn:
        # SQLite: a batch migration rebuilds a table (drop and recreate); with foreign keys on, dropping
        # harvest_runs while schema_errors rows point at it fails. SQLite's own ALTER recipe turns them off
        # around it; the pragma is a no-op inside a transaction, so it goes to the driver before BEGIN.
        raw = conn.connection.dbapi_connection if is_sqlite(conn) else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                step(cfg, revision)
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")
