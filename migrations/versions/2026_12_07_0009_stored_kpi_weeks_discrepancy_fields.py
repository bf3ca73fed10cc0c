"""The leaders' board at province scale: past weeks' KPI counts stored; each discrepancy keeps
its dossier's field (TenLinhVuc, backfilled); partial indexes for a scope's unresolved work by
unit and kind, by unit and field, and by kind and age.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNRESOLVED = sa.text("status <> 'resolved'")
COUNTS = ("received", "with_due_date", "on_time", "online", "digitised", "reported")


def upgrade() -> None:
    op.create_table(
        "kpi_weeks",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week_start", name=op.f("pk_kpi_weeks")),
    )
    op.create_table(
        "kpi_week_counts",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("reported_known", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("week_start", "unit_code", name=op.f("pk_kpi_week_counts")),
    )
    with op.batch_alter_table("discrepancies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("field_name", sa.Text(), nullable=True))
    op.execute(
        "UPDATE discrepancies SET field_name = "
        "(SELECT field_name FROM dossiers WHERE dossiers.code = discrepancies.dossier_code)"
    )
    with op.batch_alter_table("discrepancies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_discrepancies_unresolved_unit_kind",
            ["unit_code", "kind", "status"],
            unique=False,
            postgresql_where=UNRESOLVED,
            sqlite_where=UNRESOLVED,
        )
        batch_op.create_index(
            "ix_discrepancies_unresolved_unit_field",
            ["unit_code", "field_name"],
            unique=False,
            postgresql_where=UNRESOLVED,
            sqlite_where=UNRESOLVED,
        )
        batch_op.create_index(
            "ix_discrepancies_unresolved_kind_since",
            ["kind", "since", "dossier_code"],
            unique=False,
            postgresql_include=["unit_code"],
            postgresql_where=UNRESOLVED,
            sqlite_where=UNRESOLVED,
        )


def downgrade() -> None:
    with op.batch_alter_table("discrepancies", schema=None) as batch_op:
        batch_op.drop_index("ix_discrepancies_unresolved_kind_since")
        batch_op.drop_index("ix_discrepancies_unresolved_unit_field")
        batch_op.drop_index("ix_discrepancies_unresolved_unit_kind")
        batch_op.drop_column("field_name")
    op.drop_table("kpi_week_counts")
    op.drop_table("kpi_weeks")
