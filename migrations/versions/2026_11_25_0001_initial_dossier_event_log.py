"""Initial schema: dossier state, the raw event log, progress steps, dead letters, units.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 10:38:50.024588
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('offset', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.LargeBinary(), nullable=True),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
    sa.UniqueConstraint('topic', 'partition', 'offset', name=op.f('uq_dead_letters_topic_partition_offset'))
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_reason'), ['reason'], unique=False)

    op.create_table('dossiers',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=True),
    sa.Column('unit_code', sa.String(length=64), nullable=True),
    sa.Column('procedure_code', sa.String(length=64), nullable=True),
    sa.Column('procedure_name', sa.Text(), nullable=True),
    sa.Column('channel', sa.SmallInteger(), nullable=True),
    sa.Column('digitised', sa.Boolean(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('snapshot', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('snapshot_emitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('snapshot_event_id', sa.String(length=128), nullable=True),
    sa.Column('latest_step_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('latest_step_emitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('latest_step_event_id', sa.String(length=128), nullable=True),
    sa.Column('responsible', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_dossiers'))
    )
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossiers_unit_code'), ['unit_code'], unique=False)

    op.create_table('events',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('emitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_dossier_code'), ['dossier_code'], unique=False)

    op.create_table('units',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('parent_code', sa.String(length=64), nullable=True),
    sa.Column('replaced_by', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_units'))
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_units_parent_code'), ['parent_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_units_replaced_by'), ['replaced_by'], unique=False)

    op.create_table('progress_steps',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('step_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('emitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('officer', sa.String(length=128), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('title', sa.String(length=256), nullable=True),
    sa.Column('department', sa.String(length=256), nullable=True),
    sa.Column('content', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['events.event_id'], name=op.f('fk_progress_steps_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_progress_steps'))
    )
    with op.batch_alter_table('progress_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_steps_dossier_code_step_at_emitted_at_event_id'), ['dossier_code', 'step_at', 'emitted_at', 'event_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('progress_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_steps_dossier_code_step_at_emitted_at_event_id'))

    op.drop_table('progress_steps')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_units_replaced_by'))
        batch_op.drop_index(batch_op.f('ix_units_parent_code'))

    op.drop_table('units')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_dossier_code'))

    op.drop_table('events')
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossiers_unit_code'))

    op.drop_table('dossiers')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_reason'))

    op.drop_table('dead_letters')
