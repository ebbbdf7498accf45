"""Alembic's environment: runs migrations on a given connection or on `sqlalchemy.url`."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from callwarden.store.database import create_database_engine
from callwarden.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    # The alembic command line: $CALLWARDEN_DATABASE_URL (as for the node) or the ini file's URL.
    url = os.environ.get("CALLWARDEN_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection given and sqlalchemy.url is not set")
    engine = create_database_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    _run_online()
