"""Role grants in the database (revision 0002), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.errors import InvalidState
from callwarden.domain.ids import RoleId, TeamId
from callwarden.domain.models import DEFAULT_ROLE_NAMES
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS, Grant, Permission, Scope
from callwarden.store.database import Database
from callwarden.store.directory import UserDirectory
from callwarden.store.migrations import alembic_config, upgrade
from callwarden.store.repositories import RoleRepository
from callwarden.store.schema import RoleGrantRow, RoleRow, TeamRow, TeamSupervisorRow, UserRow

P = Permission
INSERT_GRANT = text(
    "INSERT INTO role_grants (role_id, permission, scope) VALUES (:r, 'live.view', :scope)"
)


def _grants_by_role(sessions: sessionmaker[Session]) -> dict[str, frozenset[Grant]]:
    with sessions() as session:
        return {role.name: role.grants for role in RoleRepository(session).list_all()}


def _custom_role(sessions: sessionmaker[Session], name: str = "quality") -> RoleId:
    with sessions() as session, session.begin():
        row = RoleRow(name=name, description="", outbound_patterns=[], builtin=False)
        session.add(row)
        session.flush()
        return RoleId(row.id)


def _grant_row_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(RoleGrantRow)) or 0


def test_the_migration_stores_the_default_roles_grants(database: Database) -> None:
    assert _grants_by_role(database.sessions) == dict(DEFAULT_ROLE_GRANTS)
    expected_rows = sum(len(grants) for grants in DEFAULT_ROLE_GRANTS.values())
    assert _grant_row_count(database.sessions) == expected_rows


def test_upgrading_an_existing_0001_database_keeps_custom_roles_without_grants(
    database_url: str,
) -> None:
    upgrade(database_url, "0001")
    with Database(database_url) as database:
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO roles (name, description, outbound_patterns, builtin) "
                    "VALUES ('team-lead', '', '[]', false)"
                )
            )
        upgrade(database_url)
        grants = _grants_by_role(database.sessions)
        assert grants == {**DEFAULT_ROLE_GRANTS, "team-lead": frozenset()}

        with database.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        with database.engine.connect() as connection:
            tables = set(database.engine.dialect.get_table_names(connection))
        assert "role_grants" not in tables and "roles" in tables

        upgrade(database_url)
        assert _grants_by_role(database.sessions) == {
            **DEFAULT_ROLE_GRANTS,
            "team-lead": frozenset(),
        }


def test_set_grants_replaces_a_custom_roles_grants(database: Database) -> None:
    role_id = _custom_role(database.sessions)
    first = {Grant(P.RECORDINGS_PLAY, Scope.TEAM), Grant(P.REPORTS_VIEW, Scope.TEAM)}
    with database.sessions() as session, session.begin():
        assert RoleRepository(session).set_grants(role_id, first).grants == first
    # The same permission at another scope replaces its row (one row per role and permission).
    second = {Grant(P.RECORDINGS_PLAY, Scope.ALL), Grant(P.LIVE_VIEW, Scope.OWN)}
    with database.sessions() as session, session.begin():
        RoleRepository(session).set_grants(role_id, second)
    with database.sessions() as session:
        assert RoleRepository(session).get(role_id).grants == second
        assert RoleRepository(session).get_by_name("quality").grants == second
    with database.sessions() as session, session.begin():
        RoleRepository(session).set_grants(role_id, [])
    assert _grants_by_role(database.sessions)["quality"] == frozenset()


def test_set_grants_stores_the_widest_scope_of_a_permission_given_twice(
    database: Database,
) -> None:
    role_id = _custom_role(database.sessions)
    given = [Grant(P.REPORTS_VIEW, Scope.OWN), Grant(P.REPORTS_VIEW, Scope.ALL)]
    with database.sessions() as session, session.begin():
        RoleRepository(session).set_grants(role_id, given)
    with database.sessions() as session:
        rows = session.scalars(select(RoleGrantRow).where(RoleGrantRow.role_id == role_id)).all()
        assert [(row.permission, row.scope) for row in rows] == [("reports.view", Scope.ALL)]


def test_built_in_roles_grants_are_fixed(database: Database) -> None:
    with database.sessions() as session, session.begin():
        admin = RoleRepository(session).get_by_name("admin")
        with pytest.raises(InvalidState) as caught:
            RoleRepository(session).set_grants(admin.id, [Grant(P.RECORDINGS_DOWNLOAD, Scope.ALL)])
    assert caught.value.error_id == "builtin_role_fixed"
    assert caught.value.message == "the grants of built-in role 'admin' cannot be changed"
    assert _grants_by_role(database.sessions)["admin"] == DEFAULT_ROLE_GRANTS["admin"]


def test_unknown_or_impossible_stored_grants_are_ignored(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    role_id = _custom_role(database.sessions)
    with database.sessions() as session, session.begin():
        session.add_all(
            [
                RoleGrantRow(role_id=role_id, permission="recordings.burn", scope=Scope.ALL),
                RoleGrantRow(role_id=role_id, permission="settings.manage", scope=Scope.OWN),
                RoleGrantRow(role_id=role_id, permission="reports.view", scope=Scope.TEAM),
            ]
        )
    with caplog.at_level(logging.WARNING, logger="callwarden.store.mapping"):
        grants = _grants_by_role(database.sessions)["quality"]
    assert grants == {Grant(P.REPORTS_VIEW, Scope.TEAM)}
    assert [record.getMessage() for record in caplog.records] == [
        "ignoring unknown permission 'recordings.burn' of role quality",
        "ignoring stored grant of role quality: settings.manage cannot be held at scope own "
        "(allowed: all)",
    ]


def test_one_row_per_role_and_permission(database: Database) -> None:
    role_id = _custom_role(database.sessions)
    with database.sessions() as session, session.begin():
        session.add(RoleGrantRow(role_id=role_id, permission="live.view", scope=Scope.OWN))
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(INSERT_GRANT, {"r": role_id, "scope": "team"})


def test_the_scope_column_accepts_only_known_scopes(database: Database) -> None:
    role_id = _custom_role(database.sessions)
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(INSERT_GRANT, {"r": role_id, "scope": "world"})


def test_deleting_a_role_deletes_its_grants(database: Database) -> None:
    role_id = _custom_role(database.sessions)
    with database.sessions() as session, session.begin():
        RoleRepository(session).set_grants(role_id, [Grant(P.LIVE_VIEW, Scope.TEAM)])
    before = _grant_row_count(database.sessions)
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM roles WHERE id = :r"), {"r": role_id})
    assert _grant_row_count(database.sessions) == before - 1


def test_the_directory_builds_principals_from_stored_grants(database: Database) -> None:
    with database.sessions() as session, session.begin():
        supervisor = session.scalar(select(RoleRow).where(RoleRow.name == "supervisor"))
        assert supervisor is not None
        floor = TeamRow(name="floor", display_name="Floor")
        session.add(floor)
        session.flush()
        level2 = TeamRow(name="level2", display_name="Level 2", parent_id=floor.id)
        session.add(level2)
        session.flush()
        sam = UserRow(
            username="sam",
            display_name="Sam",
            role_id=supervisor.id,
            team_id=floor.id,
            enabled=True,
        )
        sam.supervised = [TeamSupervisorRow(team_id=floor.id)]
        session.add(sam)
        ids = (TeamId(floor.id), TeamId(level2.id))
    snapshot = UserDirectory(database.sessions).reload()
    assert {role.name for role in snapshot.roles} == set(DEFAULT_ROLE_NAMES)
    user = snapshot.user_by_username("sam")
    assert user is not None
    principal = snapshot.principal_for(user)
    assert principal.grants == DEFAULT_ROLE_GRANTS["supervisor"]
    assert principal.supervised_team_ids == set(ids)
    assert principal.scope_of(P.MONITOR_BARGE) is Scope.TEAM
