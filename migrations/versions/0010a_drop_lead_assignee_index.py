"""drop the lead's single-column assignee index: the (assignee, created) index, whose leading
column it is, serves every query it served (the queue's "mine" and "unassigned", the user's
foreign key), and each new lead no longer writes it

Revision ID: 0010a
Revises: 0009u
Create Date: 2026-11-29 11:20:00

"""
from alembic import op


revision = '0010a'
down_revision = '0009u'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_lead_assigned_to_id', table_name='lead')


def downgrade():
    op.create_index('ix_lead_assigned_to_id', 'lead', ['assigned_to_id'])
