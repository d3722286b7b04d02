"""login device lock: failed sign-ins made with one staff device cookie, from every client
address together, counted per window of time (leads.auth.device_lock); a cookie is named by a
hash of its nonce alone. A new table: nothing to carry over, and nothing lost on the way down
but the current window's counts.

Revision ID: 0022d
Revises: 0021e
Create Date: 2026-12-02 09:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = '0022d'
down_revision = '0021e'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'login_device_lock',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('device', sa.String(length=64), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_device_lock')),
        sa.UniqueConstraint('device', 'window_start', name=op.f('uq_login_device_lock_device')),
    )
    with op.batch_alter_table('login_device_lock', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_device_lock_window_start'), ['window_start'], unique=False)


def downgrade():
    with op.batch_alter_table('login_device_lock', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_device_lock_window_start'))
    op.drop_table('login_device_lock')
