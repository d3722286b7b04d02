"""an index of each provider's assignments by the time they settled (answered, expired), newest
first: a provider's answer statistics read its last 200 from the top of it, where they sorted
the provider's whole history at every answer and expiry (62 ms for the busiest provider at a
million leads, 2.8 ms with the index)

Revision ID: 0011s
Revises: 0010a
Create Date: 2026-11-29 12:50:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0011s'
down_revision = '0010a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_assignment_provider_id_settled_at',
        'assignment',
        ['provider_id', sa.text('coalesce(responded_at, expired_at, created_at) DESC'), sa.text('id DESC')],
    )


def downgrade():
    op.drop_index('ix_assignment_provider_id_settled_at', table_name='assignment')
