"""Alerts: the notification outbox, escalation/reminder tracks, weekly digests, Zalo tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:59:50.953595
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('digests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('unit_code', sa.String(length=64), nullable=False),
    sa.Column('week', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digests')),
    sa.UniqueConstraint('unit_code', 'week', name=op.f('uq_digests_unit_code_week'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('discrepancy_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('unit_code', sa.String(length=64), nullable=True),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('group_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('provider_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_discrepancy_id'), ['discrepancy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_recipient_channel_status'), ['recipient', 'channel', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_status_not_before'), ['status', 'not_before'], unique=False)

    op.create_table('zalo_tokens',
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_zalo_tokens'))
    )
    op.create_table('alert_tracks',
    sa.Column('discrepancy_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('escalate_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('remind_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['discrepancy_id'], ['discrepancies.id'], name=op.f('fk_alert_tracks_discrepancy_id_discrepancies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('discrepancy_id', name=op.f('pk_alert_tracks'))
    )
    with op.batch_alter_table('alert_tracks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_tracks_escalate_at'), ['escalate_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_tracks_remind_at'), ['remind_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alert_tracks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_tracks_remind_at'))
        batch_op.drop_index(batch_op.f('ix_alert_tracks_escalate_at'))

    op.drop_table('alert_tracks')
    op.drop_table('zalo_tokens')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_status_not_before'))
        batch_op.drop_index(batch_op.f('ix_notifications_recipient_channel_status'))
        batch_op.drop_index(batch_op.f('ix_notifications_discrepancy_id'))

    op.drop_table('notifications')
    op.drop_table('digests')
