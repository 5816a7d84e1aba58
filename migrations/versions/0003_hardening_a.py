"""hardening: per-user session token

Revision ID: 0003_hardening_a
Revises: 0002_first_hour
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

import core.columns  # noqa: F401

revision = '0003_hardening_a'
down_revision = '0002_first_hour'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Sessions name the user's token from now on; every existing user gets one (cookies of before end once).
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=32), nullable=True))
    users = sa.table('users', sa.column('id', sa.BigInteger()), sa.column('session_token', sa.String(32)))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(
            users.update().where(users.c.id == user_id).values(session_token=secrets.token_hex(16))
        )
    with op.batch_alter_table('users') as batch_op:
        batch_op.alter_column('session_token', existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('session_token')
