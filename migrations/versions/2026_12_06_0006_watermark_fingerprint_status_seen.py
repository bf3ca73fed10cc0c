"""Trust: the ingest watermark, dossiers waiting for it, the judging-settings fingerprint, and
when each dossier first showed a closing status.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_WAITING = sa.text("NOT waits_for_watermark")
WAITING = sa.text("waits_for_watermark")


def upgrade() -> None:
    op.create_table(
        "ingest_partitions",
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(length=255), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("high_water", sa.BigInteger(), nullable=True),
        sa.Column("newest_emitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", name=op.f("pk_ingest_partitions")),
    )
    op.create_table(
        "reconciler_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reconciler_state")),
    )
    op.create_table(
        "dossier_status_seen",
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("first_emitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dossier_code", "status", name=op.f("pk_dossier_status_seen")),
    )
    with op.batch_alter_table("reconcile_schedule", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "waits_for_watermark", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.drop_index(batch_op.f("ix_reconcile_schedule_check_at"))
        batch_op.create_index(
            "ix_reconcile_schedule_due",
            ["check_at"],
            unique=False,
            postgresql_where=NOT_WAITING,
            sqlite_where=NOT_WAITING,
        )
        batch_op.create_index(
            "ix_reconcile_schedule_waiting",
            ["check_at"],
            unique=False,
            postgresql_where=WAITING,
            sqlite_where=WAITING,
        )


def downgrade() -> None:
    with op.batch_alter_table("reconcile_schedule", schema=None) as batch_op:
        batch_op.drop_index("ix_reconcile_schedule_waiting")
        batch_op.drop_index("ix_reconcile_schedule_due")
        batch_op.create_index(
            batch_op.f("ix_reconcile_schedule_check_at"), ["check_at"], unique=False
        )
        batch_op.drop_column("waits_for_watermark")
    op.drop_table("dossier_status_seen")
    op.drop_table("reconciler_state")
    op.drop_table("ingest_partitions")
