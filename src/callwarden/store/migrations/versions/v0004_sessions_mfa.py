"""Sign-in: web sessions, TOTP seeds and recovery codes, known devices, sign-in networks and
the sign-in throttle's counters (`callwarden.security`; docs/sign-in.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

END_REASONS = (
    "logout",
    "logout_all",
    "disabled",
    "role_changed",
    "password_changed",
    "mfa_changed",
    "admin_revoked",
    "idle_timeout",
    "expired",
)


def _enum(table: str, column: str, *values: str) -> sa.Enum:
    return sa.Enum(
        *values,
        name=op.f(f"ck_{table}_{column}"),
        native_enum=False,
        create_constraint=True,
        length=16,
    )


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def _session_tables() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_seen_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column(
            "auth_level", _enum("web_sessions", "auth_level", "password", "mfa"), nullable=False
        ),
        sa.Column("mfa_required", sa.Boolean(), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("end_reason", _enum("web_sessions", "end_reason", *END_REASONS), nullable=True),
        _user_fk("web_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])


def _mfa_tables() -> None:
    op.create_table(
        "mfa_totp",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("confirmed_at", _utc(), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        _user_fk("mfa_totp"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_mfa_totp")),
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("used_at", _utc(), nullable=True),
        _user_fk("mfa_recovery_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_mfa_recovery_codes_code_hash")),
    )
    op.create_index(op.f("ix_mfa_recovery_codes_user_id"), "mfa_recovery_codes", ["user_id"])


def _sign_in_tables() -> None:
    op.create_table(
        "known_devices",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("user_agent_hash", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(255), nullable=False),
        sa.Column("first_seen_at", _utc(), nullable=False),
        sa.Column("last_seen_at", _utc(), nullable=False),
        _user_fk("known_devices"),
        sa.PrimaryKeyConstraint(
            "user_id", "address", "user_agent_hash", name=op.f("pk_known_devices")
        ),
    )
    op.create_table(
        "sign_in_networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.CheckConstraint(
            "(role_id IS NULL) <> (team_id IS NULL)",
            name=op.f("ck_sign_in_networks_one_target"),
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_sign_in_networks_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_sign_in_networks_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_networks")),
    )
    op.create_index(op.f("ix_sign_in_networks_role_id"), "sign_in_networks", ["role_id"])
    op.create_index(op.f("ix_sign_in_networks_team_id"), "sign_in_networks", ["team_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", _utc(), nullable=False),
        sa.Column("last_failure_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_index(
        op.f("ix_login_throttle_last_failure_at"), "login_throttle", ["last_failure_at"]
    )


def upgrade() -> None:
    _session_tables()
    _mfa_tables()
    _sign_in_tables()


def downgrade() -> None:
    for table in (
        "login_throttle",
        "sign_in_networks",
        "known_devices",
        "mfa_recovery_codes",
        "mfa_totp",
        "web_sessions",
    ):
        op.drop_table(table)
