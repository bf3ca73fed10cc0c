"""Each ended late dossier's lateness stored when the reconciler judges it (contract §7), with the
facts it was computed from, so that a province-month's lateness report sums stored figures.

Nothing is backfilled here: §7's arithmetic runs on the working-day calendar in Python. The
rules revision that comes with this table makes the reconcilers judge every dossier once when
they start, which fills it; until then the report computes what is missing, as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dossier_lateness",
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot_emitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("step_count", sa.Integer(), nullable=False),
        sa.Column("overrun_hours", sa.Float(), nullable=False),
        sa.Column(
            "charges",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("apology_any", sa.Boolean(), nullable=False),
        sa.Column("apology_late", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dossier_code", name=op.f("pk_dossier_lateness")),
    )


def downgrade() -> None:
    op.drop_table("dossier_lateness")
