"""Wrap-up dispositions: the provisioned disposition codes (with their Japanese and English
labels, in order) and each call's disposition code and note as its operator set them during or
after wrap-up, keyed by the call's Call-ID (docs/provisioning.md, docs/web.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CODE_LENGTH = 32
LABEL_LENGTH = 128
CALL_ID_LENGTH = 255
NOTE_LENGTH = 1000


def upgrade() -> None:
    op.create_table(
        "disposition_codes",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(CODE_LENGTH), nullable=False),
        sa.Column("label_ja", sa.String(LABEL_LENGTH), nullable=False),
        sa.Column("label_en", sa.String(LABEL_LENGTH), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_disposition_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_disposition_codes_code")),
    )
    op.create_table(
        "call_dispositions",
        sa.Column("call_id", sa.String(CALL_ID_LENGTH), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(CODE_LENGTH), nullable=False),
        sa.Column("note", sa.String(NOTE_LENGTH), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_call_dispositions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_call_dispositions_team_id_teams"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_dispositions")),
    )
    op.create_index(op.f("ix_call_dispositions_user_id"), "call_dispositions", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_call_dispositions_user_id"), table_name="call_dispositions")
    op.drop_table("call_dispositions")
    op.drop_table("disposition_codes")
