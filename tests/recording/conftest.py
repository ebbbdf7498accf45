"""Databases and a small center for recording tests: every database test runs on SQLite and
on PostgreSQL (marked `postgres`; it fails, never skips, when the server is unreachable)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.ids import QueueId, TeamId, UserId
from callwarden.domain.models import QueueStrategy, RecordingPolicy
from callwarden.recording.numbers import SealedNumbers
from callwarden.store.database import Database, sqlite_url
from callwarden.store.migrations import upgrade
from callwarden.store.schema import QueueRow, RoleRow, TeamRow, UserRow
from callwarden.store.testing import (
    clone_sqlite_database,
    temporary_postgres_schema,
    temporary_sqlite_url,
)

NUMBER_SECRET = bytes(range(32))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield temporary_sqlite_url(tmp_path)
    else:
        with temporary_postgres_schema() as url:
            yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture
def database(database_url: str, sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    if database_url.startswith("sqlite"):
        database_url = clone_sqlite_database(sqlite_template, tmp_path)
    else:
        upgrade(database_url)
    with Database(database_url) as migrated:
        yield migrated


@pytest.fixture
def sessions(database: Database) -> sessionmaker[Session]:
    return database.sessions


@pytest.fixture
def numbers() -> SealedNumbers:
    return SealedNumbers(NUMBER_SECRET)


@dataclass(frozen=True)
class Center:
    """Two teams, each with a queue and an operator."""

    support: TeamId
    sales: TeamId
    support_queue: QueueId
    sales_queue: QueueId
    alice: UserId
    bob: UserId


def _queue(session: Session, name: str, number: str, team_id: int) -> QueueRow:
    row = QueueRow(
        name=name,
        display_name=name,
        number=number,
        team_id=team_id,
        strategy=QueueStrategy.LONGEST_IDLE,
        wrap_up_seconds=0,
        ring_timeout_seconds=20,
        max_no_answer=3,
        max_wait_seconds=None,
        service_level_seconds=20,
        service_level_percent=80,
        required_skill_level=1,
        recording=RecordingPolicy.ALL,
    )
    session.add(row)
    return row


def make_center(sessions: sessionmaker[Session]) -> Center:
    with sessions() as session, session.begin():
        role = session.scalar(select(RoleRow).where(RoleRow.name == "operator"))
        assert role is not None
        support = TeamRow(name="support", display_name="Support")
        sales = TeamRow(name="sales", display_name="Sales")
        session.add_all([support, sales])
        session.flush()
        alice = UserRow(username="alice", display_name="Alice", role_id=role.id, team_id=support.id)
        bob = UserRow(username="bob", display_name="Bob", role_id=role.id, team_id=sales.id)
        session.add_all([alice, bob])
        support_queue = _queue(session, "support", "600", support.id)
        sales_queue = _queue(session, "sales", "601", sales.id)
        session.flush()
        return Center(
            TeamId(support.id),
            TeamId(sales.id),
            QueueId(support_queue.id),
            QueueId(sales_queue.id),
            UserId(alice.id),
            UserId(bob.id),
        )


@pytest.fixture
def center(sessions: sessionmaker[Session]) -> Center:
    return make_center(sessions)
