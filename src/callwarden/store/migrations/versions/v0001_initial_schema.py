"""Initial schema: teams, roles (with the four defaults), users, trunks, queues, CDRs.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ROLES = (
    ("operator", "Takes and places calls; sees only their own calls and state."),
    ("supervisor", "Watches and monitors the calls of their teams."),
    ("admin", "Manages configuration and users."),
    ("auditor", "Reads recordings, reports and the audit log; changes nothing."),
)


def _enum(table: str, column: str, *values: str) -> sa.Enum:
    """A string column with a CHECK constraint, as the metadata declares enums."""
    return sa.Enum(
        *values,
        name=op.f(f"ck_{table}_{column}"),
        native_enum=False,
        create_constraint=True,
        length=16,
    )


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def _unique(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def _configuration_tables() -> None:
    roles = op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("outbound_patterns", sa.JSON(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        _pk("roles", "id"),
        _unique("roles", "name"),
    )
    op.bulk_insert(
        roles,
        [
            {"name": name, "description": text, "outbound_patterns": [], "builtin": True}
            for name, text in DEFAULT_ROLES
        ],
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        _fk("teams", "parent_id", "teams", "RESTRICT"),
        _pk("teams", "id"),
        _unique("teams", "name"),
    )
    _index("teams", "parent_id")
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("extension", sa.String(32), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("sip_realm", sa.String(128), nullable=True),
        sa.Column("sip_ha1_md5", sa.String(32), nullable=True),
        sa.Column("sip_ha1_sha256", sa.String(64), nullable=True),
        _fk("users", "role_id", "roles", "RESTRICT"),
        _fk("users", "team_id", "teams", "RESTRICT"),
        _pk("users", "id"),
        _unique("users", "extension"),
        _unique("users", "username"),
    )
    _index("users", "role_id")
    _index("users", "team_id")
    op.create_table(
        "team_supervisors",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        _fk("team_supervisors", "team_id", "teams", "CASCADE"),
        _fk("team_supervisors", "user_id", "users", "CASCADE"),
        _pk("team_supervisors", "user_id", "team_id"),
    )
    _index("team_supervisors", "team_id")


def _trunk_and_queue_tables() -> None:
    op.create_table(
        "trunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", _enum("trunks", "transport", "udp", "tcp", "tls"), nullable=False),
        sa.Column("outbound_patterns", sa.JSON(), nullable=False),
        sa.Column("username", sa.String(128), nullable=True),
        sa.Column("password", sa.String(255), nullable=True),
        sa.Column("register", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _pk("trunks", "id"),
        _unique("trunks", "name"),
    )
    op.create_table(
        "trunk_inbound_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trunk_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("destination", sa.String(32), nullable=True),
        _fk("trunk_inbound_numbers", "trunk_id", "trunks", "CASCADE"),
        _pk("trunk_inbound_numbers", "id"),
        _unique("trunk_inbound_numbers", "number"),
    )
    _index("trunk_inbound_numbers", "trunk_id")
    strategies = ("longest_idle", "round_robin", "fewest_calls", "ring_all", "skills")
    op.create_table(
        "queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("strategy", _enum("queues", "strategy", *strategies), nullable=False),
        sa.Column("wrap_up_seconds", sa.Integer(), nullable=False),
        sa.Column("ring_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("max_no_answer", sa.Integer(), nullable=False),
        sa.Column("max_wait_seconds", sa.Integer(), nullable=True),
        sa.Column("service_level_seconds", sa.Integer(), nullable=False),
        sa.Column("service_level_percent", sa.Integer(), nullable=False),
        sa.Column("required_skill_level", sa.Integer(), nullable=False),
        sa.Column(
            "recording", _enum("queues", "recording", "all", "none", "on_demand"), nullable=False
        ),
        _fk("queues", "team_id", "teams", "RESTRICT"),
        _pk("queues", "id"),
        _unique("queues", "name"),
        _unique("queues", "number"),
    )
    _index("queues", "team_id")
    op.create_table(
        "queue_members",
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("penalty", sa.Integer(), nullable=False),
        sa.Column("skill_level", sa.Integer(), nullable=False),
        _fk("queue_members", "queue_id", "queues", "CASCADE"),
        _fk("queue_members", "user_id", "users", "CASCADE"),
        _pk("queue_members", "queue_id", "user_id"),
    )
    _index("queue_members", "user_id")


def _cdr_tables() -> None:
    dispositions = ("answered", "busy", "no_answer", "cancelled", "failed")
    op.create_table(
        "cdrs",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column(
            "direction",
            _enum("cdrs", "direction", "inbound", "outbound", "internal"),
            nullable=False,
        ),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("callee", sa.String(255), nullable=False),
        sa.Column("dialled_number", sa.String(64), nullable=False),
        sa.Column(
            "route_kind", _enum("cdrs", "route_kind", "extension", "queue", "trunk"), nullable=True
        ),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("answered_at", _utc(), nullable=True),
        sa.Column("ended_at", _utc(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("disposition", _enum("cdrs", "disposition", *dispositions), nullable=False),
        sa.Column("hangup_cause", sa.String(255), nullable=True),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column(
            "hangup_side", _enum("cdrs", "hangup_side", "caller", "callee", "system"), nullable=True
        ),
        sa.Column("caller_user_id", sa.Integer(), nullable=True),
        sa.Column("callee_user_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("trunk_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        _fk("cdrs", "callee_user_id", "users", "SET NULL"),
        _fk("cdrs", "caller_user_id", "users", "SET NULL"),
        _fk("cdrs", "queue_id", "queues", "SET NULL"),
        _fk("cdrs", "team_id", "teams", "SET NULL"),
        _fk("cdrs", "trunk_id", "trunks", "SET NULL"),
        _pk("cdrs", "id"),
    )
    for column in (
        "call_id",
        "started_at",
        "caller_user_id",
        "callee_user_id",
        "queue_id",
        "trunk_id",
        "team_id",
    ):
        _index("cdrs", column)
    op.create_table(
        "cdr_legs",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("cdr_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", _enum("cdr_legs", "role", "caller", "callee", "monitor"), nullable=False),
        sa.Column("sip_call_id", sa.String(255), nullable=False),
        sa.Column("uri", sa.String(512), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("answered_at", _utc(), nullable=True),
        sa.Column("ended_at", _utc(), nullable=False),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("hangup_cause", sa.String(255), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("trunk_id", sa.Integer(), nullable=True),
        _fk("cdr_legs", "cdr_id", "cdrs", "CASCADE"),
        _fk("cdr_legs", "trunk_id", "trunks", "SET NULL"),
        _fk("cdr_legs", "user_id", "users", "SET NULL"),
        _pk("cdr_legs", "id"),
        _unique("cdr_legs", "cdr_id", "position"),
    )
    _index("cdr_legs", "trunk_id")
    _index("cdr_legs", "user_id")


def upgrade() -> None:
    _configuration_tables()
    _trunk_and_queue_tables()
    _cdr_tables()


def downgrade() -> None:
    for table in (
        "cdr_legs",
        "cdrs",
        "queue_members",
        "queues",
        "trunk_inbound_numbers",
        "trunks",
        "team_supervisors",
        "users",
        "teams",
        "roles",
    ):
        op.drop_table(table)
