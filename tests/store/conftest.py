"""Databases for store tests: every test using them runs on SQLite and on PostgreSQL.

The PostgreSQL variant is marked `postgres`; it fails (never skips) when the server at
$CALLWARDEN_TEST_POSTGRES_URL (default 127.0.0.1:5432/test) is unreachable. Each PostgreSQL
test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callwarden.store.database import Database, sqlite_url
from callwarden.store.migrations import upgrade
from callwarden.store.testing import (
    clone_sqlite_database,
    temporary_postgres_schema,
    temporary_sqlite_url,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables yet), once per backend."""
    if request.param == "sqlite":
        yield temporary_sqlite_url(tmp_path)
    else:
        with temporary_postgres_schema() as url:
            yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session, copied by `database`."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture
def database(database_url: str, sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A database migrated to head."""
    if database_url.startswith("sqlite"):
        database_url = clone_sqlite_database(sqlite_template, tmp_path)
    else:
        upgrade(database_url)
    with Database(database_url) as migrated:
        yield migrated


@pytest.fixture
def sessions(database: Database) -> sessionmaker[Session]:
    return database.sessions
