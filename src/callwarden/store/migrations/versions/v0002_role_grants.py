"""Role grants: which permission each role holds, at which scope; the four defaults filled in.

The default grants are written out here as literals (a migration is history and must not change
when the code's catalogue does); a test checks they equal `DEFAULT_ROLE_GRANTS` of
`callwarden.domain.permissions`. A later change of the defaults is a new revision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWN_CALLS = (
    ("calls.place", "own"),
    ("calls.take", "own"),
    ("agent_state.change_own", "own"),
    ("recordings.pause_own", "own"),
)

DEFAULT_GRANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "operator": _OWN_CALLS,
    "supervisor": (
        *_OWN_CALLS,
        ("live.view", "team"),
        ("monitor.listen", "team"),
        ("monitor.whisper", "team"),
        ("monitor.barge", "team"),
        ("monitor.takeover", "team"),
        ("recordings.play", "team"),
        ("reports.view", "team"),
        ("agents.manage", "team"),
        ("numbers.view", "team"),
    ),
    "admin": (
        ("users.manage", "all"),
        ("roles.manage", "all"),
        ("teams.manage", "all"),
        ("queues.manage", "all"),
        ("trunks.manage", "all"),
        ("settings.manage", "all"),
        ("reports.view", "all"),
        ("live.view", "all"),
        ("numbers.view", "all"),
    ),
    "auditor": (
        ("recordings.play", "all"),
        ("audit.view", "all"),
        ("reports.view", "all"),
        ("numbers.view", "all"),
    ),
}


def upgrade() -> None:
    role_grants = op.create_table(
        "role_grants",
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("permission", sa.String(64), nullable=False),
        sa.Column(
            "scope",
            sa.Enum(
                "own",
                "team",
                "all",
                name=op.f("ck_role_grants_scope"),
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_role_grants_role_id_roles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("role_id", "permission", name=op.f("pk_role_grants")),
    )
    roles = sa.table("roles", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
    connection = op.get_bind()
    role_ids = {
        name: role_id
        for role_id, name in connection.execute(
            sa.select(roles.c.id, roles.c.name).where(roles.c.name.in_(list(DEFAULT_GRANTS)))
        )
    }
    op.bulk_insert(
        role_grants,
        [
            {"role_id": role_ids[role], "permission": permission, "scope": scope}
            for role, grants in DEFAULT_GRANTS.items()
            for permission, scope in grants
        ],
    )


def downgrade() -> None:
    op.drop_table("role_grants")
