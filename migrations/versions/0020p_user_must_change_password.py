"""user must change password: a password an admin or the operator chose (a new account, a reset)
is a temporary one, to be replaced by the user's own at their first sign-in. Accounts that exist
already keep the password they have: nothing tells whether it was handed over or chosen.

Revision ID: 0020p
Revises: 0019w
Create Date: 2026-11-29 22:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = '0020p'
down_revision = '0019w'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
