from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from callwarden.store.database import Database, data_dir_url, sqlite_url
from callwarden.store.migrations import upgrade
from callwarden.store.schema import TeamRow, UserRow


def test_data_dir_gets_a_sqlite_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    url = data_dir_url(data_dir)
    assert data_dir.is_dir()
    assert url == f"sqlite:///{data_dir.resolve() / 'callwarden.db'}"
    upgrade(url)
    assert (data_dir / "callwarden.db").is_file()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    with Database(sqlite_url(tmp_path / "x.db")) as database, database.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_in_data_dir_opens_the_default_file(tmp_path: Path) -> None:
    with Database.in_data_dir(tmp_path / "d") as database:
        assert database.url == data_dir_url(tmp_path / "d")


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError), database.sessions() as session, session.begin():
        session.add(UserRow(username="ghost", display_name="G", role_id=999, enabled=True))
        session.flush()


def test_a_failed_transaction_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(IntegrityError), database.sessions() as session, session.begin():
        session.add(TeamRow(name="support", display_name="Support"))
        session.flush()
        session.add(TeamRow(name="support", display_name="Again"))
        session.flush()
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM teams")).scalar() == 0
