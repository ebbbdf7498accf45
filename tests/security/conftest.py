"""Fixtures of the sign-in tests: a migrated database per test, on SQLite and on PostgreSQL
(the PostgreSQL variant is marked `postgres` and fails, never skips, without a server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callwarden.security.secret_box import SecretBox
from callwarden.security.sign_in import SignInServices
from callwarden.store.database import Database, sqlite_url
from callwarden.store.migrations import upgrade
from callwarden.store.testing import clone_sqlite_database, temporary_postgres_schema
from security.sign_in_support import Directory, FakeClock, SignIn, cheap_hasher


@pytest.fixture(scope="session")
def sign_in_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sign-in") / "template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sign_in_db(
    request: pytest.FixtureRequest, sign_in_template: Path, tmp_path: Path
) -> Iterator[Database]:
    if request.param == "sqlite":
        with Database(clone_sqlite_database(sign_in_template, tmp_path)) as database:
            yield database
    else:
        with temporary_postgres_schema() as url:
            upgrade(url)
            with Database(url) as database:
                yield database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sign_in(sign_in_db: Database, clock: FakeClock) -> SignIn:
    hasher = cheap_hasher()
    services = SignInServices.build(
        sign_in_db.sessions, secret_box=SecretBox.generate(), clock=clock, hasher=hasher
    )
    bundle = SignIn(clock, Directory(sign_in_db, hasher), services)
    services.revocations.subscribe(bundle.revoked.append)
    return bundle
