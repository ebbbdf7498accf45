"""Throw-away databases for tests (of the store and of every layer that needs one).

`temporary_sqlite_url(directory)` names a fresh SQLite file. `clone_sqlite_database` copies a
closed one: a template migrated once per session is much cheaper than a migration per test.
`temporary_postgres_schema()` creates a schema with a random name on the PostgreSQL server,
yields a URL whose connections have that schema as their `search_path`, and drops the schema
afterwards, so parallel test runs on one server never see each other's tables. It raises if
the server is unreachable: a test that needs PostgreSQL fails rather than skips.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from callwarden.store.database import sqlite_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_URL_VARIABLE = "CALLWARDEN_TEST_POSTGRES_URL"


def postgres_server_url() -> str:
    """The server tests use: $CALLWARDEN_TEST_POSTGRES_URL, else the local `test` database."""
    return os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)


def temporary_sqlite_url(directory: Path) -> str:
    """The URL of a not yet existing SQLite file in `directory`."""
    return sqlite_url(directory / f"test-{secrets.token_hex(4)}.db")


def clone_sqlite_database(template: Path, directory: Path) -> str:
    """Copy a closed SQLite database (e.g. one migrated once per test session) into `directory`.

    Every engine on `template` must be disposed first, so that its WAL is checkpointed.
    """
    target = directory / f"test-{secrets.token_hex(4)}.db"
    shutil.copyfile(template, target)
    return sqlite_url(target)


@contextmanager
def temporary_postgres_schema(server_url: str | None = None) -> Iterator[str]:
    """Create schema `t_<random>`, yield a URL bound to it, drop it (and all in it) afterwards.

    Every engine made from the yielded URL must be disposed before the block ends.
    """
    base = make_url(server_url if server_url is not None else postgres_server_url())
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base, pool_pre_ping=True)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        bound = base.update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield bound.render_as_string(hide_password=False)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        admin.dispose()
