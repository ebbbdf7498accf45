"""The ACD's event history: every event a node's ACD engine published (agent state changes with
their break reasons, calls queued, offered, answered, abandoned, overflowed, ended, handled),
kept in the bus's wire form so that the reports compute their figures with
`callwarden.acd.statistics` from the same events the live figures use (docs/acd.md, "History").

No foreign keys: the history outlives the users, teams and queues it names.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND_LENGTH = 64
CALL_ID_LENGTH = 255


def upgrade() -> None:
    op.create_table(
        "acd_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(KIND_LENGTH), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.String(CALL_ID_LENGTH), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acd_events")),
    )
    op.create_index(op.f("ix_acd_events_at"), "acd_events", ["at"])
    op.create_index("ix_acd_events_user_kind_at", "acd_events", ["user_id", "kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_acd_events_user_kind_at", table_name="acd_events")
    op.drop_index(op.f("ix_acd_events_at"), table_name="acd_events")
    op.drop_table("acd_events")
