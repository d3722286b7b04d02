"""login ceiling: failed sign-ins per account from browsers it has not signed in on, from every
client address together, counted per window of time (leads.auth.ceiling). A new table: nothing
to carry over, and nothing lost on the way down but the current window's counts.

Revision ID: 0021s
Revises: 0021k
Create Date: 2026-11-30 09:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = '0021s'
down_revision = '0021k'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'login_ceiling',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', sa.String(length=254), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_ceiling')),
        sa.UniqueConstraint('account', 'window_start', name=op.f('uq_login_ceiling_account')),
    )
    with op.batch_alter_table('login_ceiling', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_ceiling_window_start'), ['window_start'], unique=False)


def downgrade():
    with op.batch_alter_table('login_ceiling', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_ceiling_window_start'))
    op.drop_table('login_ceiling')
