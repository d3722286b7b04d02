"""outbox: the sweep claims the rows it publishes, so two sweeps never publish one row twice

Revision ID: 0006r
Revises: 0005
Create Date: 2026-11-28 10:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006r'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_claimed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('sweep_claimed_at')
