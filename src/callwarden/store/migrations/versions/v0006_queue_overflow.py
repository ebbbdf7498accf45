"""Queues: overflow action and target, announcement interval, music on hold; the provisioned
list of break reasons (`callwarden.acd`; docs/acd.md, docs/provisioning.md).

Existing queues keep what they did before: a hang-up after a message when they overflow,
announcements every 30 seconds, the tone melody on hold.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OVERFLOWS = ("queue", "user", "voicemail", "hangup")
HOLD_MUSIC = ("tones", "melody")
REASON_LENGTH = 32


def _enum(table: str, column: str, *values: str) -> sa.Enum:
    return sa.Enum(
        *values,
        name=op.f(f"ck_{table}_{column}"),
        native_enum=False,
        create_constraint=True,
        length=16,
    )


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.add_column(
            sa.Column(
                "overflow",
                _enum("queues", "overflow", *OVERFLOWS),
                nullable=False,
                server_default="hangup",
            )
        )
        batch.add_column(sa.Column("overflow_queue_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("overflow_user_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("announce_seconds", sa.Integer(), nullable=True, server_default="30")
        )
        batch.add_column(
            sa.Column(
                "music_on_hold",
                _enum("queues", "music_on_hold", *HOLD_MUSIC),
                nullable=False,
                server_default="tones",
            )
        )
        batch.create_foreign_key(
            op.f("fk_queues_overflow_queue_id_queues"),
            "queues",
            ["overflow_queue_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            op.f("fk_queues_overflow_user_id_users"),
            "users",
            ["overflow_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "break_reasons",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(REASON_LENGTH), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_break_reasons")),
        sa.UniqueConstraint("code", name=op.f("uq_break_reasons_code")),
    )


def downgrade() -> None:
    op.drop_table("break_reasons")
    with op.batch_alter_table("queues") as batch:
        batch.drop_constraint(op.f("fk_queues_overflow_user_id_users"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_queues_overflow_queue_id_queues"), type_="foreignkey")
        batch.drop_constraint(op.f("ck_queues_music_on_hold"), type_="check")
        batch.drop_constraint(op.f("ck_queues_overflow"), type_="check")
        for column in (
            "music_on_hold",
            "announce_seconds",
            "overflow_user_id",
            "overflow_queue_id",
            "overflow",
        ):
            batch.drop_column(column)
