"""Reconciler tables: field reports, officers, the reconcile schedule, discrepancies and history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:51:56.864783
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('discrepancies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('unit_code', sa.String(length=64), nullable=True),
    sa.Column('responsible', sa.String(length=128), nullable=True),
    sa.Column('reporter', sa.String(length=128), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=128), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discrepancies'))
    )
    with op.batch_alter_table('discrepancies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_discrepancies_dossier_code'), ['dossier_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_discrepancies_status_kind'), ['status', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_discrepancies_unit_code_status'), ['unit_code', 'status'], unique=False)
        batch_op.create_index('uq_discrepancies_unresolved', ['dossier_code', 'kind'], unique=True, postgresql_where=sa.text("status <> 'resolved'"), sqlite_where=sa.text("status <> 'resolved'"))

    op.create_table('field_reports',
    sa.Column('report_id', sa.String(length=128), nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('officer', sa.String(length=128), nullable=False),
    sa.Column('unit_code', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('report_id', name=op.f('pk_field_reports'))
    )
    with op.batch_alter_table('field_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_reports_dossier_code'), ['dossier_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_field_reports_unit_code'), ['unit_code'], unique=False)

    op.create_table('officers',
    sa.Column('account', sa.String(length=128), nullable=False),
    sa.Column('full_name', sa.String(length=256), nullable=False),
    sa.Column('unit_code', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('zalo_user_id', sa.String(length=64), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account', name=op.f('pk_officers'))
    )
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_officers_unit_code'), ['unit_code'], unique=False)

    op.create_table('reconcile_schedule',
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('check_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('dossier_code', name=op.f('pk_reconcile_schedule'))
    )
    with op.batch_alter_table('reconcile_schedule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconcile_schedule_check_at'), ['check_at'], unique=False)

    op.create_table('discrepancy_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('discrepancy_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['discrepancy_id'], ['discrepancies.id'], name=op.f('fk_discrepancy_history_discrepancy_id_discrepancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discrepancy_history'))
    )
    with op.batch_alter_table('discrepancy_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_discrepancy_history_discrepancy_id'), ['discrepancy_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('discrepancy_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_discrepancy_history_discrepancy_id'))

    op.drop_table('discrepancy_history')
    with op.batch_alter_table('reconcile_schedule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconcile_schedule_check_at'))

    op.drop_table('reconcile_schedule')
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_officers_unit_code'))

    op.drop_table('officers')
    with op.batch_alter_table('field_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_reports_unit_code'))
        batch_op.drop_index(batch_op.f('ix_field_reports_dossier_code'))

    op.drop_table('field_reports')
    with op.batch_alter_table('discrepancies', schema=None) as batch_op:
        batch_op.drop_index('uq_discrepancies_unresolved', postgresql_where=sa.text("status <> 'resolved'"), sqlite_where=sa.text("status <> 'resolved'"))
        batch_op.drop_index(batch_op.f('ix_discrepancies_unit_code_status'))
        batch_op.drop_index(batch_op.f('ix_discrepancies_status_kind'))
        batch_op.drop_index(batch_op.f('ix_discrepancies_dossier_code'))

    op.drop_table('discrepancies')
