"""The date marks (DATES_REWRITTEN) move onto the dossier's row: the reconciler reads them with
every dossier it judges, and a second table joined by primary key doubled the pages a chunk of
1,000 dossiers touched (its load went from 9 to 24 ms at 1,000,000 dossiers).

Every dossier's marks are copied over, then the table is dropped. On PostgreSQL this rewrites
each dossier row that has marks once (one UPDATE of the whole table, in the upgrade's
transaction: at a province's million dossiers, run it in a maintenance window).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
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
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        for name in MOMENTS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        assignments = ", ".join(f"{name} = m.{name}" for name in MOMENTS)
        op.execute(
            f"UPDATE dossiers SET {assignments} FROM dossier_date_marks AS m "
            "WHERE m.dossier_code = dossiers.code"
        )
    else:
        assignments = ", ".join(
            f"{name} = (SELECT m.{name} FROM dossier_date_marks AS m "
            "WHERE m.dossier_code = dossiers.code)"
            for name in MOMENTS
        )
        op.execute(
            f"UPDATE dossiers SET {assignments} "
            "WHERE code IN (SELECT dossier_code FROM dossier_date_marks)"
        )
    op.drop_table("dossier_date_marks")


def downgrade() -> None:
    op.create_table(
        "dossier_date_marks",
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in MOMENTS),
        sa.PrimaryKeyConstraint("dossier_code", name=op.f("pk_dossier_date_marks")),
    )
    seen = " OR ".join(f"{name} IS NOT NULL" for name in MOMENTS if name.endswith("_seen_at"))
    op.execute(
        f"INSERT INTO dossier_date_marks (dossier_code, {', '.join(MOMENTS)}) "
        f"SELECT code, {', '.join(MOMENTS)} FROM dossiers WHERE {seen}"
    )
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        for name in MOMENTS:
            batch_op.drop_column(name)
