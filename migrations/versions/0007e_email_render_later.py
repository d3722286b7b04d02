"""performance: an email may be queued with what renders it (template, language, context) and
rendered by the worker that sends it, so the request that queued it does not wait for it

Revision ID: 0007e
Revises: 0007t
Create Date: 2026-11-28 14:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007e'
down_revision = '0007t'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('render_context', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.drop_column('render_context')
