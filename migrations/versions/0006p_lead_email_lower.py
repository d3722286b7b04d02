"""performance: an index on the lower-cased email (duplicate check, email search)

Revision ID: 0006p
Revises: 0006q
Create Date: 2026-11-28 10:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006p'
down_revision = '0006q'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_lead_email_lower', 'lead', [sa.text('lower(email)')], unique=False)


def downgrade():
    op.drop_index('ix_lead_email_lower', table_name='lead')
