"""Recording policy of direct calls (not queue calls) per team and per user: `all`, `none` or
`on_demand`; null on both means the parent team's, and `none` at the top (docs/recording.md,
docs/provisioning.md). Existing teams and users keep what they had: direct calls unrecorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICIES = ("all", "none", "on_demand")


def _policy(table: str) -> sa.Enum:
    return sa.Enum(
        *POLICIES,
        name=op.f(f"ck_{table}_recording"),
        native_enum=False,
        create_constraint=True,
        length=16,
    )


def upgrade() -> None:
    for table in ("teams", "users"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("recording", _policy(table), nullable=True))


def downgrade() -> None:
    for table in ("users", "teams"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_recording"), type_="check")
            batch.drop_column("recording")
