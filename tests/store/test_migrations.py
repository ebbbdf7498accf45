from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from callwarden.domain.models import DEFAULT_ROLE_NAMES
from callwarden.store.database import Database, create_database_engine
from callwarden.store.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from callwarden.store.schema import Base, RoleRow

TABLES = {
    "acd_events",
    "alembic_version",
    "audit_log",
    "break_reasons",
    "call_dispositions",
    "disposition_codes",
    "cdr_legs",
    "cdrs",
    "known_devices",
    "legal_holds",
    "login_throttle",
    "mfa_recovery_codes",
    "mfa_totp",
    "queue_members",
    "queues",
    "recording_notes",
    "recording_pauses",
    "recording_tags",
    "recording_tombstones",
    "recordings",
    "retention_policies",
    "role_grants",
    "roles",
    "sign_in_networks",
    "team_supervisors",
    "teams",
    "trunk_inbound_numbers",
    "trunks",
    "users",
    "web_sessions",
}


def test_migrated_schema_matches_the_orm_metadata(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert set(inspect(connection).get_table_names()) == TABLES


def test_empty_database_has_no_revision_until_upgraded(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        assert current_revision(engine) is None
        upgrade(database_url)
        assert current_revision(engine) == head_revision() == "0010"
        upgrade(database_url)
        assert current_revision(engine) == "0010"
    finally:
        engine.dispose()


def test_default_roles_exist_with_an_empty_allow_list(database: Database) -> None:
    with database.sessions() as session:
        roles = {row.name: row for row in session.scalars(select(RoleRow))}
    assert set(roles) == set(DEFAULT_ROLE_NAMES)
    assert all(row.builtin and row.outbound_patterns == [] for row in roles.values())


def test_downgrade_to_base_removes_every_table(database: Database) -> None:
    with database.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    with database.engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    assert current_revision(database.engine) is None
