"""The Alembic migrations of the callwarden schema, run programmatically.

`upgrade(database_url)` is the only way the schema is created or changed. Developers write a new
revision with `alembic -c src/callwarden/store/migrations/alembic.ini revision --autogenerate -m
"..."` against a database at head, then review it by hand (migrations must run on SQLite and
PostgreSQL; SQLite table changes go through `op.batch_alter_table`).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from callwarden.store.database import create_database_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic configuration pointing at this package's scripts (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind `connection` to `revision` inside the caller's transaction."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of `engine` to `revision` in one transaction."""
    with engine.begin() as connection:
        upgrade_connection(connection, revision)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at `database_url` to `revision` (default: the newest)."""
    engine = create_database_engine(database_url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision this package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
