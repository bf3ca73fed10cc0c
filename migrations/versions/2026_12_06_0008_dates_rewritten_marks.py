"""DATES_REWRITTEN: what earlier snapshots said of each dossier's dates (O(1) per snapshot), and
which reschedule set the newest snapshot's due date.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENTS = (
    "base_due_at",
    "base_seen_at",
    "source_at",
    "source_due_at",
    "source_seen_at",
    "finished_max",
    "finished_seen_at",
    "returned_max",
    "returned_seen_at",
)


def upgrade() -> None:
    op.create_table(
        "dossier_date_marks",
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in MOMENTS),
        sa.PrimaryKeyConstraint("dossier_code", name=op.f("pk_dossier_date_marks")),
    )
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_source_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_column("due_source_at")
    op.drop_table("dossier_date_marks")
