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

from callwarden.store.database import Database
from callwarden.store.migrations import upgrade
from callwarden.store.testing import temporary_postgres_schema, temporary_sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables yet), once per backend."""
    if request.param == "sqlite":
        yield temporary_sqlite_url(tmp_path)
    else:
        with temporary_postgres_schema() as url:
            yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A database migrated to head."""
    upgrade(database_url)
    with Database(database_url) as migrated:
        yield migrated


@pytest.fixture
def sessions(database: Database) -> sessionmaker[Session]:
    return database.sessions
