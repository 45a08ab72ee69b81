"""Schema migrations, run programmatically: `upgrade(url)` works from any cwd and after `pip install -e .`."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from storage.db import open_db

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not a main option: configparser would choke on '%' in a password.
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to the newest schema (Alembic `upgrade head`)."""
    cfg = alembic_config(url)
    with open_db(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
