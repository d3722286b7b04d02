"""access log reading indexes: the log's page reads the newest entries of one staff member, one
lead or one kind of entry, a hundred at a time; an index on (user, id), (lead, id) and
(action, id) hands them over in that order, where the single-column user and lead indexes left a
sort of every entry of theirs (searches and exports now write a row for each lead they show)

Revision ID: 0013a
Revises: 0012b
Create Date: 2026-11-29 14:00:00

"""
from alembic import op


revision = '0013a'
down_revision = '0012b'
branch_labels = None
depends_on = None


def upgrade():
    # The leading columns still serve the foreign keys to user and lead.
    op.create_index('ix_access_log_user_id_id', 'access_log', ['user_id', 'id'])
    op.create_index('ix_access_log_lead_id_id', 'access_log', ['lead_id', 'id'])
    op.create_index('ix_access_log_action_id', 'access_log', ['action', 'id'])
    op.drop_index('ix_access_log_user_id', table_name='access_log')
    op.drop_index('ix_access_log_lead_id', table_name='access_log')


def downgrade():
    op.create_index('ix_access_log_lead_id', 'access_log', ['lead_id'])
    op.create_index('ix_access_log_user_id', 'access_log', ['user_id'])
    op.drop_index('ix_access_log_action_id', table_name='access_log')
    op.drop_index('ix_access_log_lead_id_id', table_name='access_log')
    op.drop_index('ix_access_log_user_id_id', table_name='access_log')
