"""The officers' workspace: single-use sign-in links, server-side sessions, and the field
(TenLinhVuc) of each dossier as a column for filtering.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNRESOLVED = sa.text("status <> 'resolved'")


def upgrade() -> None:
    op.create_table(
        "sign_in_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_from", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sign_in_links")),
    )
    with op.batch_alter_table("sign_in_links", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_links_account_created_at", ["account", "created_at"], unique=False
        )
    op.create_table(
        "officer_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_officer_sessions")),
    )
    with op.batch_alter_table("officer_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_officer_sessions_account"), ["account"], unique=False
        )
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("field_name", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_dossiers_field_name"), ["field_name"], unique=False)
        # A period's dossiers (KPIs, the weekly review, lateness) by NgayTiepNhan.
        batch_op.create_index(batch_op.f("ix_dossiers_received_at"), ["received_at"], unique=False)
    with op.batch_alter_table("field_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_field_reports_occurred_at"), ["occurred_at"], unique=False
        )
    with op.batch_alter_table("discrepancies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_discrepancies_responsible_unresolved",
            ["responsible"],
            unique=False,
            postgresql_where=UNRESOLVED,
            sqlite_where=UNRESOLVED,
        )


def downgrade() -> None:
    with op.batch_alter_table("field_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_field_reports_occurred_at"))
    with op.batch_alter_table("discrepancies", schema=None) as batch_op:
        batch_op.drop_index("ix_discrepancies_responsible_unresolved")
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossiers_received_at"))
        batch_op.drop_index(batch_op.f("ix_dossiers_field_name"))
        batch_op.drop_column("field_name")
    with op.batch_alter_table("officer_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_officer_sessions_account"))
    op.drop_table("officer_sessions")
    with op.batch_alter_table("sign_in_links", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_links_account_created_at")
    op.drop_table("sign_in_links")
