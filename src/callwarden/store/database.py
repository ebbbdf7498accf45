"""Engines and sessions: SQLite in the data directory by default, PostgreSQL by URL.

SQLite connections get `journal_mode=WAL` (readers never block the writer), `foreign_keys=ON`
(off by default in SQLite), `synchronous=NORMAL` (durable at each WAL checkpoint, safe with WAL)
and a busy timeout; transactions are begun explicitly, so DDL in a migration and the many
statements of one provisioning run are each one real transaction.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

DATABASE_FILE_NAME = "callwarden.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite database file at `path`."""
    return URL.create("sqlite", database=str(path.resolve())).render_as_string()


def data_dir_url(data_dir: Path) -> str:
    """The URL of the default database inside a data directory (the directory is created)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return sqlite_url(data_dir / DATABASE_FILE_NAME)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide where transactions begin (see _on_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


SQLITE_BEGIN_OPTION = "callwarden_sqlite_begin"
WRITE_TRANSACTION: dict[str, str] = {SQLITE_BEGIN_OPTION: "IMMEDIATE"}
"""Execution options for a transaction that reads, decides, then writes: on SQLite it takes the
write lock when it begins (waiting up to the busy timeout), so no other writer can slip in
between its reads and its writes; other databases ignore it."""


def _on_sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def create_database_engine(database_url: str, *, echo: bool = False) -> Engine:
    """An engine for `database_url` with the settings callwarden relies on for its dialect."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    else:
        engine = create_engine(url, echo=echo, pool_pre_ping=True)
    logger.debug("database engine for %s", url.render_as_string(hide_password=True))
    return engine


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (they are mapped to values anyway)."""
    return sessionmaker(engine, expire_on_commit=False)


class Database:
    """An engine and its session factory, built from a URL; `close()` releases connections."""

    def __init__(self, database_url: str, *, echo: bool = False) -> None:
        self.url = database_url
        self.engine = create_database_engine(database_url, echo=echo)
        self.sessions = create_session_factory(self.engine)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Database:
        """The embedded default: `callwarden.db` in `data_dir` (created if missing)."""
        return cls(data_dir_url(data_dir))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
