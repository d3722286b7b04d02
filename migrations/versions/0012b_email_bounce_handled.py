"""email bounce handled: when a provider notification's hard bounce was handled (its address
flagged, its assignment expired and replaced), so that a send task retried after a database
error or redelivered after a worker died handles the bounces its first run recorded, once

Revision ID: 0012b
Revises: 0011s
Create Date: 2026-11-29 13:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0012b'
down_revision = '0011s'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('email_message', sa.Column('bounce_handled_at', sa.DateTime(timezone=True), nullable=True))
    # The emails that failed before this release were handled (or missed) by then; any time will
    # do to say so, and the row's own creation time is stored in the column's format already.
    op.execute("UPDATE email_message SET bounce_handled_at = created_at WHERE status = 'failed'")


def downgrade():
    op.drop_column('email_message', 'bounce_handled_at')
