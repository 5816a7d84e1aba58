"""first hour: who produced a delivery's error, and staff actions on deliveries

Revision ID: 0002_first_hour
Revises: 1ec0efb5dd6b
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.columns


revision = '0002_first_hour'
down_revision = '1ec0efb5dd6b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_source', sa.String(length=16), nullable=True))

    op.create_table('delivery_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('delivery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('previous_state', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('created_at', core.columns.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_delivery_actions_delivery_id_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_actions'))
    )
    with op.batch_alter_table('delivery_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_actions_delivery_id'), ['delivery_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_actions_delivery_id'))

    op.drop_table('delivery_actions')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('error_source')
