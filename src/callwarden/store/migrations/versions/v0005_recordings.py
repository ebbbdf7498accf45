"""Recordings: the recordings' metadata, pauses, tags, notes, legal holds, retention policies
and tombstones (`callwarden.recording`; docs/recording.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("recording", "complete", "incomplete", "failed", "purged")
HOLD_TARGETS = ("recording", "call", "user", "queue")
RETENTION_SCOPES = ("default", "team", "queue")
TOMBSTONE_KINDS = ("retention", "manual")
DIRECTIONS = ("inbound", "outbound", "internal")
ID_LENGTH = 36
TEXT_LENGTH = 255


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


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def _recordings() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(ID_LENGTH), nullable=False),
        sa.Column("call_id", sa.String(TEXT_LENGTH), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("direction", _enum("recordings", "direction", *DIRECTIONS), nullable=False),
        sa.Column("caller_number_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("caller_number_hmac", sa.String(64), nullable=True),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", _enum("recordings", "status", *STATUSES), nullable=False),
        sa.Column("storage_key", sa.String(TEXT_LENGTH), nullable=False),
        sa.Column("kek_id", sa.String(64), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("has_pauses", sa.Boolean(), nullable=False),
        sa.Column("monitored", sa.Boolean(), nullable=False),
        sa.Column("manifest_digest", sa.String(128), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("failure_reason", sa.String(TEXT_LENGTH), nullable=True),
        _fk("recordings", "queue_id", "queues", "SET NULL"),
        _fk("recordings", "team_id", "teams", "SET NULL"),
        _fk("recordings", "operator_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_recordings_storage_key")),
    )
    for column in ("call_id", "queue_id", "team_id", "operator_id", "caller_number_hmac"):
        op.create_index(op.f(f"ix_recordings_{column}"), "recordings", [column])
    op.create_index(op.f("ix_recordings_started_at"), "recordings", ["started_at"])
    op.create_index("ix_recordings_status_started_at", "recordings", ["status", "started_at"])


def _recording_details() -> None:
    op.create_table(
        "recording_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(ID_LENGTH), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        _fk("recording_pauses", "recording_id", "recordings", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_pauses")),
    )
    op.create_index(op.f("ix_recording_pauses_recording_id"), "recording_pauses", ["recording_id"])
    op.create_table(
        "recording_tags",
        sa.Column("recording_id", sa.String(ID_LENGTH), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("added_at", _utc(), nullable=False),
        _fk("recording_tags", "recording_id", "recordings", "CASCADE"),
        _fk("recording_tags", "added_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("recording_id", "tag", name=op.f("pk_recording_tags")),
    )
    op.create_index(op.f("ix_recording_tags_tag"), "recording_tags", ["tag"])
    op.create_table(
        "recording_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(ID_LENGTH), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        _fk("recording_notes", "recording_id", "recordings", "CASCADE"),
        _fk("recording_notes", "author_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_notes")),
    )
    op.create_index(op.f("ix_recording_notes_recording_id"), "recording_notes", ["recording_id"])


def _holds_and_retention() -> None:
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "target_kind", _enum("legal_holds", "target_kind", *HOLD_TARGETS), nullable=False
        ),
        sa.Column("target_id", sa.String(TEXT_LENGTH), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("placed_by", sa.Integer(), nullable=True),
        sa.Column("placed_at", _utc(), nullable=False),
        sa.Column("released_at", _utc(), nullable=True),
        sa.Column("released_by", sa.Integer(), nullable=True),
        sa.Column("release_reason", sa.String(1000), nullable=True),
        _fk("legal_holds", "placed_by", "users", "SET NULL"),
        _fk("legal_holds", "released_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index("ix_legal_holds_target", "legal_holds", ["target_kind", "target_id"])
    op.create_index(op.f("ix_legal_holds_released_at"), "legal_holds", ["released_at"])
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", _enum("retention_policies", "scope", *RETENTION_SCOPES), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(scope = 'default' AND team_id IS NULL AND queue_id IS NULL)"
            " OR (scope = 'team' AND team_id IS NOT NULL AND queue_id IS NULL)"
            " OR (scope = 'queue' AND queue_id IS NOT NULL AND team_id IS NULL)",
            name=op.f("ck_retention_policies_one_target"),
        ),
        sa.CheckConstraint("days > 0", name=op.f("ck_retention_policies_positive_days")),
        _fk("retention_policies", "team_id", "teams", "CASCADE"),
        _fk("retention_policies", "queue_id", "queues", "CASCADE"),
        _fk("retention_policies", "updated_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_policies")),
        sa.UniqueConstraint("team_id", name=op.f("uq_retention_policies_team_id")),
        sa.UniqueConstraint("queue_id", name=op.f("uq_retention_policies_queue_id")),
    )


def _tombstones() -> None:
    op.create_table(
        "recording_tombstones",
        sa.Column("recording_id", sa.String(ID_LENGTH), nullable=False),
        sa.Column("call_id", sa.String(TEXT_LENGTH), nullable=False),
        sa.Column("kind", _enum("recording_tombstones", "kind", *TOMBSTONE_KINDS), nullable=False),
        sa.Column("rule", sa.String(TEXT_LENGTH), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(TEXT_LENGTH), nullable=False),
        sa.Column("purged_at", _utc(), nullable=False),
        sa.Column("storage_key", sa.String(TEXT_LENGTH), nullable=True),
        sa.Column("file_deleted_at", _utc(), nullable=True),
        sa.Column("audited_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("recording_id", name=op.f("pk_recording_tombstones")),
    )
    op.create_index(
        op.f("ix_recording_tombstones_purged_at"), "recording_tombstones", ["purged_at"]
    )


def upgrade() -> None:
    _recordings()
    _recording_details()
    _holds_and_retention()
    _tombstones()


def downgrade() -> None:
    for table in (
        "recording_tombstones",
        "retention_policies",
        "legal_holds",
        "recording_notes",
        "recording_tags",
        "recording_pauses",
        "recordings",
    ):
        op.drop_table(table)
