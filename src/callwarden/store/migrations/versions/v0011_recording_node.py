"""The node that records each recording (`recordings.node_id`): start-up crash recovery closes
only the open recordings of its own node, so a node restarting beside others leaves their live
recordings alone (docs/recording.md, "Crash recovery with several nodes"). Rows from before
this revision have none; they are recovered by whichever node starts first, as before.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NODE_ID_LENGTH = 64


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("node_id", sa.String(NODE_ID_LENGTH), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("node_id")
