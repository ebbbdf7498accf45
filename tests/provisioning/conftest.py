"""Provisioning runs against SQLite and PostgreSQL (see tests/store/conftest.py for the rules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.provisioning import Provisioner
from callwarden.security.passwords import PasswordHasher
from callwarden.store.database import Database, sqlite_url
from callwarden.store.directory import UserDirectory
from callwarden.store.migrations import upgrade
from callwarden.store.testing import clone_sqlite_database, temporary_postgres_schema

REALM = "callwarden.test"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Database]:
    """A database migrated to head, once per backend."""
    if request.param == "sqlite":
        with Database(clone_sqlite_database(sqlite_template, tmp_path)) as migrated:
            yield migrated
    else:
        with temporary_postgres_schema() as url:
            upgrade(url)
            with Database(url) as migrated:
                yield migrated


@pytest.fixture
def hasher() -> PasswordHasher:
    """Cheap argon2id parameters: the tests are about provisioning, not about hash cost."""
    return PasswordHasher(time_cost=1, memory_cost_kib=64, parallelism=1)


@pytest.fixture
def provisioner(database: Database, hasher: PasswordHasher) -> Provisioner:
    return Provisioner(database.sessions, REALM, password_hasher=hasher)


@pytest.fixture
def snapshot(database: Database) -> Callable[[], DirectorySnapshot]:
    """Read the whole configuration as the call path would see it."""
    return UserDirectory(database.sessions).reload


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write YAML text to `name` in a temporary directory and return its path."""

    def write(text: str, name: str = "callcenter.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
