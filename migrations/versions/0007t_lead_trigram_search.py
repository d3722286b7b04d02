"""performance: trigram indexes on PostgreSQL for the queue's search by part of a name or the end
of a phone number (pg_trgm), which otherwise scans every lead

Revision ID: 0007t
Revises: 0006i
Create Date: 2026-11-28 13:50:00

"""
from alembic import op


revision = '0007t'
down_revision = '0006i'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: the search scans; no index serves LIKE '%…%' there
    # pg_trgm is a trusted extension: the database's owner may create it. A trigram index serves
    # ILIKE '%…%' (the name search) and LIKE '%…' (the end of a phone number).
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.execute('CREATE INDEX ix_lead_full_name_trgm ON lead USING gin (full_name gin_trgm_ops)')
    op.execute('CREATE INDEX ix_lead_phone_trgm ON lead USING gin (phone gin_trgm_ops)')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('DROP INDEX ix_lead_phone_trgm')
    op.execute('DROP INDEX ix_lead_full_name_trgm')
