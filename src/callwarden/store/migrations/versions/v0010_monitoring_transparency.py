"""Monitoring transparency per team (`teams.monitoring_transparency`): whether a team's
operators are told they are monitored, `silent`, `screen` or `screen_and_tone`, set in the
admin console or the provisioning file; null (every existing team) keeps following the node's
`monitor_notify_teams` setting, as before (docs/monitoring.md).

Numbered 0010 as given to this change; it chains after 0011, which landed first.

Revision ID: 0010
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICIES = ("silent", "screen", "screen_and_tone")
CONSTRAINT = "ck_teams_monitoring_transparency"


def upgrade() -> None:
    policy = sa.Enum(
        *POLICIES, name=op.f(CONSTRAINT), native_enum=False, create_constraint=True, length=16
    )
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("monitoring_transparency", policy, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch.drop_column("monitoring_transparency")
