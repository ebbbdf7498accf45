"""Fixtures of the web tests: a SQLite database migrated and provisioned once per session and
copied for each test (the access matrix also runs once on PostgreSQL, see test_access_matrix)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from callwarden.security.password_policy import PasswordPolicy
from callwarden.store.database import Database, sqlite_url
from callwarden.store.migrations import upgrade
from callwarden.store.testing import clone_sqlite_database
from web.support import Env, FakeClock, build_env, provision_organisation


@pytest.fixture(scope="session")
def password_policy() -> PasswordPolicy:
    return PasswordPolicy.default()


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web") / "template.db"
    url = sqlite_url(path)
    upgrade(url)
    with Database(url) as database:
        provision_organisation(database)
    return path


@pytest.fixture
def database(web_template: Path, tmp_path: Path) -> Iterator[Database]:
    with Database(clone_sqlite_database(web_template, tmp_path)) as copy:
        yield copy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def env(
    database: Database, clock: FakeClock, password_policy: PasswordPolicy
) -> AsyncIterator[Env]:
    running = build_env(database, clock, policy=password_policy)
    try:
        await running.start()
        yield running
    finally:
        await running.close()
