"""Notifications may be ``cancelled`` (resolved before sending): widen the status column.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=8), type_=sa.String(length=16),
            existing_nullable=False,
        )


def downgrade() -> None:
    op.execute("UPDATE notifications SET status = 'dead' WHERE status = 'cancelled'")
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=8),
            existing_nullable=False,
        )
